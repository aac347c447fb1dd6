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
func loadAccessInput(ctx context.Context, q batchQueryer, tenantID, memberID, siteID int64, now time.Time) (*cloud.AccessInput, []*cloud.Override, error) {
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
	data, err := loadAccessData(ctx, q, tenant, []int64{memberID})
	if err != nil {
		return nil, nil, err
	}
	in := data.input(memberID, siteID, loc, now)
	if in == nil {
		return nil, nil, cloud.NotFound("Member")
	}
	rows, err := q.Query(ctx, `SELECT o.id, o.member_id, o.gate_id, o.operator_id, o.reason, o.created_at, o.expires_at, o.used_at
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

// accessData is what ComputeAccessRecord needs for a batch of one tenant's
// members, at any of its sites: one query per table whatever the size of the
// batch, so that the sync publisher recomputes thousands of members at the
// cost of a few round trips. The maps are keyed by member id.
type accessData struct {
	tenant      *cloud.Tenant
	members     map[int64]*cloud.Member
	credentials map[int64][]*cloud.Credential
	memberships map[int64][]*cloud.Membership
	instalments map[int64][]*cloud.Instalment
	actions     map[int64][]*cloud.Action
	actionTypes []*cloud.ActionType
}

// loadAccessData loads the batch memberIDs of tenant's members; ids of
// members that do not exist are left out. The queries go in one pipelined
// round trip.
func loadAccessData(ctx context.Context, q batchQueryer, tenant *cloud.Tenant, memberIDs []int64) (*accessData, error) {
	var (
		members     []*cloud.Member
		credentials []*cloud.Credential
		memberships []*cloud.Membership
		instalments []*cloud.Instalment
		actions     []*cloud.Action
		actionTypes []*cloud.ActionType
		b           pgx.Batch
	)
	queueRows(&b, "members", &members, scanMember, `SELECT `+memberCols+` FROM members WHERE tenant_id = $1 AND id = ANY($2)`,
		tenant.ID, memberIDs)
	queueRows(&b, "credentials", &credentials, scanCredential, `SELECT `+credentialCols+` FROM credentials
		WHERE tenant_id = $1 AND member_id = ANY($2) ORDER BY id`, tenant.ID, memberIDs)
	queueRows(&b, "memberships", &memberships, scanMembership, `SELECT `+membershipCols+` FROM memberships
		WHERE tenant_id = $1 AND member_id = ANY($2) ORDER BY id`, tenant.ID, memberIDs)
	queueRows(&b, "instalments", &instalments, scanInstalment, `SELECT `+instalmentCols+` FROM instalments
		WHERE tenant_id = $1 AND member_id = ANY($2) AND paid_at IS NULL AND NOT cancelled ORDER BY id`, tenant.ID, memberIDs)
	queueRows(&b, "actions", &actions, scanAction, `SELECT `+actionCols+` FROM crm_actions
		WHERE tenant_id = $1 AND member_id = ANY($2) AND is_open
		AND type_id IN (SELECT id FROM action_types WHERE tenant_id = $1 AND access_action <> 'none') ORDER BY id`, tenant.ID, memberIDs)
	queueRows(&b, "action types", &actionTypes, scanActionType, `SELECT `+actionTypeCols+` FROM action_types
		WHERE tenant_id = $1 AND access_action <> 'none'`, tenant.ID)
	if err := q.SendBatch(ctx, &b).Close(); err != nil {
		return nil, err
	}
	d := &accessData{tenant: tenant, members: make(map[int64]*cloud.Member, len(members)), actionTypes: actionTypes,
		credentials: byMember(credentials, func(c *cloud.Credential) int64 { return c.MemberID }),
		memberships: byMember(memberships, func(m *cloud.Membership) int64 { return m.MemberID }),
		instalments: byMember(instalments, func(i *cloud.Instalment) int64 { return i.MemberID }),
		actions:     byMember(actions, func(a *cloud.Action) int64 { return a.MemberID })}
	for _, m := range members {
		d.members[m.ID] = m
	}
	return d, nil
}

// batchQueryer is a queryer that also pipelines batches: a pool, a
// connection or a transaction.
type batchQueryer interface {
	queryer
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// input returns the AccessInput of member id at a site, or nil if the batch
// has no such member.
func (d *accessData) input(id, siteID int64, loc *time.Location, now time.Time) *cloud.AccessInput {
	m := d.members[id]
	if m == nil {
		return nil
	}
	return &cloud.AccessInput{Tenant: d.tenant, Location: loc, Member: m, SiteID: siteID, Now: now,
		Credentials: d.credentials[id], Memberships: d.memberships[id], Instalments: d.instalments[id],
		Actions: d.actions[id], ActionTypes: d.actionTypes}
}

// queueRows queues a query on b whose rows are scanned into out when the
// batch runs; what names the rows in errors.
func queueRows[T any](b *pgx.Batch, what string, out *[]T, scan func(pgx.Row) (T, error), sql string, args ...any) {
	b.Queue(sql, args...).Query(func(rows pgx.Rows) error {
		v, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (T, error) { return scan(r) })
		if err != nil {
			return fmt.Errorf("load %s: %w", what, err)
		}
		*out = v
		return nil
	})
}

// byMember groups rows by member.
func byMember[T any](list []T, member func(T) int64) map[int64][]T {
	out := make(map[int64][]T)
	for _, v := range list {
		out[member(v)] = append(out[member(v)], v)
	}
	return out
}
