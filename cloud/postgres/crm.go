package postgres

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"varco.dev/cloud"
)

var _ cloud.CRMService = (*CRMService)(nil)

// CRMService implements cloud.CRMService.
type CRMService struct{ db *DB }

// NewCRMService returns a CRMService on db.
func NewCRMService(db *DB) *CRMService { return &CRMService{db: db} }

var crmWriters = []cloud.Role{cloud.RoleAdmin, cloud.RoleCRMManager}

func deviceStrings(d []cloud.DeviceType) []string {
	s := make([]string, len(d))
	for i, v := range d {
		s[i] = string(v)
	}
	return s
}

func deviceTypes(s []string) []cloud.DeviceType {
	d := make([]cloud.DeviceType, len(s))
	for i, v := range s {
		d[i] = cloud.DeviceType(v)
	}
	return d
}

func insertActionType(ctx context.Context, tx *Tx, t *cloud.ActionType) error {
	if err := t.Validate(); err != nil {
		return err
	}
	t.TenantID, t.Version = tx.tenant(), 1
	if t.Default {
		if _, err := tx.Exec(ctx, `UPDATE action_types SET is_default = false WHERE tenant_id = $1`, tx.tenant()); err != nil {
			return fmt.Errorf("clear default type: %w", err)
		}
	}
	err := tx.QueryRow(ctx, `INSERT INTO action_types (tenant_id, name, colour, active, is_default, description, access_action, device_types, display_message)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id`,
		t.TenantID, t.Name, t.Colour, t.Active, t.Default, t.Description, t.AccessAction, deviceStrings(t.DeviceTypes), t.DisplayMessage).Scan(&t.ID)
	if err != nil {
		return mapErr(fmt.Errorf("insert action type: %w", err))
	}
	return tx.audit(ctx, "action_type.create", "action_type", t.ID, t)
}

func insertOutcome(ctx context.Context, tx *Tx, o *cloud.Outcome) error {
	if err := o.Validate(); err != nil {
		return err
	}
	o.TenantID, o.Version = tx.tenant(), 1
	err := tx.QueryRow(ctx, `INSERT INTO outcomes (tenant_id, name, grp, is_default, active) VALUES ($1, $2, $3, $4, $5) RETURNING id`,
		o.TenantID, o.Name, o.Group, o.Default, o.Active).Scan(&o.ID)
	if err != nil {
		return mapErr(fmt.Errorf("insert outcome: %w", err))
	}
	return tx.audit(ctx, "outcome.create", "outcome", o.ID, o)
}

func insertStatus(ctx context.Context, tx *Tx, s *cloud.CommercialStatus) error {
	if s.Name == "" || len(s.Name) > 80 {
		return cloud.Invalid("name", "Name is required, at most 80 characters.")
	}
	s.TenantID, s.Version = tx.tenant(), 1
	err := tx.QueryRow(ctx, `INSERT INTO commercial_statuses (tenant_id, name, active) VALUES ($1, $2, $3) RETURNING id`,
		s.TenantID, s.Name, s.Active).Scan(&s.ID)
	if err != nil {
		return mapErr(fmt.Errorf("insert status: %w", err))
	}
	return tx.audit(ctx, "commercial_status.create", "commercial_status", s.ID, s)
}

func upsertRelation(ctx context.Context, tx *Tx, r *cloud.Relation) error {
	r.TenantID = tx.tenant()
	err := tx.QueryRow(ctx, `INSERT INTO crm_relations (tenant_id, action_type_id, outcome_id, allowed, new_status_id, next_type_id,
		next_recipient, next_operator_id, next_after_days, next_after_hours, points, conclusive)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
		ON CONFLICT (tenant_id, action_type_id, outcome_id) DO UPDATE SET allowed = excluded.allowed,
		new_status_id = excluded.new_status_id, next_type_id = excluded.next_type_id, next_recipient = excluded.next_recipient,
		next_operator_id = excluded.next_operator_id, next_after_days = excluded.next_after_days,
		next_after_hours = excluded.next_after_hours, points = excluded.points, conclusive = excluded.conclusive
		RETURNING id`,
		r.TenantID, r.ActionTypeID, r.OutcomeID, r.Allowed, r.NewStatusID, r.NextTypeID, r.NextRecipient, r.NextOperatorID,
		r.NextAfterDays, r.NextAfterHours, r.Points, r.Conclusive).Scan(&r.ID)
	if err != nil {
		return mapErr(fmt.Errorf("upsert relation: %w", err))
	}
	return tx.audit(ctx, "relation.put", "relation", r.ID, r)
}

const actionTypeCols = `id, tenant_id, name, colour, active, is_default, description, access_action, device_types, display_message, version`

func scanActionType(row pgx.Row) (*cloud.ActionType, error) {
	var t cloud.ActionType
	var dts []string
	if err := row.Scan(&t.ID, &t.TenantID, &t.Name, &t.Colour, &t.Active, &t.Default, &t.Description, &t.AccessAction, &dts, &t.DisplayMessage, &t.Version); err != nil {
		return nil, err
	}
	t.DeviceTypes = deviceTypes(dts)
	return &t, nil
}

const outcomeCols = `id, tenant_id, name, grp, is_default, active, version`

func scanOutcome(row pgx.Row) (*cloud.Outcome, error) {
	var o cloud.Outcome
	err := row.Scan(&o.ID, &o.TenantID, &o.Name, &o.Group, &o.Default, &o.Active, &o.Version)
	return &o, err
}

// loadConfig reads a tenant's whole CRM configuration.
func loadConfig(ctx context.Context, q queryer, tenantID int64) (*cloud.CRMConfig, error) {
	var cfg cloud.CRMConfig
	rows, err := q.Query(ctx, `SELECT `+actionTypeCols+` FROM action_types WHERE tenant_id = $1 ORDER BY id`, tenantID)
	if err != nil {
		return nil, fmt.Errorf("load action types: %w", err)
	}
	if cfg.ActionTypes, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (*cloud.ActionType, error) { return scanActionType(r) }); err != nil {
		return nil, fmt.Errorf("load action types: %w", err)
	}
	rows, err = q.Query(ctx, `SELECT `+outcomeCols+` FROM outcomes WHERE tenant_id = $1 ORDER BY id`, tenantID)
	if err != nil {
		return nil, fmt.Errorf("load outcomes: %w", err)
	}
	if cfg.Outcomes, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (*cloud.Outcome, error) { return scanOutcome(r) }); err != nil {
		return nil, fmt.Errorf("load outcomes: %w", err)
	}
	rows, err = q.Query(ctx, `SELECT id, tenant_id, name, active, version FROM commercial_statuses WHERE tenant_id = $1 ORDER BY id`, tenantID)
	if err != nil {
		return nil, fmt.Errorf("load statuses: %w", err)
	}
	if cfg.Statuses, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (*cloud.CommercialStatus, error) {
		var s cloud.CommercialStatus
		err := r.Scan(&s.ID, &s.TenantID, &s.Name, &s.Active, &s.Version)
		return &s, err
	}); err != nil {
		return nil, fmt.Errorf("load statuses: %w", err)
	}
	rows, err = q.Query(ctx, `SELECT id, tenant_id, action_type_id, outcome_id, allowed, new_status_id, next_type_id, next_recipient,
		next_operator_id, next_after_days, next_after_hours, points, conclusive FROM crm_relations WHERE tenant_id = $1 ORDER BY id`, tenantID)
	if err != nil {
		return nil, fmt.Errorf("load relations: %w", err)
	}
	if cfg.Relations, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (*cloud.Relation, error) {
		var x cloud.Relation
		err := r.Scan(&x.ID, &x.TenantID, &x.ActionTypeID, &x.OutcomeID, &x.Allowed, &x.NewStatusID, &x.NextTypeID, &x.NextRecipient,
			&x.NextOperatorID, &x.NextAfterDays, &x.NextAfterHours, &x.Points, &x.Conclusive)
		return &x, err
	}); err != nil {
		return nil, fmt.Errorf("load relations: %w", err)
	}
	return &cfg, nil
}

// configCache holds each tenant's CRM configuration under the
// tenants.crm_config_version it was read at. A trigger gives the tenant a
// new version (from a sequence, never reused) with every change to its
// configuration, in the changing transaction, by whatever path and in
// whatever process; a reader that finds another version reloads. So a
// change is visible to the next transaction that starts after its commit,
// as without a cache, for the price of one indexed read instead of four.
type configCache struct {
	mu      sync.Mutex
	tenants map[int64]cachedConfig
	loads   atomic.Int64
}

type cachedConfig struct {
	version int64
	cfg     *cloud.CRMConfig
}

// crmConfig returns the tenant's CRM configuration, read through q (the
// caller's transaction, or the pool). The configuration is shared between
// callers: it must not be modified.
func (db *DB) crmConfig(ctx context.Context, q queryer, tenantID int64) (*cloud.CRMConfig, error) {
	var version int64
	if err := q.QueryRow(ctx, `SELECT crm_config_version FROM tenants WHERE id = $1`, tenantID).Scan(&version); err != nil {
		return nil, notFound(fmt.Errorf("CRM config version: %w", err), "Tenant")
	}
	c := &db.configs
	c.mu.Lock()
	e, ok := c.tenants[tenantID]
	c.mu.Unlock()
	if ok && e.version == version {
		return e.cfg, nil
	}
	cfg, err := loadConfig(ctx, q, tenantID)
	if err != nil {
		return nil, err
	}
	c.loads.Add(1)
	c.mu.Lock()
	if c.tenants == nil {
		c.tenants = map[int64]cachedConfig{}
	}
	// The configuration read is at least as new as version (it was read
	// after it): at worst a newer one is stored under an older version and
	// reloaded next time.
	c.tenants[tenantID] = cachedConfig{version: version, cfg: cfg}
	c.mu.Unlock()
	return cfg, nil
}

// CRMConfigLoads returns how many times a CRM configuration was read from
// the tables because the cache did not hold the current version.
func (db *DB) CRMConfigLoads() int64 { return db.configs.loads.Load() }

// Config returns the tenant's CRM configuration.
func (s *CRMService) Config(ctx context.Context) (*cloud.CRMConfig, error) {
	op, err := cloud.Actor(ctx)
	if err != nil {
		return nil, err
	}
	return loadConfig(ctx, s.db.Pool, op.TenantID)
}

// CreateActionType adds an action type.
func (s *CRMService) CreateActionType(ctx context.Context, t *cloud.ActionType) error {
	if _, err := cloud.RequireRole(ctx, crmWriters...); err != nil {
		return err
	}
	return s.db.inTx(ctx, func(tx *Tx) error { return insertActionType(ctx, tx, t) })
}

// UpdateActionType changes an action type.
func (s *CRMService) UpdateActionType(ctx context.Context, id int64, version int, upd cloud.ActionTypeUpdate) (*cloud.ActionType, error) {
	if _, err := cloud.RequireRole(ctx, crmWriters...); err != nil {
		return nil, err
	}
	var t *cloud.ActionType
	err := s.db.inTx(ctx, func(tx *Tx) error {
		var err error
		if t, err = lockVersioned(ctx, tx, "action_types", actionTypeCols, id, "Action type", version, scanActionType); err != nil {
			return err
		}
		upd.Apply(t)
		if err := t.Validate(); err != nil {
			return err
		}
		if t.Default {
			if _, err := tx.Exec(ctx, `UPDATE action_types SET is_default = false WHERE tenant_id = $1 AND id <> $2`, tx.tenant(), id); err != nil {
				return fmt.Errorf("clear default type: %w", err)
			}
		}
		t.Version++
		if _, err := tx.Exec(ctx, `UPDATE action_types SET name = $3, colour = $4, active = $5, is_default = $6, description = $7,
			access_action = $8, device_types = $9, display_message = $10, version = $11 WHERE tenant_id = $1 AND id = $2`,
			tx.tenant(), id, t.Name, t.Colour, t.Active, t.Default, t.Description, t.AccessAction, deviceStrings(t.DeviceTypes), t.DisplayMessage, t.Version); err != nil {
			return mapErr(fmt.Errorf("update action type: %w", err))
		}
		return tx.audit(ctx, "action_type.update", "action_type", id, upd)
	})
	if err != nil {
		return nil, err
	}
	return t, nil
}

// CreateOutcome adds an outcome.
func (s *CRMService) CreateOutcome(ctx context.Context, o *cloud.Outcome) error {
	if _, err := cloud.RequireRole(ctx, crmWriters...); err != nil {
		return err
	}
	return s.db.inTx(ctx, func(tx *Tx) error { return insertOutcome(ctx, tx, o) })
}

// UpdateOutcome changes an outcome and, when its group changes, the open
// flag of the actions that have it.
func (s *CRMService) UpdateOutcome(ctx context.Context, id int64, version int, upd cloud.OutcomeUpdate) (*cloud.Outcome, error) {
	if _, err := cloud.RequireRole(ctx, crmWriters...); err != nil {
		return nil, err
	}
	var o *cloud.Outcome
	err := s.db.inTx(ctx, func(tx *Tx) error {
		var err error
		if o, err = lockVersioned(ctx, tx, "outcomes", outcomeCols, id, "Outcome", version, scanOutcome); err != nil {
			return err
		}
		if upd.Name != nil {
			o.Name = *upd.Name
		}
		if upd.Group != nil {
			o.Group = *upd.Group
		}
		if upd.Default != nil {
			o.Default = *upd.Default
		}
		if upd.Active != nil {
			o.Active = *upd.Active
		}
		if err := o.Validate(); err != nil {
			return err
		}
		o.Version++
		if _, err := tx.Exec(ctx, `UPDATE outcomes SET name = $3, grp = $4, is_default = $5, active = $6, version = $7 WHERE tenant_id = $1 AND id = $2`,
			tx.tenant(), id, o.Name, o.Group, o.Default, o.Active, o.Version); err != nil {
			return mapErr(fmt.Errorf("update outcome: %w", err))
		}
		if _, err := tx.Exec(ctx, `UPDATE crm_actions SET is_open = $3, version = version + 1, updated_at = $4,
			closed_at = CASE WHEN $3 THEN NULL ELSE coalesce(closed_at, $4) END
			WHERE tenant_id = $1 AND outcome_id = $2 AND is_open <> $3`, tx.tenant(), id, o.Group.Open(), tx.now); err != nil {
			return fmt.Errorf("reopen actions: %w", err)
		}
		return tx.audit(ctx, "outcome.update", "outcome", id, upd)
	})
	if err != nil {
		return nil, err
	}
	return o, nil
}

// CreateCommercialStatus adds a commercial status.
func (s *CRMService) CreateCommercialStatus(ctx context.Context, st *cloud.CommercialStatus) error {
	if _, err := cloud.RequireRole(ctx, crmWriters...); err != nil {
		return err
	}
	st.Active = true
	return s.db.inTx(ctx, func(tx *Tx) error { return insertStatus(ctx, tx, st) })
}

// PutRelation creates or replaces a relation.
func (s *CRMService) PutRelation(ctx context.Context, r *cloud.Relation) error {
	if _, err := cloud.RequireRole(ctx, crmWriters...); err != nil {
		return err
	}
	if err := r.Validate(); err != nil {
		return err
	}
	return s.db.inTx(ctx, func(tx *Tx) error { return upsertRelation(ctx, tx, r) })
}

// Replace moves actions from one type or outcome to another.
func (s *CRMService) Replace(ctx context.Context, kind string, from, to int64) (int, error) {
	if _, err := cloud.RequireRole(ctx, crmWriters...); err != nil {
		return 0, err
	}
	if from == to {
		return 0, cloud.Invalid("to", "Replacement must differ from the replaced one.")
	}
	var n int
	err := s.db.inTx(ctx, func(tx *Tx) error {
		cfg, err := s.db.crmConfig(ctx, tx, tx.tenant())
		if err != nil {
			return err
		}
		var tag pgconn.CommandTag
		switch kind {
		case "action_type":
			if cfg.ActionType(from) == nil {
				return cloud.Invalid("from", "Action type not found.")
			}
			if cfg.ActionType(to) == nil {
				return cloud.Invalid("to", "Action type not found.")
			}
			tag, err = tx.Exec(ctx, `UPDATE crm_actions SET type_id = $3, version = version + 1, updated_at = $4 WHERE tenant_id = $1 AND type_id = $2`,
				tx.tenant(), from, to, tx.now)
		case "outcome":
			if cfg.Outcome(from) == nil {
				return cloud.Invalid("from", "Outcome not found.")
			}
			o := cfg.Outcome(to)
			if o == nil {
				return cloud.Invalid("to", "Outcome not found.")
			}
			tag, err = tx.Exec(ctx, `UPDATE crm_actions SET outcome_id = $3, is_open = $5, version = version + 1, updated_at = $4,
				closed_at = CASE WHEN $5 THEN NULL ELSE coalesce(closed_at, $4) END WHERE tenant_id = $1 AND outcome_id = $2`,
				tx.tenant(), from, to, tx.now, o.Group.Open())
		default:
			return cloud.Invalid("kind", "Kind must be action_type or outcome.")
		}
		if err != nil {
			return mapErr(fmt.Errorf("replace %s: %w", kind, err))
		}
		n = int(tag.RowsAffected())
		return tx.audit(ctx, "crm.replace", kind, from, map[string]any{"to": to, "actions": n})
	})
	return n, err
}
