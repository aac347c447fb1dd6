package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"varco.dev/cloud"
)

var _ cloud.ActionService = (*ActionService)(nil)

// ActionService implements cloud.ActionService.
type ActionService struct{ db *DB }

// NewActionService returns an ActionService on db.
func NewActionService(db *DB) *ActionService { return &ActionService{db: db} }

// MaxBulk is the most members one bulk creation may name.
const MaxBulk = 10000

const actionCols = `id, tenant_id, member_id, type_id, outcome_id, kind, description, tags, planned_at, complete_by, purpose,
	private, operator_id, created_by, parent_id, is_open, closed_at, closed_by, version, created_at, updated_at`

func scanAction(row pgx.Row) (*cloud.Action, error) {
	var a cloud.Action
	var cb *time.Time
	err := row.Scan(&a.ID, &a.TenantID, &a.MemberID, &a.TypeID, &a.OutcomeID, &a.Kind, &a.Description, &a.Tags, &a.PlannedAt, &cb,
		&a.Purpose, &a.Private, &a.OperatorID, &a.CreatedBy, &a.ParentID, &a.Open, &a.ClosedAt, &a.ClosedBy, &a.Version, &a.CreatedAt, &a.UpdatedAt)
	if err != nil {
		return nil, err
	}
	a.CompleteBy = dateOf(cb)
	return &a, nil
}

// visibleSQL is the SQL form of cloud.Action.VisibleTo, with $2 the
// operator ID and $3 whether the operator sees every private action.
const visibleSQL = `(NOT private OR $3::boolean OR operator_id = $2 OR created_by = $2)`

func insertAction(ctx context.Context, tx *Tx, a *cloud.Action) error {
	a.TenantID, a.Version, a.CreatedAt, a.UpdatedAt = tx.tenant(), 1, tx.now, tx.now
	err := tx.QueryRow(ctx, `INSERT INTO crm_actions (tenant_id, member_id, type_id, outcome_id, kind, description, tags, planned_at,
		complete_by, purpose, private, operator_id, created_by, parent_id, is_open, closed_at, closed_by, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $18) RETURNING id`,
		a.TenantID, a.MemberID, a.TypeID, a.OutcomeID, a.Kind, a.Description, a.Tags, a.PlannedAt, dateArg(a.CompleteBy), a.Purpose,
		a.Private, a.OperatorID, a.CreatedBy, a.ParentID, a.Open, a.ClosedAt, a.ClosedBy, tx.now).Scan(&a.ID)
	if err != nil {
		return mapErr(fmt.Errorf("insert action: %w", err))
	}
	return tx.audit(ctx, "action.create", "action", a.ID, map[string]any{"member_id": a.MemberID, "type_id": a.TypeID, "outcome_id": a.OutcomeID})
}

// activeMember loads a member for a new action; archived members get none.
func activeMember(ctx context.Context, tx *Tx, id int64, field string, forUpdate bool) (*cloud.Member, error) {
	m, err := findMember(ctx, tx, tx.tenant(), id, forUpdate)
	if cloud.ErrorCode(err) == cloud.ENOTFOUND {
		return nil, cloud.Invalid(field, "Member not found.")
	} else if err != nil {
		return nil, err
	}
	if m.ArchivedAt != nil {
		return nil, cloud.Invalid(field, "The member is archived.")
	}
	return m, nil
}

// CreateAction creates an action.
func (s *ActionService) CreateAction(ctx context.Context, a *cloud.Action) error {
	return s.db.inTx(ctx, func(tx *Tx) error {
		cfg, err := s.db.crmConfig(ctx, tx, tx.tenant())
		if err != nil {
			return err
		}
		m, err := activeMember(ctx, tx, a.MemberID, "member_id", false)
		if err != nil {
			return err
		}
		a.ParentID = nil
		if err := a.Prepare(cfg, m, tx.op, tx.now); err != nil {
			return err
		}
		return insertAction(ctx, tx, a)
	})
}

func findAction(ctx context.Context, q queryer, op *cloud.Operator, id int64, forUpdate bool) (*cloud.Action, error) {
	sql := `SELECT ` + actionCols + ` FROM crm_actions WHERE tenant_id = $1 AND id = $4 AND ` + visibleSQL
	if forUpdate {
		sql += ` FOR UPDATE`
	}
	a, err := scanAction(q.QueryRow(ctx, sql, op.TenantID, op.ID, op.Role.SeesPrivate(), id))
	if err != nil {
		return nil, notFound(err, "Action")
	}
	return a, nil
}

// FindActionByID returns an action the operator may see.
func (s *ActionService) FindActionByID(ctx context.Context, id int64) (*cloud.Action, error) {
	op, err := cloud.Actor(ctx)
	if err != nil {
		return nil, err
	}
	return findAction(ctx, s.db.Pool, op, id, false)
}

// FindActions lists actions the operator may see, newest first.
func (s *ActionService) FindActions(ctx context.Context, f cloud.ActionFilter) ([]*cloud.Action, error) {
	op, err := cloud.Actor(ctx)
	if err != nil {
		return nil, err
	}
	// QueryExecModeExec: plan for the filters in use, not a generic plan.
	rows, err := s.db.Pool.Query(ctx, `SELECT `+actionCols+` FROM crm_actions WHERE tenant_id = $1 AND `+visibleSQL+`
		AND ($4 = 0 OR member_id = $4) AND ($5 = 0 OR operator_id = $5) AND ($6::boolean IS NULL OR is_open = $6)
		AND ($7 = 0 OR id < $7) ORDER BY id DESC LIMIT $8`, pgx.QueryExecModeExec,
		op.TenantID, op.ID, op.Role.SeesPrivate(), f.MemberID, f.OperatorID, f.Open, f.Cursor, limitOf(f.Limit, 50, 500))
	if err != nil {
		return nil, fmt.Errorf("find actions: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (*cloud.Action, error) { return scanAction(r) })
}

func saveAction(ctx context.Context, tx *Tx, a *cloud.Action) error {
	_, err := tx.Exec(ctx, `UPDATE crm_actions SET type_id = $3, outcome_id = $4, description = $5, tags = $6, planned_at = $7,
		complete_by = $8, purpose = $9, private = $10, operator_id = $11, is_open = $12, closed_at = $13, closed_by = $14,
		version = $15, updated_at = $16 WHERE tenant_id = $1 AND id = $2`,
		tx.tenant(), a.ID, a.TypeID, a.OutcomeID, a.Description, a.Tags, a.PlannedAt, dateArg(a.CompleteBy), a.Purpose, a.Private,
		a.OperatorID, a.Open, a.ClosedAt, a.ClosedBy, a.Version, a.UpdatedAt)
	if err != nil {
		return mapErr(fmt.Errorf("update action: %w", err))
	}
	return nil
}

// UpdateAction changes an action's details.
func (s *ActionService) UpdateAction(ctx context.Context, id int64, version int, upd cloud.ActionUpdate) (*cloud.Action, error) {
	var a *cloud.Action
	err := s.db.inTx(ctx, func(tx *Tx) error {
		var err error
		if a, err = findAction(ctx, tx, tx.op, id, true); err != nil {
			return err
		}
		if err := checkVersion("action", a.Version, version); err != nil {
			return err
		}
		upd.Apply(a)
		if a.Purpose != "" && !a.Purpose.Valid() {
			return cloud.Invalid("purpose", "Unknown GDPR purpose %q.", a.Purpose)
		}
		if len(a.Description) > 4000 {
			return cloud.Invalid("description", "Description is at most 4000 characters.")
		}
		if a.Tags == nil {
			a.Tags = []string{}
		}
		a.Version++
		a.UpdatedAt = tx.now
		if err := saveAction(ctx, tx, a); err != nil {
			return err
		}
		return tx.audit(ctx, "action.update", "action", id, upd)
	})
	if err != nil {
		return nil, err
	}
	return a, nil
}

// AdvanceAction closes an action and applies its relation in one transaction.
func (s *ActionService) AdvanceAction(ctx context.Context, id int64, req cloud.AdvanceRequest) (*cloud.AdvanceResult, error) {
	var res cloud.AdvanceResult
	err := s.db.inTx(ctx, func(tx *Tx) error {
		a, err := findAction(ctx, tx, tx.op, id, true)
		if err != nil {
			return err
		}
		if err := checkVersion("action", a.Version, req.Version); err != nil {
			return err
		}
		cfg, err := s.db.crmConfig(ctx, tx, tx.tenant())
		if err != nil {
			return err
		}
		m, err := findMember(ctx, tx, tx.tenant(), a.MemberID, true)
		if err != nil {
			return err
		}
		p, err := cloud.PlanAdvance(cfg, a, m, tx.op, req, tx.now)
		if err != nil {
			return err
		}
		p.Action.Version++
		p.Action.UpdatedAt = tx.now
		if err := saveAction(ctx, tx, p.Action); err != nil {
			return err
		}
		if err := tx.audit(ctx, "action.advance", "action", id, map[string]any{"mode": req.Mode, "outcome_id": req.OutcomeID}); err != nil {
			return err
		}
		if p.Note != nil {
			if err := insertAction(ctx, tx, p.Note); err != nil {
				return err
			}
		}
		if p.Next != nil {
			if err := insertAction(ctx, tx, p.Next); err != nil {
				if cloud.ErrorField(err) == "operator_id" {
					return cloud.Invalid("next.operator_id", "Operator not found.")
				}
				return err
			}
		}
		if p.NewStatusID != nil && (m.CommercialStatusID == nil || *m.CommercialStatusID != *p.NewStatusID) {
			m.CommercialStatusID = p.NewStatusID
			m.Version++
			m.UpdatedAt = tx.now
			if err := saveMember(ctx, tx, m); err != nil {
				return err
			}
			if err := tx.audit(ctx, "member.status", "member", m.ID, map[string]any{"commercial_status_id": *p.NewStatusID, "action_id": id}); err != nil {
				return err
			}
		}
		if p.Points != 0 && p.PointsTo != nil {
			if _, err := tx.Exec(ctx, `INSERT INTO operator_points (tenant_id, operator_id, action_id, points, at) VALUES ($1, $2, $3, $4, $5)`,
				tx.tenant(), *p.PointsTo, id, p.Points, tx.now); err != nil {
				return mapErr(fmt.Errorf("award points: %w", err))
			}
		}
		res = cloud.AdvanceResult{Action: p.Action, Note: p.Note, Next: p.Next, NewStatusID: p.NewStatusID, Points: p.Points}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &res, nil
}

// CopyAction creates a new open action like an existing one.
func (s *ActionService) CopyAction(ctx context.Context, id int64, memberID int64, plannedAt *time.Time) (*cloud.Action, error) {
	var c *cloud.Action
	err := s.db.inTx(ctx, func(tx *Tx) error {
		a, err := findAction(ctx, tx, tx.op, id, false)
		if err != nil {
			return err
		}
		cfg, err := s.db.crmConfig(ctx, tx, tx.tenant())
		if err != nil {
			return err
		}
		if memberID == 0 {
			memberID = a.MemberID
		}
		m, err := activeMember(ctx, tx, memberID, "member_id", false)
		if err != nil {
			return err
		}
		c = &cloud.Action{TypeID: a.TypeID, Kind: cloud.ActionPlanned, Description: a.Description, Tags: a.Tags, PlannedAt: a.PlannedAt,
			CompleteBy: a.CompleteBy, Purpose: a.Purpose, Private: a.Private}
		if memberID == a.MemberID {
			c.OperatorID = a.OperatorID
		}
		if plannedAt != nil {
			c.PlannedAt = plannedAt
		}
		if err := c.Prepare(cfg, m, tx.op, tx.now); err != nil {
			return err
		}
		if err := insertAction(ctx, tx, c); err != nil {
			return err
		}
		return tx.audit(ctx, "action.copy", "action", c.ID, map[string]any{"from": id})
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// BulkCreateActions creates one action per member, all or none.
func (s *ActionService) BulkCreateActions(ctx context.Context, tmpl *cloud.Action, memberIDs []int64) ([]*cloud.Action, error) {
	if len(memberIDs) == 0 {
		return nil, cloud.Invalid("member_ids", "At least one member is required.")
	}
	if len(memberIDs) > MaxBulk {
		return nil, cloud.Invalid("member_ids", "At most %d members at once.", MaxBulk)
	}
	var out []*cloud.Action
	err := s.db.inTx(ctx, func(tx *Tx) error {
		var err error
		out, err = bulkInsertActions(ctx, tx, tmpl, memberIDs)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// bulkInsertActions creates a copy of tmpl for each member in tx: the one
// path of every bulk creation (a list of members, a target's members, the
// CRM communications). A member listed twice or not active is EINVALID
// naming its index in member_ids.
func bulkInsertActions(ctx context.Context, tx *Tx, tmpl *cloud.Action, memberIDs []int64) ([]*cloud.Action, error) {
	cfg, err := tx.db.crmConfig(ctx, tx, tx.tenant())
	if err != nil {
		return nil, err
	}
	out := make([]*cloud.Action, 0, len(memberIDs))
	seen := map[int64]bool{}
	for i, mid := range memberIDs {
		if seen[mid] {
			return nil, cloud.Invalid(fmt.Sprintf("member_ids[%d]", i), "Member %d is listed twice.", mid)
		}
		seen[mid] = true
		m, err := activeMember(ctx, tx, mid, fmt.Sprintf("member_ids[%d]", i), false)
		if err != nil {
			return nil, err
		}
		a := *tmpl
		a.ID, a.ParentID = 0, nil
		if err := a.Prepare(cfg, m, tx.op, tx.now); err != nil {
			return nil, err
		}
		if err := insertAction(ctx, tx, &a); err != nil {
			return nil, err
		}
		out = append(out, &a)
	}
	return out, nil
}

// Agenda lists open planned actions by operator and day.
func (s *ActionService) Agenda(ctx context.Context, f cloud.AgendaFilter) ([]*cloud.AgendaDay, error) {
	op, err := cloud.Actor(ctx)
	if err != nil {
		return nil, err
	}
	if f.From.IsZero() || f.To.IsZero() {
		return nil, cloud.Invalid("from", "from and to dates are required.")
	}
	if f.To.Before(f.From) || f.From.DaysUntil(f.To) > 92 {
		return nil, cloud.Invalid("to", "to must be after from, at most 92 days later.")
	}
	rows, err := s.db.Pool.Query(ctx, `SELECT `+actionCols+` FROM crm_actions WHERE tenant_id = $1 AND `+visibleSQL+`
		AND is_open AND planned_at >= $4 AND planned_at < $5 AND ($6 = 0 OR operator_id = $6)
		ORDER BY operator_id NULLS LAST, planned_at, id LIMIT 5000`, pgx.QueryExecModeExec,
		op.TenantID, op.ID, op.Role.SeesPrivate(), f.From.Time(), f.To.AddDays(1).Time(), f.OperatorID)
	if err != nil {
		return nil, fmt.Errorf("agenda: %w", err)
	}
	acts, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*cloud.Action, error) { return scanAction(r) })
	if err != nil {
		return nil, fmt.Errorf("agenda: %w", err)
	}
	days := []*cloud.AgendaDay{}
	for _, a := range acts {
		d := cloud.DateOf(a.PlannedAt.UTC())
		if n := len(days); n > 0 && days[n-1].Day == d && eqID(days[n-1].OperatorID, a.OperatorID) {
			days[n-1].Actions = append(days[n-1].Actions, a)
			continue
		}
		days = append(days, &cloud.AgendaDay{OperatorID: a.OperatorID, Day: d, Actions: []*cloud.Action{a}})
	}
	return days, nil
}

func eqID(a, b *int64) bool { return (a == nil && b == nil) || (a != nil && b != nil && *a == *b) }

// Leaderboard sums the points operators earned in [from, to).
func (s *ActionService) Leaderboard(ctx context.Context, from, to time.Time) ([]*cloud.LeaderboardEntry, error) {
	op, err := cloud.Actor(ctx)
	if err != nil {
		return nil, err
	}
	if !to.After(from) {
		return nil, cloud.Invalid("to", "to must be after from.")
	}
	rows, err := s.db.Pool.Query(ctx, `SELECT o.id, o.name, sum(p.points)::int, count(*)::int FROM operator_points p
		JOIN operators o ON o.tenant_id = p.tenant_id AND o.id = p.operator_id
		WHERE p.tenant_id = $1 AND p.at >= $2 AND p.at < $3 GROUP BY o.id, o.name ORDER BY 3 DESC, o.id`, op.TenantID, from, to)
	if err != nil {
		return nil, fmt.Errorf("leaderboard: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (*cloud.LeaderboardEntry, error) {
		var e cloud.LeaderboardEntry
		err := r.Scan(&e.OperatorID, &e.Name, &e.Points, &e.Actions)
		return &e, err
	})
}

// WhatIf counts the members and lists the gates a blocking type or a bulk
// creation would affect (see cloud.WhatIfResult).
func (s *ActionService) WhatIf(ctx context.Context, req cloud.WhatIfRequest) (*cloud.WhatIfResult, error) {
	op, err := cloud.Actor(ctx)
	if err != nil {
		return nil, err
	}
	t := &cloud.ActionType{Name: "what-if", AccessAction: cloud.AccessNone, DeviceTypes: []cloud.DeviceType{}}
	if req.TypeID != 0 {
		cfg, err := s.db.crmConfig(ctx, s.db.Pool, op.TenantID)
		if err != nil {
			return nil, err
		}
		ct := cfg.ActionType(req.TypeID)
		if ct == nil {
			return nil, cloud.Invalid("type_id", "Action type not found.")
		}
		c := *ct
		t = &c
	} else if len(req.MemberIDs) == 0 {
		return nil, cloud.Invalid("type_id", "Give an action type or a list of members.")
	}
	if req.AccessAction != nil {
		t.AccessAction = *req.AccessAction
	}
	if req.DeviceTypes != nil {
		t.DeviceTypes = *req.DeviceTypes
	}
	if !t.AccessAction.Valid() {
		return nil, cloud.Invalid("access_action", "Access action must be none, message or message_block.")
	}
	for _, d := range t.DeviceTypes {
		if !d.Valid() {
			return nil, cloud.Invalid("device_types", "Unknown device type %q.", d)
		}
	}
	if len(req.MemberIDs) > MaxBulk {
		return nil, cloud.Invalid("member_ids", "At most %d members at once.", MaxBulk)
	}
	res := &cloud.WhatIfResult{AccessAction: t.AccessAction, Gates: []*cloud.WhatIfGate{}}
	if t.AccessAction == cloud.AccessNone {
		return res, nil
	}
	// targets: the members in scope (the bulk's, or those with an open
	// action of the type), not archived; armed: those of them with an
	// active credential, the only ones a gate can stop. $1 tenant, $2 today,
	// $3 member IDs or type ID.
	targets := `SELECT m.id FROM members m WHERE m.tenant_id = $1 AND m.id = ANY($3::bigint[]) AND m.archived_at IS NULL`
	arg := any(req.MemberIDs)
	if len(req.MemberIDs) == 0 {
		targets = `SELECT DISTINCT a.member_id AS id FROM crm_actions a JOIN members m ON m.tenant_id = a.tenant_id AND m.id = a.member_id
			WHERE a.tenant_id = $1 AND a.type_id = $3::bigint AND a.is_open AND m.archived_at IS NULL`
		arg = req.TypeID
	}
	with := `WITH targets AS (` + targets + `),
		armed AS (SELECT t.id FROM targets t WHERE EXISTS (SELECT 1 FROM credentials c WHERE c.tenant_id = $1 AND c.member_id = t.id
			AND NOT c.disabled AND (c.valid_until IS NULL OR c.valid_until >= $2)))`
	today := cloud.DateOf(s.db.now()).Time()
	var inScope, armed int
	if err := s.db.Pool.QueryRow(ctx, with+` SELECT (SELECT count(*) FROM targets), (SELECT count(*) FROM armed)`,
		op.TenantID, today, arg).Scan(&inScope, &armed); err != nil {
		return nil, fmt.Errorf("what-if members: %w", err)
	}
	rows, err := s.db.Pool.Query(ctx, with+` SELECT g.id, g.site_id, s.name, g.name, g.device_type, count(DISTINCT ms.member_id)::int
		FROM gates g JOIN sites s ON s.tenant_id = g.tenant_id AND s.id = g.site_id
		LEFT JOIN memberships ms ON ms.tenant_id = g.tenant_id AND ms.member_id IN (SELECT id FROM armed) AND NOT ms.cancelled
			AND ms.starts_on <= $2 AND ms.ends_on >= $2
			AND (cardinality(ms.site_ids) = 0 OR g.site_id = ANY(ms.site_ids))
			AND (cardinality(ms.device_types) = 0 OR g.device_type = ANY(ms.device_types))
		WHERE g.tenant_id = $1 AND (cardinality($4::text[]) = 0 OR g.device_type = ANY($4))
		GROUP BY g.id, s.name ORDER BY g.site_id, g.id`, op.TenantID, today, arg, deviceStrings(t.DeviceTypes))
	if err != nil {
		return nil, fmt.Errorf("what-if gates: %w", err)
	}
	res.Gates, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (*cloud.WhatIfGate, error) {
		var g cloud.WhatIfGate
		err := r.Scan(&g.ID, &g.SiteID, &g.SiteName, &g.Name, &g.DeviceType, &g.Members)
		return &g, err
	})
	if err != nil {
		return nil, fmt.Errorf("what-if gates: %w", err)
	}
	res.MembersWithoutCredential = inScope - armed
	if len(res.Gates) == 0 {
		return res, nil // no gate of these types: nobody is stopped or greeted
	}
	if t.AccessAction == cloud.AccessMessageBlock {
		res.MembersStopped = armed
	} else {
		res.MembersMessaged = armed
	}
	return res, nil
}

// CreateOverride lets a blocked member through once at a gate.
func (s *ActionService) CreateOverride(ctx context.Context, o *cloud.Override) error {
	if err := o.Validate(); err != nil {
		return err
	}
	return s.db.inTx(ctx, func(tx *Tx) error {
		if _, err := findMember(ctx, tx, tx.tenant(), o.MemberID, false); err != nil {
			return err
		}
		g, err := scanGate(tx.QueryRow(ctx, `SELECT `+gateCols+` FROM gates WHERE tenant_id = $1 AND id = $2`, tx.tenant(), o.GateID))
		if err != nil {
			if cloud.ErrorCode(notFound(err, "")) == cloud.ENOTFOUND {
				return cloud.Invalid("gate_id", "Gate not found.")
			}
			return fmt.Errorf("find gate: %w", err)
		}
		var blocked bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM crm_actions a JOIN action_types t ON t.tenant_id = a.tenant_id AND t.id = a.type_id
			WHERE a.tenant_id = $1 AND a.member_id = $2 AND a.is_open AND t.access_action = 'message_block'
			AND (cardinality(t.device_types) = 0 OR $3 = ANY(t.device_types)))`, tx.tenant(), o.MemberID, string(g.DeviceType)).Scan(&blocked); err != nil {
			return fmt.Errorf("check blocked: %w", err)
		}
		if !blocked {
			return cloud.Errorf(cloud.ECONFLICT, "The member is not blocked at this gate.")
		}
		o.TenantID, o.OperatorID, o.CreatedAt, o.ExpiresAt, o.UsedAt = tx.tenant(), tx.op.ID, tx.now, tx.now.Add(cloud.OverrideTTL), nil
		if err := tx.QueryRow(ctx, `INSERT INTO access_overrides (tenant_id, member_id, gate_id, operator_id, reason, created_at, expires_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`, o.TenantID, o.MemberID, o.GateID, o.OperatorID, o.Reason, o.CreatedAt, o.ExpiresAt).Scan(&o.ID); err != nil {
			return mapErr(fmt.Errorf("insert override: %w", err))
		}
		return tx.audit(ctx, "access.override", "member", o.MemberID, map[string]any{"gate_id": o.GateID, "reason": o.Reason, "override_id": o.ID})
	})
}
