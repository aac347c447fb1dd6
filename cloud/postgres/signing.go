package postgres

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"strconv"
	gosync "sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	vsync "varco.dev/protocol/sync"
)

// DefaultSignerTTL is how long a Signer signs with a key it loaded before it
// looks again: the delay after which a key activated by another replica
// signs everywhere.
const DefaultSignerTTL = 10 * time.Second

// Signer seals the messages the cloud sends to edges, signed with their
// tenant's active Ed25519 key (table tenant_signing_keys); it implements
// mqtt.Sealer. A tenant's first key is generated, with crypto/rand, the first
// time one is needed. Keys are cached per tenant for TTL.
//
// The private keys are stored in PostgreSQL, readable by whoever reads the
// database or its backups. Production deployments should keep them in a KMS
// or an HSM that signs on the cloud's behalf; that is out of scope here, and
// Signer is the one place that would change.
type Signer struct {
	db *DB
	// TTL is how long a loaded key is used before it is read again;
	// DefaultSignerTTL when 0.
	TTL time.Duration

	mu   gosync.Mutex
	keys map[string]signerKey // by tenant slug
}

type signerKey struct {
	id     string
	priv   ed25519.PrivateKey
	loaded time.Time
}

// NewSigner returns a Signer on db.
func NewSigner(db *DB) *Signer { return &Signer{db: db, keys: make(map[string]signerKey)} }

// Seal validates msg, wraps it in an envelope and signs it with the active
// key of the tenant its Header names. Returns ENOTFOUND for an unknown tenant.
func (s *Signer) Seal(ctx context.Context, msg vsync.Message) ([]byte, error) {
	env, err := vsync.Seal(msg)
	if err != nil {
		return nil, err
	}
	k, err := s.key(ctx, env.Tenant)
	if err != nil {
		return nil, err
	}
	if err := env.Sign(k.id, k.priv); err != nil {
		return nil, err
	}
	return env.Marshal()
}

// forget drops the cached key of a tenant, after a change of its keys.
func (s *Signer) forget(slug string) {
	s.mu.Lock()
	delete(s.keys, slug)
	s.mu.Unlock()
}

func (s *Signer) key(ctx context.Context, slug string) (signerKey, error) {
	ttl := s.TTL
	if ttl == 0 {
		ttl = DefaultSignerTTL
	}
	s.mu.Lock()
	k, ok := s.keys[slug]
	s.mu.Unlock()
	if ok && time.Since(k.loaded) < ttl {
		return k, nil
	}
	var tenantID int64
	if err := s.db.Pool.QueryRow(ctx, `SELECT id FROM tenants WHERE slug = $1`, slug).Scan(&tenantID); err != nil {
		return signerKey{}, fmt.Errorf("signing key of tenant %q: %w", slug, notFound(err, "Tenant"))
	}
	gen, seed, err := activeSigningKey(ctx, s.db, tenantID)
	if err != nil {
		return signerKey{}, fmt.Errorf("signing key of tenant %q: %w", slug, err)
	}
	k = signerKey{id: signingKeyID(slug, gen), priv: ed25519.NewKeyFromSeed(seed), loaded: time.Now()}
	s.mu.Lock()
	s.keys[slug] = k
	s.mu.Unlock()
	return k, nil
}

// signingKeyID is the key id of a generation of a tenant's key.
func signingKeyID(slug string, generation int) string { return slug + "-" + strconv.Itoa(generation) }

// activeSigningKey returns the generation and seed of the tenant's active
// key, creating generation 1 if the tenant has no key at all.
func activeSigningKey(ctx context.Context, db *DB, tenantID int64) (int, []byte, error) {
	const active = `SELECT generation, private_key FROM tenant_signing_keys
		WHERE tenant_id = $1 AND activated_at IS NOT NULL ORDER BY generation DESC LIMIT 1`
	var gen int
	var seed []byte
	err := db.Pool.QueryRow(ctx, active, tenantID).Scan(&gen, &seed)
	if errors.Is(err, pgx.ErrNoRows) {
		if err = insertSigningKey(ctx, db.Pool, tenantID, 1, true, db.now()); err != nil {
			return 0, nil, err
		}
		err = db.Pool.QueryRow(ctx, active, tenantID).Scan(&gen, &seed)
	}
	if err != nil {
		return 0, nil, fmt.Errorf("load signing key: %w", err)
	}
	return gen, seed, nil
}

// execer is what a pool, a connection and a transaction have in common for
// statements without rows.
type execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// insertSigningKey stores a new key of the given generation, unless that
// generation exists already (a concurrent first use: the other one wins).
func insertSigningKey(ctx context.Context, q execer, tenantID int64, generation int, activate bool, now time.Time) error {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return fmt.Errorf("generate signing key: %w", err)
	}
	var activated *time.Time
	if activate {
		activated = &now
	}
	_, err = q.Exec(ctx, `INSERT INTO tenant_signing_keys (tenant_id, generation, private_key, public_key, created_at, activated_at)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING`, tenantID, generation, priv.Seed(), []byte(pub), now, activated)
	if err != nil {
		return fmt.Errorf("insert signing key: %w", err)
	}
	return nil
}

// PublicSigningKeys returns the public keys of every generation of a
// tenant's key that is not retired, by key id: what an edge of the tenant verifies with. Tests
// and tools use it; the API has SyncConfigService.SigningKeys.
func (s *Signer) PublicSigningKeys(ctx context.Context, slug string) (map[string]ed25519.PublicKey, error) {
	rows, err := s.db.Pool.Query(ctx, `SELECT k.generation, k.public_key FROM tenant_signing_keys k
		JOIN tenants t ON t.id = k.tenant_id WHERE t.slug = $1 AND k.retired_at IS NULL`, slug)
	if err != nil {
		return nil, fmt.Errorf("public signing keys: %w", err)
	}
	keys := make(map[string]ed25519.PublicKey)
	var gen int
	var pub []byte
	_, err = pgx.ForEachRow(rows, []any{&gen, &pub}, func() error {
		keys[signingKeyID(slug, gen)] = ed25519.PublicKey(pub)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("public signing keys: %w", err)
	}
	return keys, nil
}
