package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"varco.dev/cloud"
)

var _ cloud.TargetService = (*TargetService)(nil)

// TargetService implements cloud.TargetService. A target is evaluated by
// one SQL statement over the tenant's members (see buildTargetWhere),
// never by loading members into Go.
type TargetService struct{ db *DB }

// NewTargetService returns a TargetService on db.
func NewTargetService(db *DB) *TargetService { return &TargetService{db: db} }

// MaxTargetPage bounds one page of a target's members.
const MaxTargetPage = 1000

const targetCols = `id, tenant_id, name, description, criteria, date_mode, reference_date, schedulable, in_menu, created_by,
	archived_at, version, created_at, updated_at`

func scanTarget(row pgx.Row) (*cloud.Target, error) {
	var t cloud.Target
	var ref time.Time
	err := row.Scan(&t.ID, &t.TenantID, &t.Name, &t.Description, &t.Criteria, &t.DateMode, &ref, &t.Schedulable, &t.InMenu,
		&t.CreatedBy, &t.ArchivedAt, &t.Version, &t.CreatedAt, &t.UpdatedAt)
	if err != nil {
		return nil, err
	}
	t.ReferenceDate = cloud.DateOf(ref)
	return &t, nil
}

// tenantLocation returns the tenant's time zone: its first site's, or
// cloud.DefaultTimezone when it has no site.
func tenantLocation(ctx context.Context, q queryer, tenantID int64) (*time.Location, error) {
	tz := cloud.DefaultTimezone
	err := q.QueryRow(ctx, `SELECT timezone FROM sites WHERE tenant_id = $1 ORDER BY id LIMIT 1`, tenantID).Scan(&tz)
	if err != nil && err != pgx.ErrNoRows {
		return nil, fmt.Errorf("tenant time zone: %w", err)
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return nil, fmt.Errorf("tenant time zone %q: %w", tz, err)
	}
	return loc, nil
}

// tenantToday returns today's date in the tenant's time zone, and the zone.
func (db *DB) tenantToday(ctx context.Context, q queryer, tenantID int64) (cloud.Date, *time.Location, error) {
	loc, err := tenantLocation(ctx, q, tenantID)
	if err != nil {
		return cloud.Date{}, nil, err
	}
	return cloud.DateOf(db.now().In(loc)), loc, nil
}

// checkCriteriaRefs checks that the statuses, action types and outcomes the
// criteria name are the tenant's.
func checkCriteriaRefs(cfg *cloud.CRMConfig, criteria []cloud.Criterion) error {
	for i, c := range criteria {
		for _, id := range c.StatusIDs {
			if cfg.Status(id) == nil {
				return cloud.Invalid(fmt.Sprintf("criteria[%d].status_ids", i), "Commercial status %d not found.", id)
			}
		}
		if c.TypeID != 0 && cfg.ActionType(c.TypeID) == nil {
			return cloud.Invalid(fmt.Sprintf("criteria[%d].action_type_id", i), "Action type not found.")
		}
		if c.OutcomeID != 0 && cfg.Outcome(c.OutcomeID) == nil {
			return cloud.Invalid(fmt.Sprintf("criteria[%d].outcome_id", i), "Outcome not found.")
		}
	}
	return nil
}

// validateTarget checks a target's fields and its references.
func (db *DB) validateTarget(ctx context.Context, tx *Tx, t *cloud.Target) error {
	if err := t.Validate(); err != nil {
		return err
	}
	cfg, err := db.crmConfig(ctx, tx, tx.tenant())
	if err != nil {
		return err
	}
	return checkCriteriaRefs(cfg, t.Criteria)
}

// CreateTarget saves a target; its absolute dates are taken as chosen today.
func (s *TargetService) CreateTarget(ctx context.Context, t *cloud.Target) error {
	if _, err := cloud.RequireRole(ctx, crmWriters...); err != nil {
		return err
	}
	return s.db.inTx(ctx, func(tx *Tx) error {
		today, _, err := s.db.tenantToday(ctx, tx, tx.tenant())
		if err != nil {
			return err
		}
		t.ReferenceDate = today
		if err := s.db.validateTarget(ctx, tx, t); err != nil {
			return err
		}
		t.TenantID, t.Version, t.CreatedAt, t.UpdatedAt, t.ArchivedAt, t.CreatedBy = tx.tenant(), 1, tx.now, tx.now, nil, &tx.op.ID
		return insertTarget(ctx, tx, t)
	})
}

func insertTarget(ctx context.Context, tx *Tx, t *cloud.Target) error {
	err := tx.QueryRow(ctx, `INSERT INTO targets (tenant_id, name, description, criteria, date_mode, reference_date, schedulable,
		in_menu, created_by, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) RETURNING id`,
		t.TenantID, t.Name, t.Description, t.Criteria, t.DateMode, t.ReferenceDate.Time(), t.Schedulable, t.InMenu, t.CreatedBy,
		t.CreatedAt).Scan(&t.ID)
	if err != nil {
		return targetErr(mapErr(fmt.Errorf("insert target: %w", err)))
	}
	return tx.audit(ctx, "target.create", "target", t.ID, map[string]any{"name": t.Name})
}

// targetErr words a taken name.
func targetErr(err error) error {
	if cloud.ErrorCode(err) == cloud.ECONFLICT && cloud.ErrorField(err) == "name" {
		return &cloud.Error{Code: cloud.ECONFLICT, Field: "name", Message: "Another target has this name."}
	}
	return err
}

func findTarget(ctx context.Context, q queryer, tenantID, id int64) (*cloud.Target, error) {
	t, err := scanTarget(q.QueryRow(ctx, `SELECT `+targetCols+` FROM targets WHERE tenant_id = $1 AND id = $2`, tenantID, id))
	if err != nil {
		return nil, notFound(err, "Target")
	}
	return t, nil
}

// FindTargetByID returns one of the tenant's targets, archived ones included.
func (s *TargetService) FindTargetByID(ctx context.Context, id int64) (*cloud.Target, error) {
	op, err := cloud.Actor(ctx)
	if err != nil {
		return nil, err
	}
	return findTarget(ctx, s.db.Pool, op.TenantID, id)
}

// FindTargets lists the tenant's targets by ID.
func (s *TargetService) FindTargets(ctx context.Context, f cloud.TargetFilter) ([]*cloud.Target, error) {
	op, err := cloud.Actor(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := s.db.Pool.Query(ctx, `SELECT `+targetCols+` FROM targets WHERE tenant_id = $1 AND id > $2
		AND (NOT $3 OR in_menu) AND (NOT $4 OR schedulable) AND ($5 OR archived_at IS NULL) ORDER BY id LIMIT $6`,
		op.TenantID, f.Cursor, f.InMenu, f.Schedulable, f.IncludeArchived, limitOf(f.Limit, 50, 500))
	if err != nil {
		return nil, fmt.Errorf("find targets: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (*cloud.Target, error) { return scanTarget(r) })
}

func saveTarget(ctx context.Context, tx *Tx, t *cloud.Target) error {
	_, err := tx.Exec(ctx, `UPDATE targets SET name = $3, description = $4, criteria = $5, date_mode = $6, reference_date = $7,
		schedulable = $8, in_menu = $9, archived_at = $10, version = $11, updated_at = $12 WHERE tenant_id = $1 AND id = $2`,
		tx.tenant(), t.ID, t.Name, t.Description, t.Criteria, t.DateMode, t.ReferenceDate.Time(), t.Schedulable, t.InMenu,
		t.ArchivedAt, t.Version, t.UpdatedAt)
	if err != nil {
		return targetErr(mapErr(fmt.Errorf("update target: %w", err)))
	}
	return nil
}

// usedBySchedule returns ECONFLICT when an active scheduled operation runs
// the target; why says what the caller was about to do.
func usedBySchedule(ctx context.Context, tx *Tx, targetID int64, why string) error {
	var name string
	err := tx.QueryRow(ctx, `SELECT name FROM schedules WHERE tenant_id = $1 AND target_id = $2 AND active ORDER BY id LIMIT 1`,
		tx.tenant(), targetID).Scan(&name)
	if err == pgx.ErrNoRows {
		return nil
	} else if err != nil {
		return fmt.Errorf("schedules of target: %w", err)
	}
	return cloud.Errorf(cloud.ECONFLICT, "The active scheduled operation %q uses this target: deactivate it before you %s.", name, why)
}

// UpdateTarget changes a target. A target used by an active scheduled
// operation must stay usable in scheduled operations.
func (s *TargetService) UpdateTarget(ctx context.Context, id int64, version int, upd cloud.TargetUpdate) (*cloud.Target, error) {
	if _, err := cloud.RequireRole(ctx, crmWriters...); err != nil {
		return nil, err
	}
	var t *cloud.Target
	err := s.db.inTx(ctx, func(tx *Tx) error {
		var err error
		if t, err = lockVersioned(ctx, tx, "targets", targetCols, id, "Target", version, scanTarget); err != nil {
			return err
		}
		today, _, err := s.db.tenantToday(ctx, tx, tx.tenant())
		if err != nil {
			return err
		}
		upd.Apply(t, today)
		if err := s.db.validateTarget(ctx, tx, t); err != nil {
			return err
		}
		if !t.Schedulable {
			if err := usedBySchedule(ctx, tx, id, "make the target unusable in scheduled operations"); err != nil {
				return err
			}
		}
		t.Version++
		t.UpdatedAt = tx.now
		if err := saveTarget(ctx, tx, t); err != nil {
			return err
		}
		return tx.audit(ctx, "target.update", "target", id, upd)
	})
	if err != nil {
		return nil, err
	}
	return t, nil
}

// ArchiveTarget hides a target from lists; scheduled operations keep their
// history of it.
func (s *TargetService) ArchiveTarget(ctx context.Context, id int64, version int) (*cloud.Target, error) {
	if _, err := cloud.RequireRole(ctx, crmWriters...); err != nil {
		return nil, err
	}
	var t *cloud.Target
	err := s.db.inTx(ctx, func(tx *Tx) error {
		var err error
		if t, err = lockVersioned(ctx, tx, "targets", targetCols, id, "Target", version, scanTarget); err != nil {
			return err
		}
		if t.ArchivedAt != nil {
			return cloud.Errorf(cloud.ECONFLICT, "The target is already archived.")
		}
		if err := usedBySchedule(ctx, tx, id, "archive the target"); err != nil {
			return err
		}
		t.ArchivedAt = &tx.now
		t.Version++
		t.UpdatedAt = tx.now
		if err := saveTarget(ctx, tx, t); err != nil {
			return err
		}
		return tx.audit(ctx, "target.archive", "target", id, nil)
	})
	if err != nil {
		return nil, err
	}
	return t, nil
}

// where returns the SQL condition selecting def's members on day (zero:
// today in the tenant's time zone) and the day it used.
func (db *DB) targetWhere(ctx context.Context, q queryer, tenantID int64, def *cloud.TargetDefinition, day cloud.Date) (string, []any, cloud.Date, error) {
	today, loc, err := db.tenantToday(ctx, q, tenantID)
	if err != nil {
		return "", nil, day, err
	}
	if day.IsZero() {
		day = today
	}
	where, args, err := buildTargetWhere(targetEval{tenantID: tenantID, today: day, loc: loc, shift: def.Shift(day)}, def.Criteria)
	return where, args, day, err
}

// members returns a page of def's members: by ID after cursor when offset
// is negative, else at offset.
func (db *DB) targetMembers(ctx context.Context, q queryer, tenantID int64, def *cloud.TargetDefinition, day cloud.Date,
	cursor int64, offset, limit int) ([]*cloud.Member, cloud.Date, error) {
	where, args, day, err := db.targetWhere(ctx, q, tenantID, def, day)
	if err != nil {
		return nil, day, err
	}
	n := len(args)
	sql := fmt.Sprintf(`SELECT `+memberCols+` FROM members m WHERE %s AND m.id > $%d ORDER BY m.id LIMIT $%d OFFSET $%d`, where, n+1, n+2, n+3)
	// Planned for its values each time: the selectivity of a window or a
	// tag varies too much for one generic plan.
	args = append([]any{pgx.QueryExecModeExec}, append(args, cursor, limit, max(offset, 0))...)
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, day, fmt.Errorf("target members: %w", err)
	}
	ms, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*cloud.Member, error) { return scanMember(r) })
	if err != nil {
		return nil, day, fmt.Errorf("target members: %w", err)
	}
	return ms, day, nil
}

// page runs def for one page of q.
func (s *TargetService) page(ctx context.Context, op *cloud.Operator, def *cloud.TargetDefinition, q cloud.TargetQuery) (*cloud.TargetPage, error) {
	if q.Page == 0 {
		q.Page = 1
	}
	if q.Page < 1 || q.Page > 100_000 {
		return nil, cloud.Invalid("page", "Page must be from 1 to 100000.")
	}
	q.Limit = limitOf(q.Limit, 50, MaxTargetPage)
	ms, day, err := s.db.targetMembers(ctx, s.db.Pool, op.TenantID, def, q.Day, 0, (q.Page-1)*q.Limit, q.Limit)
	if err != nil {
		return nil, err
	}
	p := &cloud.TargetPage{Day: day, Page: q.Page, Limit: q.Limit, Items: ms}
	if p.Items == nil {
		p.Items = []*cloud.Member{}
	}
	if len(ms) == q.Limit {
		p.NextPage = new(q.Page + 1)
	}
	return p, nil
}

// RunTarget returns a page of a saved target's members.
func (s *TargetService) RunTarget(ctx context.Context, id int64, q cloud.TargetQuery) (*cloud.TargetPage, error) {
	op, err := cloud.Actor(ctx)
	if err != nil {
		return nil, err
	}
	t, err := findTarget(ctx, s.db.Pool, op.TenantID, id)
	if err != nil {
		return nil, err
	}
	return s.page(ctx, op, &t.TargetDefinition, q)
}

// PreviewTarget runs an unsaved definition; its dates are taken as chosen today.
func (s *TargetService) PreviewTarget(ctx context.Context, def cloud.TargetDefinition, q cloud.TargetQuery) (*cloud.TargetPage, error) {
	op, err := cloud.Actor(ctx)
	if err != nil {
		return nil, err
	}
	if err := def.Validate(); err != nil {
		return nil, err
	}
	cfg, err := s.db.crmConfig(ctx, s.db.Pool, op.TenantID)
	if err != nil {
		return nil, err
	}
	if err := checkCriteriaRefs(cfg, def.Criteria); err != nil {
		return nil, err
	}
	today, _, err := s.db.tenantToday(ctx, s.db.Pool, op.TenantID)
	if err != nil {
		return nil, err
	}
	def.ReferenceDate = today
	return s.page(ctx, op, &def, q)
}

// CountTarget counts a target's members.
func (s *TargetService) CountTarget(ctx context.Context, id int64, day cloud.Date) (int, error) {
	op, err := cloud.Actor(ctx)
	if err != nil {
		return 0, err
	}
	t, err := findTarget(ctx, s.db.Pool, op.TenantID, id)
	if err != nil {
		return 0, err
	}
	where, args, _, err := s.db.targetWhere(ctx, s.db.Pool, op.TenantID, &t.TargetDefinition, day)
	if err != nil {
		return 0, err
	}
	var n int
	args = append([]any{pgx.QueryExecModeExec}, args...)
	if err := s.db.Pool.QueryRow(ctx, `SELECT count(*) FROM members m WHERE `+where, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("count target: %w", err)
	}
	return n, nil
}

// EachTargetMember pages through a target's members by ID.
func (s *TargetService) EachTargetMember(ctx context.Context, id int64, day cloud.Date, yield func(*cloud.Member) error) error {
	op, err := cloud.Actor(ctx)
	if err != nil {
		return err
	}
	t, err := findTarget(ctx, s.db.Pool, op.TenantID, id)
	if err != nil {
		return err
	}
	if day.IsZero() {
		if day, _, err = s.db.tenantToday(ctx, s.db.Pool, op.TenantID); err != nil {
			return err
		}
	}
	var cursor int64
	for {
		ms, _, err := s.db.targetMembers(ctx, s.db.Pool, op.TenantID, &t.TargetDefinition, day, cursor, -1, MaxTargetPage)
		if err != nil {
			return err
		}
		for _, m := range ms {
			if err := yield(m); err != nil {
				return err
			}
		}
		if len(ms) < MaxTargetPage {
			return nil
		}
		cursor = ms[len(ms)-1].ID
	}
}

// targetMemberIDs returns the IDs of def's members, at most limit+1 of
// them so that callers can tell "too many".
func (db *DB) targetMemberIDs(ctx context.Context, q queryer, tenantID int64, def *cloud.TargetDefinition, day cloud.Date, limit int) ([]int64, error) {
	where, args, _, err := db.targetWhere(ctx, q, tenantID, def, day)
	if err != nil {
		return nil, err
	}
	args = append([]any{pgx.QueryExecModeExec}, append(args, limit+1)...)
	rows, err := q.Query(ctx, fmt.Sprintf(`SELECT m.id FROM members m WHERE %s ORDER BY m.id LIMIT $%d`, where, len(args)-1), args...)
	if err != nil {
		return nil, fmt.Errorf("target member IDs: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("target member IDs: %w", err)
	}
	return ids, nil
}

// CreateTargetActions creates a copy of tmpl for every member of the
// target, in one transaction, through the bulk creation path.
func (s *TargetService) CreateTargetActions(ctx context.Context, id int64, day cloud.Date, tmpl *cloud.Action) (*cloud.TargetActionsResult, error) {
	res := &cloud.TargetActionsResult{}
	err := s.db.inTx(ctx, func(tx *Tx) error {
		t, err := findTarget(ctx, tx, tx.tenant(), id)
		if err != nil {
			return err
		}
		if day.IsZero() {
			if day, _, err = s.db.tenantToday(ctx, tx, tx.tenant()); err != nil {
				return err
			}
		}
		ids, err := s.db.targetMemberIDs(ctx, tx, tx.tenant(), &t.TargetDefinition, day, MaxBulk)
		if err != nil {
			return err
		}
		if len(ids) > MaxBulk {
			return cloud.Invalid("target", "The target has more than %d members: narrow it to create actions for all.", MaxBulk)
		}
		res.Day, res.Members = day, len(ids)
		if len(ids) == 0 {
			res.Actions = []*cloud.Action{}
			return nil
		}
		if res.Actions, err = bulkInsertActions(ctx, tx, tmpl, ids); err != nil {
			return err
		}
		return tx.audit(ctx, "target.actions", "target", id, map[string]any{"day": day, "actions": len(res.Actions), "type_id": tmpl.TypeID})
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}
