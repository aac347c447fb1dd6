package postgres

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"varco.dev/cloud"
)

var _ cloud.SyncConfigService = (*SyncConfigService)(nil)

// SyncConfigService implements cloud.SyncConfigService: the tenant's
// offline policy (sync_policies) and signing keys (tenant_signing_keys).
type SyncConfigService struct {
	db *DB
	// Signer, when set, forgets a tenant's cached key when its keys change,
	// so that this process signs with a newly activated key at once (other
	// processes within their Signer's TTL).
	Signer *Signer
}

// NewSyncConfigService returns a SyncConfigService on db.
func NewSyncConfigService(db *DB) *SyncConfigService { return &SyncConfigService{db: db} }

// findPolicy returns the tenant's offline policy: version 1 without limits
// when it never set one.
func findPolicy(ctx context.Context, q queryer, tenantID int64) (*cloud.OfflinePolicy, error) {
	p := &cloud.OfflinePolicy{Limits: []cloud.OfflineLimit{}, Version: 1}
	err := q.QueryRow(ctx, `SELECT limits, version, updated_at FROM sync_policies WHERE tenant_id = $1`, tenantID).
		Scan(&p.Limits, &p.Version, &p.UpdatedAt)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("load offline policy: %w", err)
	}
	return p, nil
}

// OfflinePolicy returns the tenant's offline policy.
func (s *SyncConfigService) OfflinePolicy(ctx context.Context) (*cloud.OfflinePolicy, error) {
	op, err := cloud.Actor(ctx)
	if err != nil {
		return nil, err
	}
	return findPolicy(ctx, s.db.Pool, op.TenantID)
}

// PutOfflinePolicy replaces the tenant's policy; admins only. A tenant that
// never set one is at version 1. The trigger on sync_policies queues the
// policy for every site's next delta.
func (s *SyncConfigService) PutOfflinePolicy(ctx context.Context, p *cloud.OfflinePolicy, version int) (*cloud.OfflinePolicy, error) {
	if _, err := cloud.RequireRole(ctx, cloud.RoleAdmin); err != nil {
		return nil, err
	}
	if _, err := p.SyncPolicy(); err != nil {
		return nil, err
	}
	if p.Limits == nil {
		p.Limits = []cloud.OfflineLimit{}
	}
	out := &cloud.OfflinePolicy{Limits: p.Limits}
	err := s.db.inTx(ctx, func(tx *Tx) error {
		// Lock the tenant: the first policy is an insert, and two
		// concurrent first puts must not both succeed.
		if _, err := tx.Exec(ctx, `SELECT 1 FROM tenants WHERE id = $1 FOR UPDATE`, tx.tenant()); err != nil {
			return fmt.Errorf("lock tenant: %w", err)
		}
		cur, err := findPolicy(ctx, tx, tx.tenant())
		if err != nil {
			return err
		}
		if err := checkVersion("offline policy", cur.Version, version); err != nil {
			return err
		}
		out.Version, out.UpdatedAt = cur.Version+1, &tx.now
		if _, err := tx.Exec(ctx, `INSERT INTO sync_policies (tenant_id, limits, version, updated_at) VALUES ($1, $2, $3, $4)
			ON CONFLICT (tenant_id) DO UPDATE SET limits = excluded.limits, version = excluded.version, updated_at = excluded.updated_at`,
			tx.tenant(), out.Limits, out.Version, tx.now); err != nil {
			return fmt.Errorf("save offline policy: %w", err)
		}
		return tx.audit(ctx, "sync.offline_policy.update", "tenant", tx.tenant(), out)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// SigningKeys lists the tenant's keys, newest first; admins only. The
// first use creates generation 1.
func (s *SyncConfigService) SigningKeys(ctx context.Context) ([]*cloud.SigningKey, error) {
	op, err := cloud.RequireRole(ctx, cloud.RoleAdmin)
	if err != nil {
		return nil, err
	}
	if _, _, err := activeSigningKey(ctx, s.db, op.TenantID); err != nil {
		return nil, err
	}
	return listSigningKeys(ctx, s.db.Pool, op.TenantID)
}

func listSigningKeys(ctx context.Context, q queryer, tenantID int64) ([]*cloud.SigningKey, error) {
	rows, err := q.Query(ctx, `SELECT t.slug, k.generation, k.public_key, k.created_at, k.activated_at,
			k.generation = (SELECT max(generation) FROM tenant_signing_keys WHERE tenant_id = $1 AND activated_at IS NOT NULL)
		FROM tenant_signing_keys k JOIN tenants t ON t.id = k.tenant_id
		WHERE k.tenant_id = $1 AND k.retired_at IS NULL ORDER BY k.generation DESC`, tenantID)
	if err != nil {
		return nil, fmt.Errorf("list signing keys: %w", err)
	}
	keys, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*cloud.SigningKey, error) {
		var k cloud.SigningKey
		var slug string
		var pub []byte
		if err := r.Scan(&slug, &k.Generation, &pub, &k.CreatedAt, &k.ActivatedAt, &k.Active); err != nil {
			return nil, err
		}
		k.KeyID, k.PublicKey = signingKeyID(slug, k.Generation), base64.StdEncoding.EncodeToString(pub)
		k.ConfigLine = k.KeyID + "=" + k.PublicKey
		return &k, nil
	})
	if err != nil {
		return nil, fmt.Errorf("list signing keys: %w", err)
	}
	return keys, nil
}

// keyChange runs fn in an admin's transaction with the tenant's row locked
// (so that key changes of a tenant are serial), then forgets the cached key
// and returns the key of the generation fn returns (none for 0).
func (s *SyncConfigService) keyChange(ctx context.Context, fn func(tx *Tx, active, newest int) (int, error)) (*cloud.SigningKey, error) {
	op, err := cloud.RequireRole(ctx, cloud.RoleAdmin)
	if err != nil {
		return nil, err
	}
	if _, _, err := activeSigningKey(ctx, s.db, op.TenantID); err != nil {
		return nil, err
	}
	var key *cloud.SigningKey
	var slug string
	err = s.db.inTx(ctx, func(tx *Tx) error {
		if err := tx.QueryRow(ctx, `SELECT slug FROM tenants WHERE id = $1 FOR UPDATE`, tx.tenant()).Scan(&slug); err != nil {
			return fmt.Errorf("lock tenant: %w", err)
		}
		var active, newest int
		if err := tx.QueryRow(ctx, `SELECT coalesce(max(generation) FILTER (WHERE activated_at IS NOT NULL), 0), coalesce(max(generation), 0)
			FROM tenant_signing_keys WHERE tenant_id = $1`, tx.tenant()).Scan(&active, &newest); err != nil {
			return fmt.Errorf("signing key generations: %w", err)
		}
		g, err := fn(tx, active, newest)
		if err != nil || g == 0 {
			return err
		}
		keys, err := listSigningKeys(ctx, tx, tx.tenant())
		if err != nil {
			return err
		}
		for _, k := range keys {
			if k.Generation == g {
				key = k
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if s.Signer != nil {
		s.Signer.forget(slug)
	}
	return key, nil
}

// AddSigningKey stages the next generation of the tenant's key; admins only.
func (s *SyncConfigService) AddSigningKey(ctx context.Context) (*cloud.SigningKey, error) {
	return s.keyChange(ctx, func(tx *Tx, _, newest int) (int, error) {
		if err := insertSigningKey(ctx, tx, tx.tenant(), newest+1, false, tx.now); err != nil {
			return 0, err
		}
		return newest + 1, tx.audit(ctx, "sync.signing_key.add", "tenant", tx.tenant(), map[string]any{"generation": newest + 1})
	})
}

// ActivateSigningKey makes generation gen the one that signs; admins only.
func (s *SyncConfigService) ActivateSigningKey(ctx context.Context, gen int) (*cloud.SigningKey, error) {
	return s.keyChange(ctx, func(tx *Tx, active, newest int) (int, error) {
		switch {
		case gen < 1 || gen > newest:
			return 0, cloud.NotFound("Signing key")
		case gen < active:
			return 0, &cloud.Error{Code: cloud.ECONFLICT, Field: "generation",
				Message: fmt.Sprintf("Generation %d is older than the active generation %d.", gen, active)}
		case gen == active:
			return gen, nil
		}
		if _, err := tx.Exec(ctx, `UPDATE tenant_signing_keys SET activated_at = $3 WHERE tenant_id = $1 AND generation = $2`,
			tx.tenant(), gen, tx.now); err != nil {
			return 0, fmt.Errorf("activate signing key: %w", err)
		}
		return gen, tx.audit(ctx, "sync.signing_key.activate", "tenant", tx.tenant(), map[string]any{"generation": gen})
	})
}

// RetireSigningKey takes a generation older than the active one off the
// list; admins only. The row stays, for the audit trail.
func (s *SyncConfigService) RetireSigningKey(ctx context.Context, gen int) error {
	_, err := s.keyChange(ctx, func(tx *Tx, active, newest int) (int, error) {
		switch {
		case gen < 1 || gen > newest:
			return 0, cloud.NotFound("Signing key")
		case gen >= active:
			return 0, &cloud.Error{Code: cloud.ECONFLICT, Field: "generation",
				Message: fmt.Sprintf("Only generations older than the active one (%d) can be retired.", active)}
		}
		tag, err := tx.Exec(ctx, `UPDATE tenant_signing_keys SET retired_at = $3
			WHERE tenant_id = $1 AND generation = $2 AND retired_at IS NULL`, tx.tenant(), gen, tx.now)
		if err != nil {
			return 0, fmt.Errorf("retire signing key: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return 0, cloud.NotFound("Signing key")
		}
		return 0, tx.audit(ctx, "sync.signing_key.retire", "tenant", tx.tenant(), map[string]any{"generation": gen})
	})
	return err
}
