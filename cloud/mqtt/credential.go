package mqtt

import (
	"context"
	"fmt"
	"strings"
	gosync "sync"

	"github.com/alexedwards/argon2id"

	"varco.dev/cloud"
	vsync "varco.dev/protocol/sync"
)

// Credential is what the broker knows of a user: the hash of its password
// and either the edge it is (Tenant, Site, Edge) or Cloud.
type Credential struct {
	Username     string
	PasswordHash string // argon2id, in the encoding of argon2id.CreateHash

	Cloud bool // the cloud's own client: every topic allowed

	Tenant string // edges only
	Site   string // edges only: the site whose state topic it reads
	Edge   string // edges only
}

// Validate checks that an edge credential's ids are sync ids and that its
// username is EdgeUsername(Tenant, Edge), and that a cloud credential's
// username has no '/'.
func (c Credential) Validate() error {
	if c.PasswordHash == "" {
		return fmt.Errorf("credential %q: no password hash", c.Username)
	}
	return c.validateUser()
}

// validateUser is Validate without the password hash: the checks of who the
// credential is, for the Mosquitto files, which hash passwords their own way.
func (c Credential) validateUser() error {
	if c.Cloud {
		if c.Username == "" || strings.Contains(c.Username, "/") {
			return fmt.Errorf("cloud credential %q: want a non-empty username without '/'", c.Username)
		}
		return nil
	}
	for _, id := range []struct{ what, id string }{{"tenant", c.Tenant}, {"site", c.Site}, {"edge", c.Edge}} {
		if err := vsync.ValidateID(id.id); err != nil {
			return fmt.Errorf("edge credential %q: %s: %w", c.Username, id.what, err)
		}
	}
	if want := EdgeUsername(c.Tenant, c.Edge); c.Username != want {
		return fmt.Errorf("edge credential %q: want username %q", c.Username, want)
	}
	return nil
}

// EdgeUsername is the MQTT username, and client id, of edge of tenant:
// "{tenant}/{edge}".
func EdgeUsername(tenant, edge string) string { return tenant + "/" + edge }

// Credentials gives the broker the credential of a username. The cloud's
// store implements it; MemCredentials is an in-memory one.
type Credentials interface {
	// Credential returns the credential of username. Returns ENOTFOUND
	// (a *cloud.Error) if there is no such user.
	Credential(ctx context.Context, username string) (Credential, error)
}

// MemCredentials is an in-memory Credentials, for `serve` without a database
// and for tests. It is safe for concurrent use.
type MemCredentials struct {
	params *argon2id.Params

	mu    gosync.RWMutex
	users map[string]Credential
}

// NewMemCredentials returns an empty store that hashes passwords with
// params, argon2id.DefaultParams when nil. Tests pass cheap params.
func NewMemCredentials(params *argon2id.Params) *MemCredentials {
	if params == nil {
		params = argon2id.DefaultParams
	}
	return &MemCredentials{params: params, users: map[string]Credential{}}
}

// AddEdge adds or replaces edge of tenant at site, with password, and
// returns its username.
func (m *MemCredentials) AddEdge(tenant, site, edge, password string) (string, error) {
	c := Credential{Username: EdgeUsername(tenant, edge), Tenant: tenant, Site: site, Edge: edge}
	return c.Username, m.add(c, password)
}

// AddCloud adds or replaces a cloud user.
func (m *MemCredentials) AddCloud(username, password string) error {
	return m.add(Credential{Username: username, Cloud: true}, password)
}

func (m *MemCredentials) add(c Credential, password string) error {
	if password == "" {
		return fmt.Errorf("credential %q: empty password", c.Username)
	}
	hash, err := argon2id.CreateHash(password, m.params)
	if err != nil {
		return fmt.Errorf("credential %q: %w", c.Username, err)
	}
	c.PasswordHash = hash
	if err := c.Validate(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.users[c.Username] = c
	return nil
}

// Credential implements Credentials.
func (m *MemCredentials) Credential(_ context.Context, username string) (Credential, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	c, ok := m.users[username]
	if !ok {
		return Credential{}, &cloud.Error{Code: cloud.ENOTFOUND, Message: "Unknown MQTT user."}
	}
	return c, nil
}

// CredentialsChain is a Credentials that asks each of its stores in turn
// and returns the first credential found: for `serve`, the edges' from the
// database, then the cloud's own account held in memory.
type CredentialsChain []Credentials

// Credential implements Credentials.
func (c CredentialsChain) Credential(ctx context.Context, username string) (Credential, error) {
	for _, store := range c {
		cred, err := store.Credential(ctx, username)
		if cloud.ErrorCode(err) != cloud.ENOTFOUND {
			return cred, err
		}
	}
	return Credential{}, &cloud.Error{Code: cloud.ENOTFOUND, Message: "Unknown MQTT user."}
}
