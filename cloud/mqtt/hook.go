package mqtt

import (
	"bytes"
	"context"
	"crypto/rand"
	"log/slog"
	gosync "sync"
	"time"

	"github.com/alexedwards/argon2id"
	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"varco.dev/cloud"
	vsync "varco.dev/protocol/sync"
)

// authTimeout bounds a credential lookup at connect.
const authTimeout = 10 * time.Second

// session is an authenticated client: the credential it connected with.
type session struct {
	client *mochi.Client
	cred   Credential
}

// hook is the mochi hook that authenticates clients and applies the ACL.
type hook struct {
	mochi.HookBase

	creds Credentials
	log   *slog.Logger
	ctx   context.Context // cancelled when the broker stops
	sem   chan struct{}   // bounds concurrent argon2id checks
	// clients are the server's, for OnConnect's wait on a departing client.
	clients *mochi.Clients

	// sessions by client id. An entry outlives a disconnect while the
	// client's session persists, so that QoS 1 messages queued for an
	// offline edge pass the read ACL.
	sessions gosync.Map // string → *session
}

func (h *hook) ID() string { return "varco-auth" }

func (h *hook) Provides(b byte) bool {
	return bytes.Contains([]byte{
		mochi.OnConnect,
		mochi.OnConnectAuthenticate,
		mochi.OnACLCheck,
		mochi.OnPublish,
		mochi.OnDisconnect,
		mochi.OnClientExpired,
	}, []byte{b})
}

// departTimeout bounds OnConnect's wait for a departing client.
const departTimeout = 2 * time.Second

// OnConnect lets a client whose connection has ended finish leaving before
// a new client with its id comes in. mochi v2.7.9 cleans up after a closed
// connection by client id (Clients.Delete, UnsubscribeClient) unless the
// client was taken over; an edge that reconnects at once, while the old
// connection's cleanup is still running (its last will is being sent),
// would otherwise lose its new subscriptions and stay connected without
// receiving deltas or commands. A connection still open is taken over as
// usual (mochi marks it first, and its cleanup then leaves the id alone).
func (h *hook) OnConnect(cl *mochi.Client, _ packets.Packet) error {
	if h.clients == nil {
		return nil
	}
	deadline := time.Now().Add(departTimeout)
	for {
		old, ok := h.clients.Get(cl.ID)
		if !ok || old == cl || !old.Closed() || old.IsTakenOver() {
			return nil
		}
		if time.Now().After(deadline) {
			h.log.Warn("mqtt: a departing client with the same id did not leave in time", slog.String("client", cl.ID))
			return nil
		}
		select {
		case <-h.ctx.Done():
			return h.ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// OnConnectAuthenticate checks the password, the client id of an edge and
// its will topic, and records the session.
func (h *hook) OnConnectAuthenticate(cl *mochi.Client, pk packets.Packet) bool {
	username := string(pk.Connect.Username)
	log := h.log.With(slog.String("username", username), slog.String("client", cl.ID), slog.String("remote", cl.Net.Remote))
	cred, err := h.authenticate(username, pk.Connect.Password)
	if err != nil {
		if cloud.ErrorCode(err) == cloud.EINTERNAL {
			log.Error("mqtt: credential lookup failed", slog.Any("error", err))
		} else {
			log.Warn("mqtt: connect refused", slog.Any("error", err))
		}
		return false
	}
	if !cred.Cloud {
		if cl.ID != cred.Username {
			log.Warn("mqtt: connect refused: an edge's client id must be its username")
			return false
		}
		if pk.Connect.WillFlag {
			status, _ := vsync.StatusTopic(cred.Tenant, cred.Edge)
			if pk.Connect.WillTopic != status {
				log.Warn("mqtt: connect refused: will not on the edge's status topic", slog.String("will_topic", pk.Connect.WillTopic))
				return false
			}
		}
	}
	h.sessions.Store(cl.ID, &session{client: cl, cred: cred})
	log.Debug("mqtt: client authenticated", slog.Bool("cloud", cred.Cloud))
	return true
}

// dummyHash is an argon2id hash, with the default parameters, of a password
// nobody knows: unknown usernames are checked against it.
var dummyHash = gosync.OnceValue(func() string {
	h, _ := argon2id.CreateHash(rand.Text(), argon2id.DefaultParams) // fails only without randomness; then "" fails fast
	return h
})

// authenticate returns the credential of username if password matches it.
func (h *hook) authenticate(username string, password []byte) (Credential, error) {
	unauthorized := &cloud.Error{Code: cloud.EUNAUTHORIZED, Message: "Bad MQTT username or password."}
	if username == "" || len(password) == 0 {
		return Credential{}, unauthorized
	}
	ctx, cancel := context.WithTimeout(h.ctx, authTimeout)
	defer cancel()
	cred, err := h.creds.Credential(ctx, username)
	if cloud.ErrorCode(err) == cloud.ENOTFOUND {
		// Spend the time a password check takes, so that the answer's delay
		// does not tell which usernames exist.
		_, _ = argon2id.ComparePasswordAndHash(string(password), dummyHash())
		return Credential{}, unauthorized
	}
	if err != nil {
		return Credential{}, err
	}
	if cred.Username != username {
		return Credential{}, &cloud.Error{Code: cloud.EINTERNAL, Message: "credential store returned user " + cred.Username}
	}
	if err := cred.Validate(); err != nil {
		return Credential{}, err
	}
	select {
	case h.sem <- struct{}{}:
		defer func() { <-h.sem }()
	case <-ctx.Done():
		return Credential{}, ctx.Err()
	}
	ok, err := argon2id.ComparePasswordAndHash(string(password), cred.PasswordHash)
	if err != nil {
		return Credential{}, err
	}
	if !ok {
		return Credential{}, unauthorized
	}
	return cred, nil
}

// OnACLCheck allows what Allowed allows for the client's credential.
func (h *hook) OnACLCheck(cl *mochi.Client, topic string, write bool) bool {
	v, ok := h.sessions.Load(cl.ID)
	if !ok {
		return false
	}
	s := v.(*session)
	if Allowed(s.cred, topic, write) {
		return true
	}
	h.log.Warn("mqtt: refused by ACL", slog.String("username", s.cred.Username),
		slog.String("topic", topic), slog.Bool("publish", write))
	return false
}

// OnPublish clears the retain flag of an edge's publish on any topic but
// its status.
func (h *hook) OnPublish(cl *mochi.Client, pk packets.Packet) (packets.Packet, error) {
	if !pk.FixedHeader.Retain || cl.Net.Inline {
		return pk, nil
	}
	v, ok := h.sessions.Load(cl.ID)
	if !ok {
		pk.FixedHeader.Retain = false
		return pk, nil
	}
	if s := v.(*session); !s.cred.Cloud {
		t, err := vsync.ParseTopic(pk.TopicName)
		if err != nil || !t.Kind.Retained() {
			pk.FixedHeader.Retain = false
		}
	}
	return pk, nil
}

// OnDisconnect forgets a client whose session ends with the connection.
func (h *hook) OnDisconnect(cl *mochi.Client, _ error, expire bool) {
	if expire && !cl.IsTakenOver() {
		h.forget(cl)
	}
}

// OnClientExpired forgets a client whose persistent session expired.
func (h *hook) OnClientExpired(cl *mochi.Client) { h.forget(cl) }

// forget removes cl's session unless a newer client with its id replaced it.
func (h *hook) forget(cl *mochi.Client) {
	if v, ok := h.sessions.Load(cl.ID); ok && v.(*session).client == cl {
		h.sessions.CompareAndDelete(cl.ID, v)
	}
}

// Allowed reports whether a client with credential c may publish (write) or
// subscribe to topic: the cloud anything; an edge only the topics of its
// own in the protocol/sync layout, as the package doc lists.
func Allowed(c Credential, topic string, write bool) bool {
	if c.Cloud {
		return true
	}
	t, err := vsync.ParseTopic(topic)
	return err == nil && edgeMay(c, t, write)
}

// edgeMay is the ACL of an edge on a topic of the layout: it publishes the
// edge-side kinds of its own edge, and subscribes the cloud-side kinds of
// its own edge or, for a per-site kind, of its own site. It is the one rule
// both brokers apply: Allowed for the embedded one, edgeTopics for the
// Mosquitto ACL.
func edgeMay(c Credential, t vsync.Topic, write bool) bool {
	if c.Cloud || t.Tenant != c.Tenant {
		return false
	}
	want := vsync.SideCloud
	if write {
		want = vsync.SideEdge
	}
	if t.Kind.Publisher() != want {
		return false
	}
	if t.Kind.PerSite() {
		return t.Site == c.Site
	}
	return t.Edge == c.Edge
}

// edgeTopics lists, in the order of the topic kinds, every topic edge
// credential c may publish (write) or subscribe. edgeMay admits only topics
// of c's tenant and of c's own edge or site, so the one candidate per kind
// built here covers all it admits.
func edgeTopics(c Credential, write bool) []string {
	var topics []string
	for k := vsync.TopicState; k.Valid(); k++ {
		t := vsync.Topic{Kind: k, Tenant: c.Tenant, Edge: c.Edge}
		if k.PerSite() {
			t.Site, t.Edge = c.Site, ""
		}
		if edgeMay(c, t, write) {
			topics = append(topics, t.String())
		}
	}
	return topics
}
