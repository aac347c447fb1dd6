package postgres

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/alexedwards/argon2id"
	"github.com/jackc/pgx/v5"

	"varco.dev/cloud"
	"varco.dev/cloud/mqtt"
)

var (
	_ cloud.EdgeService = (*EdgeService)(nil)
	_ mqtt.Credentials  = (*EdgeCredentials)(nil)
)

// EdgeService implements cloud.EdgeService.
type EdgeService struct {
	db *DB
	// BrokerURL is the broker address the cloud gives edges with their
	// password, e.g. tcp://cloud.example:1884.
	BrokerURL string
}

// NewEdgeService returns an EdgeService on db that tells edges to connect to
// brokerURL.
func NewEdgeService(db *DB, brokerURL string) *EdgeService {
	return &EdgeService{db: db, BrokerURL: brokerURL}
}

// edgeCols are the columns scanEdge reads, from edges with the tenant's
// slug (for the MQTT username); a deleted edge scans as pgx.ErrNoRows.
const edgeCols = `id, tenant_id, site_id, code, name, version, created_at, updated_at,
	online, boot_id, cache_version, software, protocol_version, readers, last_seen_at, last_birth_at, status_time,
	acked_seq, journal_epoch, (SELECT slug FROM tenants WHERE tenants.id = edges.tenant_id), deleted_at IS NOT NULL,
	COALESCE((SELECT published_version FROM sync_sites ss WHERE ss.tenant_id = edges.tenant_id AND ss.site_id = edges.site_id), 0)`

func scanEdge(row pgx.Row) (*cloud.Edge, error) {
	var (
		e                          cloud.Edge
		boot, cacheVersion, acked  int64
		siteVersion                int64
		slug                       string
		deleted                    bool
		readers                    []cloud.EdgeReader
		lastSeen, lastBirth, stime *time.Time
	)
	err := row.Scan(&e.ID, &e.TenantID, &e.SiteID, &e.Code, &e.Name, &e.Version, &e.CreatedAt, &e.UpdatedAt,
		&e.Status.Online, &boot, &cacheVersion, &e.Status.Software, &e.Status.ProtocolVersion, &readers,
		&lastSeen, &lastBirth, &stime, &acked, &e.Status.JournalEpoch, &slug, &deleted, &siteVersion)
	if err != nil {
		return nil, err
	}
	if deleted {
		return nil, pgx.ErrNoRows
	}
	e.MQTTUsername = mqtt.EdgeUsername(slug, e.Code)
	if boot != 0 {
		e.Status.BootID = strconv.FormatUint(uint64(boot), 16)
	}
	e.Status.CacheVersion, e.Status.AckedSeq = uint64(cacheVersion), uint64(acked)
	e.Status.SiteVersion = uint64(siteVersion)
	if e.Status.SiteVersion > e.Status.CacheVersion {
		e.Status.Lag = e.Status.SiteVersion - e.Status.CacheVersion
	}
	e.Status.Readers = readers
	if e.Status.Readers == nil {
		e.Status.Readers = []cloud.EdgeReader{}
	}
	e.Status.LastSeenAt, e.Status.LastBirthAt, e.Status.StatusTime = lastSeen, lastBirth, stime
	return &e, nil
}

// newEdgePassword returns a random password for an edge and its argon2id
// hash. Edges get 192 random bits: no one types it, an installer pastes it.
func (s *EdgeService) newEdgePassword() (password, hash string, err error) {
	b := make([]byte, 24)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	password = base64.RawURLEncoding.EncodeToString(b)
	if hash, err = argon2id.CreateHash(password, s.db.PasswordParams); err != nil {
		return "", "", fmt.Errorf("hash edge password: %w", err)
	}
	return password, hash, nil
}

func (s *EdgeService) secret(e *cloud.Edge, password string) *cloud.EdgeSecret {
	return &cloud.EdgeSecret{Edge: e, Username: e.MQTTUsername, Password: password, BrokerURL: s.BrokerURL}
}

// CreateEdge creates an edge with a generated password; admins only.
func (s *EdgeService) CreateEdge(ctx context.Context, e *cloud.Edge) (*cloud.EdgeSecret, error) {
	if _, err := cloud.RequireRole(ctx, cloud.RoleAdmin); err != nil {
		return nil, err
	}
	if err := e.Validate(); err != nil {
		return nil, err
	}
	password, hash, err := s.newEdgePassword()
	if err != nil {
		return nil, err
	}
	var created *cloud.Edge
	err = s.db.inTx(ctx, func(tx *Tx) error {
		var id int64
		if err := tx.QueryRow(ctx, `INSERT INTO edges (tenant_id, site_id, code, name, password_hash, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING id`, tx.tenant(), e.SiteID, e.Code, e.Name, hash, tx.now).Scan(&id); err != nil {
			if err := mapErr(err); cloud.ErrorCode(err) == cloud.ECONFLICT {
				return cloud.Invalid("code", "Another edge of the club has this code.")
			}
			return mapErr(fmt.Errorf("insert edge: %w", err))
		}
		var err error
		if created, err = scanEdge(tx.QueryRow(ctx, `SELECT `+edgeCols+` FROM edges WHERE tenant_id = $1 AND id = $2`, tx.tenant(), id)); err != nil {
			return fmt.Errorf("read edge: %w", err)
		}
		return tx.audit(ctx, "edge.create", "edge", id, map[string]any{"code": e.Code, "site_id": e.SiteID, "name": e.Name})
	})
	if err != nil {
		return nil, err
	}
	*e = *created
	return s.secret(e, password), nil
}

// FindEdges lists the tenant's edges with their status.
func (s *EdgeService) FindEdges(ctx context.Context) ([]*cloud.Edge, error) {
	op, err := cloud.Actor(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := s.db.Pool.Query(ctx, `SELECT `+edgeCols+` FROM edges WHERE tenant_id = $1 AND deleted_at IS NULL ORDER BY id`, op.TenantID)
	if err != nil {
		return nil, fmt.Errorf("find edges: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (*cloud.Edge, error) { return scanEdge(r) })
}

// FindEdgeByID returns one of the tenant's edges.
func (s *EdgeService) FindEdgeByID(ctx context.Context, id int64) (*cloud.Edge, error) {
	op, err := cloud.Actor(ctx)
	if err != nil {
		return nil, err
	}
	e, err := scanEdge(s.db.Pool.QueryRow(ctx, `SELECT `+edgeCols+` FROM edges WHERE tenant_id = $1 AND id = $2`, op.TenantID, id))
	return e, notFound(err, "Edge")
}

// UpdateEdge renames an edge or moves it to another site; admins only.
func (s *EdgeService) UpdateEdge(ctx context.Context, id int64, version int, upd cloud.EdgeUpdate) (*cloud.Edge, error) {
	if _, err := cloud.RequireRole(ctx, cloud.RoleAdmin); err != nil {
		return nil, err
	}
	var e *cloud.Edge
	err := s.db.inTx(ctx, func(tx *Tx) error {
		var err error
		if e, err = lockVersioned(ctx, tx, "edges", edgeCols, id, "Edge", version, scanEdge); err != nil {
			return err
		}
		if upd.Name != nil {
			e.Name = *upd.Name
		}
		if upd.SiteID != nil {
			e.SiteID = *upd.SiteID
		}
		if err := e.Validate(); err != nil {
			return err
		}
		e.Version++
		e.UpdatedAt = tx.now
		if _, err := tx.Exec(ctx, `UPDATE edges SET name = $3, site_id = $4, version = $5, updated_at = $6 WHERE tenant_id = $1 AND id = $2`,
			tx.tenant(), id, e.Name, e.SiteID, e.Version, tx.now); err != nil {
			return mapErr(fmt.Errorf("update edge: %w", err))
		}
		return tx.audit(ctx, "edge.update", "edge", id, upd)
	})
	if err != nil {
		return nil, err
	}
	return e, nil
}

// DeleteEdge retires an edge; admins only. The row stays for its events.
func (s *EdgeService) DeleteEdge(ctx context.Context, id int64, version int) error {
	if _, err := cloud.RequireRole(ctx, cloud.RoleAdmin); err != nil {
		return err
	}
	return s.db.inTx(ctx, func(tx *Tx) error {
		e, err := lockVersioned(ctx, tx, "edges", edgeCols, id, "Edge", version, scanEdge)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE edges SET deleted_at = $3, updated_at = $3, version = version + 1, online = false,
			password_hash = '' WHERE tenant_id = $1 AND id = $2`, tx.tenant(), id, tx.now); err != nil {
			return fmt.Errorf("delete edge: %w", err)
		}
		return tx.audit(ctx, "edge.delete", "edge", id, map[string]any{"code": e.Code})
	})
}

// RotateEdgePassword gives an edge a new password; admins only.
func (s *EdgeService) RotateEdgePassword(ctx context.Context, id int64) (*cloud.EdgeSecret, error) {
	if _, err := cloud.RequireRole(ctx, cloud.RoleAdmin); err != nil {
		return nil, err
	}
	password, hash, err := s.newEdgePassword()
	if err != nil {
		return nil, err
	}
	var e *cloud.Edge
	err = s.db.inTx(ctx, func(tx *Tx) error {
		var err error
		if e, err = scanEdge(tx.QueryRow(ctx, `SELECT `+edgeCols+` FROM edges WHERE tenant_id = $1 AND id = $2 FOR UPDATE`, tx.tenant(), id)); err != nil {
			return notFound(err, "Edge")
		}
		e.Version++
		e.UpdatedAt = tx.now
		if _, err := tx.Exec(ctx, `UPDATE edges SET password_hash = $3, version = $4, updated_at = $5 WHERE tenant_id = $1 AND id = $2`,
			tx.tenant(), id, hash, e.Version, tx.now); err != nil {
			return fmt.Errorf("rotate edge password: %w", err)
		}
		return tx.audit(ctx, "edge.password", "edge", id, nil)
	})
	if err != nil {
		return nil, err
	}
	return s.secret(e, password), nil
}

// EdgeCredentials implements mqtt.Credentials for the edges in the
// database: username "{tenant slug}/{edge code}", the edge's password hash,
// its site for the state topic it may read. A deleted edge is unknown.
type EdgeCredentials struct{ db *DB }

// NewEdgeCredentials returns the edges' broker credentials on db.
func NewEdgeCredentials(db *DB) *EdgeCredentials { return &EdgeCredentials{db: db} }

// Credential implements mqtt.Credentials.
func (c *EdgeCredentials) Credential(ctx context.Context, username string) (mqtt.Credential, error) {
	tenant, code, ok := strings.Cut(username, "/")
	if !ok || tenant == "" || code == "" {
		return mqtt.Credential{}, cloud.NotFound("MQTT user")
	}
	var (
		hash string
		site int64
	)
	err := c.db.Pool.QueryRow(ctx, `SELECT e.password_hash, e.site_id FROM edges e JOIN tenants t ON t.id = e.tenant_id
		WHERE t.slug = $1 AND e.code = $2 AND e.deleted_at IS NULL`, tenant, code).Scan(&hash, &site)
	if err != nil {
		return mqtt.Credential{}, notFound(err, "MQTT user")
	}
	return mqtt.Credential{Username: username, PasswordHash: hash, Tenant: tenant, Site: strconv.FormatInt(site, 10), Edge: code}, nil
}

// EdgeConfig returns what the edge's edge.toml needs; admins only.
func (s *EdgeService) EdgeConfig(ctx context.Context, id int64) (*cloud.EdgeConfig, error) {
	op, err := cloud.RequireRole(ctx, cloud.RoleAdmin)
	if err != nil {
		return nil, err
	}
	e, err := s.FindEdgeByID(ctx, id)
	if err != nil {
		return nil, err
	}
	var slug string
	var key []byte
	if err := s.db.Pool.QueryRow(ctx, `SELECT slug, credential_key FROM tenants WHERE id = $1`, op.TenantID).Scan(&slug, &key); err != nil {
		return nil, fmt.Errorf("edge config: %w", err)
	}
	if _, _, err := activeSigningKey(ctx, s.db, op.TenantID); err != nil { // made on first use
		return nil, err
	}
	keys, err := listSigningKeys(ctx, s.db.Pool, op.TenantID)
	if err != nil {
		return nil, err
	}
	c := &cloud.EdgeConfig{Tenant: slug, Site: strconv.FormatInt(e.SiteID, 10), EdgeID: e.Code,
		CredentialKey: hex.EncodeToString(key), CloudKeys: []string{}, MQTTBroker: s.BrokerURL, MQTTUsername: e.MQTTUsername}
	for _, k := range keys {
		c.CloudKeys = append(c.CloudKeys, k.ConfigLine)
	}
	return c, nil
}
