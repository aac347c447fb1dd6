package postgres

import (
	"context"
	"crypto/rand"
	"fmt"

	"github.com/alexedwards/argon2id"

	"varco.dev/cloud"
)

var _ cloud.TenantService = (*TenantService)(nil)

// TenantService implements cloud.TenantService.
type TenantService struct{ db *DB }

// NewTenantService returns a TenantService on db.
func NewTenantService(db *DB) *TenantService { return &TenantService{db: db} }

// CreateTenant creates a tenant with its first admin, the default CRM
// configuration and the recipe scheduled operations (disabled).
func (s *TenantService) CreateTenant(ctx context.Context, t *cloud.Tenant, admin *cloud.Operator, password string) error {
	if t.MembershipWarnDays == 0 {
		t.MembershipWarnDays = 7
	}
	if t.MedicalWarnDays == 0 {
		t.MedicalWarnDays = 15
	}
	if err := t.Validate(); err != nil {
		return err
	}
	admin.Role = cloud.RoleAdmin
	admin.Active = true
	if err := admin.Validate(); err != nil {
		return err
	}
	if err := cloud.ValidatePassword(password); err != nil {
		return err
	}
	hash, err := argon2id.CreateHash(password, s.db.PasswordParams)
	if err != nil {
		return fmt.Errorf("hash password: %w", err)
	}
	return s.db.inTxAs(ctx, &cloud.Operator{}, func(tx *Tx) error {
		t.CreatedAt = tx.now
		t.CredentialKey = make([]byte, 32)
		_, _ = rand.Read(t.CredentialKey) // crypto/rand.Read never fails
		err := tx.QueryRow(ctx, `INSERT INTO tenants (name, slug, membership_warn_days, medical_warn_days, credential_key, created_at)
			VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`, t.Name, t.Slug, t.MembershipWarnDays, t.MedicalWarnDays, t.CredentialKey, t.CreatedAt).Scan(&t.ID)
		if err != nil {
			return mapErr(fmt.Errorf("insert tenant: %w", err))
		}
		tx.op = &cloud.Operator{TenantID: t.ID}
		if err := insertOperator(ctx, tx, admin, hash); err != nil {
			return err
		}
		tx.op = admin
		if err := tx.audit(ctx, "tenant.create", "tenant", t.ID, map[string]any{"slug": t.Slug}); err != nil {
			return err
		}
		if err := seedCRM(ctx, tx, cloud.DefaultCRMConfig()); err != nil {
			return err
		}
		return seedRecipes(ctx, tx)
	})
}

// FindTenant returns the tenant of the operator in ctx.
func (s *TenantService) FindTenant(ctx context.Context) (*cloud.Tenant, error) {
	op, err := cloud.Actor(ctx)
	if err != nil {
		return nil, err
	}
	return findTenant(ctx, s.db.Pool, op.TenantID)
}

func findTenant(ctx context.Context, q queryer, id int64) (*cloud.Tenant, error) {
	var t cloud.Tenant
	err := q.QueryRow(ctx, `SELECT id, name, slug, membership_warn_days, medical_warn_days, credential_key, created_at FROM tenants WHERE id = $1`, id).
		Scan(&t.ID, &t.Name, &t.Slug, &t.MembershipWarnDays, &t.MedicalWarnDays, &t.CredentialKey, &t.CreatedAt)
	if err != nil {
		return nil, notFound(err, "Tenant")
	}
	return &t, nil
}

// seedCRM inserts the default CRM configuration for the tenant of tx.
func seedCRM(ctx context.Context, tx *Tx, cfg cloud.DefaultConfig) error {
	types := map[string]int64{}
	for _, t := range cfg.ActionTypes {
		if err := insertActionType(ctx, tx, &t); err != nil {
			return fmt.Errorf("seed action type %s: %w", t.Name, err)
		}
		types[t.Name] = t.ID
	}
	outcomes := map[string]int64{}
	for _, o := range cfg.Outcomes {
		if err := insertOutcome(ctx, tx, &o); err != nil {
			return fmt.Errorf("seed outcome %s: %w", o.Name, err)
		}
		outcomes[o.Name] = o.ID
	}
	statuses := map[string]int64{}
	for _, name := range cfg.Statuses {
		st := cloud.CommercialStatus{Name: name, Active: true}
		if err := insertStatus(ctx, tx, &st); err != nil {
			return fmt.Errorf("seed status %s: %w", name, err)
		}
		statuses[name] = st.ID
	}
	idOf := func(m map[string]int64, name string) (*int64, error) {
		if name == "" {
			return nil, nil
		}
		id, ok := m[name]
		if !ok {
			return nil, fmt.Errorf("default CRM config names unknown %q", name)
		}
		return &id, nil
	}
	for _, d := range cfg.Relations {
		r := cloud.Relation{ActionTypeID: types[d.Type], OutcomeID: outcomes[d.Outcome], Allowed: d.Allowed,
			NextRecipient: d.NextRecipient, NextAfterDays: d.NextAfterDays, NextAfterHours: d.NextAfterHours,
			Points: d.Points, Conclusive: d.Conclusive}
		var err error
		if r.NewStatusID, err = idOf(statuses, d.NewStatus); err != nil {
			return err
		}
		if r.NextTypeID, err = idOf(types, d.NextType); err != nil {
			return err
		}
		if err := r.Validate(); err != nil {
			return fmt.Errorf("seed relation %s/%s: %w", d.Type, d.Outcome, err)
		}
		if err := upsertRelation(ctx, tx, &r); err != nil {
			return fmt.Errorf("seed relation %s/%s: %w", d.Type, d.Outcome, err)
		}
	}
	return nil
}
