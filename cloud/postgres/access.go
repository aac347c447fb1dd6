package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"varco.dev/cloud"
)

var _ cloud.AccessService = (*AccessService)(nil)

// AccessService implements cloud.AccessService: it loads what
// cloud.ComputeAccessRecord needs in one read-only transaction.
type AccessService struct{ db *DB }

// NewAccessService returns an AccessService on db.
func NewAccessService(db *DB) *AccessService { return &AccessService{db: db} }

// AccessRecord computes a member's access record for a site.
func (s *AccessService) AccessRecord(ctx context.Context, memberID, siteID int64) (*cloud.AccessView, error) {
	op, err := cloud.Actor(ctx)
	if err != nil {
		return nil, err
	}
	tx, err := s.db.Pool.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly, IsoLevel: pgx.RepeatableRead})
	if err != nil {
		return nil, fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	now := s.db.now()
	in, overrides, err := loadAccessInput(ctx, tx, op.TenantID, memberID, siteID, now)
	if err != nil {
		return nil, err
	}
	rec, err := cloud.ComputeAccessRecord(*in)
	if err != nil {
		return nil, err
	}
	if overrides == nil {
		overrides = []*cloud.Override{}
	}
	return &cloud.AccessView{SiteID: siteID, ComputedAt: now, Record: rec, Overrides: overrides}, nil
}

// loadAccessInput reads what ComputeAccessRecord needs, and the member's
// pending overrides at the site's gates.
func loadAccessInput(ctx context.Context, q queryer, tenantID, memberID, siteID int64, now time.Time) (*cloud.AccessInput, []*cloud.Override, error) {
	tenant, err := findTenant(ctx, q, tenantID)
	if err != nil {
		return nil, nil, err
	}
	site, err := scanSite(q.QueryRow(ctx, `SELECT `+siteCols+` FROM sites WHERE tenant_id = $1 AND id = $2`, tenantID, siteID))
	if err != nil {
		return nil, nil, notFound(err, "Site")
	}
	loc, err := time.LoadLocation(site.Timezone)
	if err != nil {
		return nil, nil, fmt.Errorf("site %d time zone: %w", siteID, err)
	}
	in := &cloud.AccessInput{Tenant: tenant, SiteID: siteID, Location: loc, Now: now}
	if in.Member, err = findMember(ctx, q, tenantID, memberID, false); err != nil {
		return nil, nil, err
	}
	rows, err := q.Query(ctx, `SELECT `+credentialCols+` FROM credentials WHERE tenant_id = $1 AND member_id = $2`, tenantID, memberID)
	if err != nil {
		return nil, nil, fmt.Errorf("load credentials: %w", err)
	}
	if in.Credentials, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (*cloud.Credential, error) { return scanCredential(r) }); err != nil {
		return nil, nil, fmt.Errorf("load credentials: %w", err)
	}
	rows, err = q.Query(ctx, `SELECT `+membershipCols+` FROM memberships WHERE tenant_id = $1 AND member_id = $2`, tenantID, memberID)
	if err != nil {
		return nil, nil, fmt.Errorf("load memberships: %w", err)
	}
	if in.Memberships, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (*cloud.Membership, error) { return scanMembership(r) }); err != nil {
		return nil, nil, fmt.Errorf("load memberships: %w", err)
	}
	rows, err = q.Query(ctx, `SELECT `+instalmentCols+` FROM instalments WHERE tenant_id = $1 AND member_id = $2
		AND paid_at IS NULL AND NOT cancelled`, tenantID, memberID)
	if err != nil {
		return nil, nil, fmt.Errorf("load instalments: %w", err)
	}
	if in.Instalments, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (*cloud.Instalment, error) { return scanInstalment(r) }); err != nil {
		return nil, nil, fmt.Errorf("load instalments: %w", err)
	}
	rows, err = q.Query(ctx, `SELECT `+actionCols+` FROM crm_actions WHERE tenant_id = $1 AND member_id = $2 AND is_open
		AND type_id IN (SELECT id FROM action_types WHERE tenant_id = $1 AND access_action <> 'none')`, tenantID, memberID)
	if err != nil {
		return nil, nil, fmt.Errorf("load actions: %w", err)
	}
	if in.Actions, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (*cloud.Action, error) { return scanAction(r) }); err != nil {
		return nil, nil, fmt.Errorf("load actions: %w", err)
	}
	rows, err = q.Query(ctx, `SELECT `+actionTypeCols+` FROM action_types WHERE tenant_id = $1 AND access_action <> 'none'`, tenantID)
	if err != nil {
		return nil, nil, fmt.Errorf("load action types: %w", err)
	}
	if in.ActionTypes, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (*cloud.ActionType, error) { return scanActionType(r) }); err != nil {
		return nil, nil, fmt.Errorf("load action types: %w", err)
	}
	rows, err = q.Query(ctx, `SELECT o.id, o.member_id, o.gate_id, o.operator_id, o.reason, o.created_at, o.expires_at, o.used_at
		FROM access_overrides o JOIN gates g ON g.tenant_id = o.tenant_id AND g.id = o.gate_id
		WHERE o.tenant_id = $1 AND o.member_id = $2 AND g.site_id = $3 AND o.used_at IS NULL AND o.expires_at > $4`, tenantID, memberID, siteID, now)
	if err != nil {
		return nil, nil, fmt.Errorf("load overrides: %w", err)
	}
	overrides, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*cloud.Override, error) {
		var o cloud.Override
		err := r.Scan(&o.ID, &o.MemberID, &o.GateID, &o.OperatorID, &o.Reason, &o.CreatedAt, &o.ExpiresAt, &o.UsedAt)
		return &o, err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("load overrides: %w", err)
	}
	return in, overrides, nil
}
