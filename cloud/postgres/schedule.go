package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"varco.dev/cloud"
)

var _ cloud.ScheduleService = (*ScheduleService)(nil)

// ScheduleService implements cloud.ScheduleService.
type ScheduleService struct{ db *DB }

// NewScheduleService returns a ScheduleService on db.
func NewScheduleService(db *DB) *ScheduleService { return &ScheduleService{db: db} }

const scheduleCols = `id, tenant_id, name, active, sender_id, recurrence, to_char(send_time, 'HH24:MI'), timezone, starts_on, ends_on,
	target_id, body_kind, template_id, channel, purpose, action_type_id, action_text, complete_days, coalesce(recipe, ''),
	next_run_at, version, created_at, updated_at`

func scanSchedule(row pgx.Row) (*cloud.Schedule, error) {
	var s cloud.Schedule
	var starts time.Time
	var ends *time.Time
	err := row.Scan(&s.ID, &s.TenantID, &s.Name, &s.Active, &s.SenderID, &s.Recurrence, &s.SendTime, &s.Timezone, &starts, &ends,
		&s.TargetID, &s.Body.Kind, &s.Body.TemplateID, &s.Body.Channel, &s.Body.Purpose, &s.Body.ActionTypeID, &s.Body.ActionText,
		&s.Body.CompleteDays, &s.Recipe, &s.NextRunAt, &s.Version, &s.CreatedAt, &s.UpdatedAt)
	if err != nil {
		return nil, err
	}
	s.StartsOn, s.EndsOn = cloud.DateOf(starts), dateOf(ends)
	return &s, nil
}

// nextRunAt is when an operation runs next after now, nil when inactive or
// over.
func nextRunAt(s *cloud.Schedule, now time.Time) *time.Time {
	if !s.Active {
		return nil
	}
	at, _, ok := cloud.NextRun(now, s.Timing)
	if !ok {
		return nil
	}
	at = at.UTC()
	return &at
}

// validateSchedule checks an operation and that its target (usable in
// scheduled operations), sender (an active operator), action type (active)
// and, when active, template (not archived, for the body's channel) are
// the tenant's.
func validateSchedule(ctx context.Context, tx *Tx, s *cloud.Schedule) error {
	if err := s.Validate(); err != nil {
		return err
	}
	t, err := findTarget(ctx, tx, tx.tenant(), s.TargetID)
	if cloud.ErrorCode(err) == cloud.ENOTFOUND {
		return cloud.Invalid("target_id", "Target not found.")
	} else if err != nil {
		return err
	}
	if t.ArchivedAt != nil || !t.Schedulable {
		return cloud.Invalid("target_id", "Target %q is not usable in scheduled operations.", t.Name)
	}
	op, err := findOperator(ctx, tx, tx.tenant(), s.SenderID)
	if cloud.ErrorCode(err) == cloud.ENOTFOUND || (err == nil && !op.Active) {
		return cloud.Invalid("sender_id", "The sender must be an active operator.")
	} else if err != nil {
		return err
	}
	if s.Active && s.Body.Kind == cloud.BodyCommunication {
		// Checked here, not only by the communicator at the first run: a
		// wrong template would otherwise surface as a failed run, days
		// later. Only for active operations, so that one whose template was
		// archived since can still be deactivated.
		t, err := findTemplate(ctx, tx, tx.tenant(), *s.Body.TemplateID)
		if cloud.ErrorCode(err) == cloud.ENOTFOUND || (err == nil && t.ArchivedAt != nil) {
			return cloud.Invalid("body.template_id", "Template not found or archived.")
		} else if err != nil {
			return err
		}
		if t.Channel != s.Body.Channel.TemplateChannel() {
			return cloud.Invalid("body.template_id", "The template %q is for %s, not %s.", t.Name, t.Channel, s.Body.Channel)
		}
	}
	if s.Body.Kind == cloud.BodyActions {
		cfg, err := tx.db.crmConfig(ctx, tx, tx.tenant())
		if err != nil {
			return err
		}
		at := cfg.ActionType(*s.Body.ActionTypeID)
		if at == nil || !at.Active {
			return cloud.Invalid("body.action_type_id", "Action type not found or obsolete.")
		}
	}
	return nil
}

func findOperator(ctx context.Context, q queryer, tenantID, id int64) (*cloud.Operator, error) {
	o, err := scanOperator(q.QueryRow(ctx, `SELECT `+operatorCols+` FROM operators WHERE tenant_id = $1 AND id = $2`, tenantID, id))
	if err != nil {
		return nil, notFound(err, "Operator")
	}
	return o, nil
}

func insertSchedule(ctx context.Context, tx *Tx, s *cloud.Schedule) error {
	s.TenantID, s.Version, s.CreatedAt, s.UpdatedAt = tx.tenant(), 1, tx.now, tx.now
	s.NextRunAt = nextRunAt(s, tx.now)
	var recipe *string
	if s.Recipe != "" {
		recipe = &s.Recipe
	}
	b := s.Body
	err := tx.QueryRow(ctx, `INSERT INTO schedules (tenant_id, name, active, sender_id, recurrence, send_time, timezone, starts_on, ends_on,
		target_id, body_kind, template_id, channel, purpose, action_type_id, action_text, complete_days, recipe, next_run_at, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6::time, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $20) RETURNING id`,
		s.TenantID, s.Name, s.Active, s.SenderID, s.Recurrence, s.SendTime, s.Timezone, s.StartsOn.Time(), dateArg(s.EndsOn),
		s.TargetID, b.Kind, b.TemplateID, b.Channel, b.Purpose, b.ActionTypeID, b.ActionText, b.CompleteDays, recipe, s.NextRunAt, tx.now).Scan(&s.ID)
	if err != nil {
		return mapErr(fmt.Errorf("insert schedule: %w", err))
	}
	return tx.audit(ctx, "schedule.create", "schedule", s.ID, map[string]any{"name": s.Name, "active": s.Active})
}

// CreateSchedule saves a scheduled operation. The sender defaults to the
// actor, the time zone to the tenant's, the start to today.
func (s *ScheduleService) CreateSchedule(ctx context.Context, sc *cloud.Schedule) error {
	if _, err := cloud.RequireRole(ctx, crmWriters...); err != nil {
		return err
	}
	return s.db.inTx(ctx, func(tx *Tx) error {
		today, loc, err := s.db.tenantToday(ctx, tx, tx.tenant())
		if err != nil {
			return err
		}
		if sc.SenderID == 0 {
			sc.SenderID = tx.op.ID
		}
		if sc.Timezone == "" {
			sc.Timezone = loc.String()
		}
		if sc.StartsOn.IsZero() {
			sc.StartsOn = today
		}
		sc.Recipe = ""
		if err := validateSchedule(ctx, tx, sc); err != nil {
			return err
		}
		return insertSchedule(ctx, tx, sc)
	})
}

func findSchedule(ctx context.Context, q queryer, tenantID, id int64) (*cloud.Schedule, error) {
	sc, err := scanSchedule(q.QueryRow(ctx, `SELECT `+scheduleCols+` FROM schedules WHERE tenant_id = $1 AND id = $2`, tenantID, id))
	if err != nil {
		return nil, notFound(err, "Scheduled operation")
	}
	return sc, nil
}

// FindScheduleByID returns one of the tenant's scheduled operations.
func (s *ScheduleService) FindScheduleByID(ctx context.Context, id int64) (*cloud.Schedule, error) {
	op, err := cloud.Actor(ctx)
	if err != nil {
		return nil, err
	}
	return findSchedule(ctx, s.db.Pool, op.TenantID, id)
}

// FindSchedules lists the tenant's scheduled operations, seeding the
// recipes first for a tenant created before they existed.
func (s *ScheduleService) FindSchedules(ctx context.Context, f cloud.ScheduleFilter) ([]*cloud.Schedule, error) {
	op, err := cloud.Actor(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.db.ensureRecipes(ctx, op.TenantID); err != nil {
		return nil, err
	}
	rows, err := s.db.Pool.Query(ctx, `SELECT `+scheduleCols+` FROM schedules WHERE tenant_id = $1 AND id > $2
		AND ($3::boolean IS NULL OR active = $3) ORDER BY id LIMIT $4`, op.TenantID, f.Cursor, f.Active, limitOf(f.Limit, 50, 500))
	if err != nil {
		return nil, fmt.Errorf("find schedules: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (*cloud.Schedule, error) { return scanSchedule(r) })
}

// UpdateSchedule changes a scheduled operation and recomputes its next run.
func (s *ScheduleService) UpdateSchedule(ctx context.Context, id int64, version int, upd cloud.ScheduleUpdate) (*cloud.Schedule, error) {
	if _, err := cloud.RequireRole(ctx, crmWriters...); err != nil {
		return nil, err
	}
	var sc *cloud.Schedule
	err := s.db.inTx(ctx, func(tx *Tx) error {
		var err error
		if sc, err = lockVersioned(ctx, tx, "schedules", scheduleCols, id, "Scheduled operation", version, scanSchedule); err != nil {
			return err
		}
		upd.Apply(sc)
		if err := validateSchedule(ctx, tx, sc); err != nil {
			return err
		}
		sc.Version++
		sc.UpdatedAt = tx.now
		sc.NextRunAt = nextRunAt(sc, tx.now)
		b := sc.Body
		if _, err := tx.Exec(ctx, `UPDATE schedules SET name = $3, active = $4, sender_id = $5, recurrence = $6, send_time = $7::time,
			timezone = $8, starts_on = $9, ends_on = $10, target_id = $11, body_kind = $12, template_id = $13, channel = $14, purpose = $15,
			action_type_id = $16, action_text = $17, complete_days = $18, next_run_at = $19, version = $20, updated_at = $21
			WHERE tenant_id = $1 AND id = $2`, tx.tenant(), id, sc.Name, sc.Active, sc.SenderID, sc.Recurrence, sc.SendTime, sc.Timezone,
			sc.StartsOn.Time(), dateArg(sc.EndsOn), sc.TargetID, b.Kind, b.TemplateID, b.Channel, b.Purpose, b.ActionTypeID, b.ActionText,
			b.CompleteDays, sc.NextRunAt, sc.Version, sc.UpdatedAt); err != nil {
			return mapErr(fmt.Errorf("update schedule: %w", err))
		}
		return tx.audit(ctx, "schedule.update", "schedule", id, upd)
	})
	if err != nil {
		return nil, err
	}
	return sc, nil
}

// runDedupKey is cloud.DedupKey of the run r, in SQL.
const runDedupKey = `'op:' || r.schedule_id || ':' || to_char(r.run_day, 'YYYY-MM-DD')`

// runFrom joins each run of a communication to the messages under its
// dedup key, whichever job stored them. A run retried after a crash has a
// communication per attempt, and the last one counts the members the
// earlier ones messaged as duplicates: the history counts the day's
// messages instead (one per member), and so also those a stopped replica
// left pending once the worker that takes them over has sent them.
const runFrom = `schedule_runs r LEFT JOIN LATERAL (SELECT count(*) FILTER (WHERE m.status = 'sent') AS sent,
		count(*) FILTER (WHERE m.status = 'skipped') AS skipped, count(*) FILTER (WHERE m.status = 'failed') AS failed
		FROM messages m WHERE m.tenant_id = r.tenant_id AND m.dedup_key = ` + runDedupKey + `) msg ON r.body->>'kind' = 'communication'`

// runCols are the columns of a run from runFrom; the skipped members by
// reason come from the run's items (CRM actions) or its messages.
const runCols = `r.id, r.schedule_id, r.run_day, r.status, r.sender_id, r.target_id, r.body, r.members, r.created,
	coalesce(msg.sent, r.sent), coalesce(msg.skipped, r.skipped), coalesce(msg.failed, r.failed), r.error, r.attempts, r.started_at, r.finished_at,
	coalesce((SELECT jsonb_object_agg(reason, n) FROM (
		SELECT reason, count(*) AS n FROM schedule_run_items i
		WHERE r.body->>'kind' = 'actions' AND i.schedule_id = r.schedule_id AND i.run_day = r.run_day AND i.status = 'skipped' GROUP BY reason
		UNION ALL
		SELECT skip_reason, count(*) FROM messages m
		WHERE r.body->>'kind' = 'communication' AND m.tenant_id = r.tenant_id AND m.dedup_key = ` + runDedupKey + ` AND m.status = 'skipped'
		GROUP BY skip_reason) x), '{}')`

func scanRun(row pgx.Row) (*cloud.ScheduleRun, error) {
	var r cloud.ScheduleRun
	var day time.Time
	err := row.Scan(&r.ID, &r.ScheduleID, &day, &r.Status, &r.SenderID, &r.TargetID, &r.Body, &r.Members, &r.Created, &r.Sent, &r.Skipped,
		&r.Failed, &r.Error, &r.Attempts, &r.StartedAt, &r.FinishedAt, &r.SkippedReasons)
	if err != nil {
		return nil, err
	}
	r.Day = cloud.DateOf(day)
	return &r, nil
}

// FindScheduleRuns lists an operation's runs, latest first.
func (s *ScheduleService) FindScheduleRuns(ctx context.Context, id int64, before cloud.Date, limit int) ([]*cloud.ScheduleRun, error) {
	op, err := cloud.Actor(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := findSchedule(ctx, s.db.Pool, op.TenantID, id); err != nil {
		return nil, err
	}
	rows, err := s.db.Pool.Query(ctx, `SELECT `+runCols+` FROM `+runFrom+` WHERE r.tenant_id = $1 AND r.schedule_id = $2
		AND ($3::date IS NULL OR r.run_day < $3) ORDER BY r.run_day DESC LIMIT $4`, op.TenantID, id, dateArg(before), limitOf(limit, 30, 366))
	if err != nil {
		return nil, fmt.Errorf("find runs: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (*cloud.ScheduleRun, error) { return scanRun(r) })
}

// seedRecipes creates, for the tenant of tx, the recipes' targets and
// their operations, disabled, sent by tx's operator. A target name already
// taken gets " (recipe)" added.
func seedRecipes(ctx context.Context, tx *Tx) error {
	today, loc, err := tx.db.tenantToday(ctx, tx, tx.tenant())
	if err != nil {
		return err
	}
	cfg, err := tx.db.crmConfig(ctx, tx, tx.tenant())
	if err != nil {
		return err
	}
	for _, r := range cloud.Recipes() {
		t := r.Target
		var taken bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM targets WHERE tenant_id = $1 AND lower(name) = lower($2) AND archived_at IS NULL)`,
			tx.tenant(), t.Name).Scan(&taken); err != nil {
			return fmt.Errorf("seed recipe %s: %w", r.Key, err)
		}
		if taken {
			t.Name += " (recipe)"
		}
		t.ReferenceDate = today
		if err := t.Validate(); err != nil {
			return fmt.Errorf("seed recipe %s: %w", r.Key, err)
		}
		t.TenantID, t.Version, t.CreatedAt, t.UpdatedAt, t.CreatedBy = tx.tenant(), 1, tx.now, tx.now, &tx.op.ID
		if err := insertTarget(ctx, tx, &t); err != nil {
			return fmt.Errorf("seed recipe %s: %w", r.Key, err)
		}
		sc := &cloud.Schedule{Name: r.Name, SenderID: tx.op.ID, TargetID: t.ID, Body: r.Body, Recipe: r.Key,
			Timing: cloud.Timing{Recurrence: cloud.RecurDaily, SendTime: r.SendTime, Timezone: loc.String(), StartsOn: today}}
		if r.ActionType != "" {
			var typeID int64
			for _, at := range cfg.ActionTypes {
				if at.Name == r.ActionType && at.Active {
					typeID = at.ID
				}
			}
			if typeID == 0 {
				continue // the club renamed or retired the type: no recipe rather than a broken one
			}
			sc.Body.ActionTypeID = &typeID
		}
		if err := validateSchedule(ctx, tx, sc); err != nil {
			return fmt.Errorf("seed recipe %s: %w", r.Key, err)
		}
		if err := insertSchedule(ctx, tx, sc); err != nil {
			return fmt.Errorf("seed recipe %s: %w", r.Key, err)
		}
	}
	_, err = tx.Exec(ctx, `UPDATE tenants SET recipes_seeded = true WHERE id = $1`, tx.tenant())
	return err
}

// ensureRecipes seeds the recipes of a tenant that has none yet (created
// before they existed), as its first active admin, once: the tenant row's
// lock orders concurrent callers.
func (db *DB) ensureRecipes(ctx context.Context, tenantID int64) error {
	var seeded bool
	if err := db.Pool.QueryRow(ctx, `SELECT recipes_seeded FROM tenants WHERE id = $1`, tenantID).Scan(&seeded); err != nil {
		return fmt.Errorf("recipes seeded: %w", err)
	}
	if seeded {
		return nil
	}
	admin, err := scanOperator(db.Pool.QueryRow(ctx, `SELECT `+operatorCols+` FROM operators WHERE tenant_id = $1 AND role = 'admin' AND active
		ORDER BY id LIMIT 1`, tenantID))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil // no admin to send them yet
	} else if err != nil {
		return fmt.Errorf("recipes sender: %w", err)
	}
	return db.inTxAs(ctx, admin, func(tx *Tx) error {
		if err := tx.QueryRow(ctx, `SELECT recipes_seeded FROM tenants WHERE id = $1 FOR UPDATE`, tenantID).Scan(&seeded); err != nil {
			return fmt.Errorf("lock tenant: %w", err)
		}
		if seeded {
			return nil
		}
		return seedRecipes(ctx, tx)
	})
}

// marshalBody is the JSON copy of a body kept with each run.
func marshalBody(b cloud.ScheduleBody) []byte {
	j, _ := json.Marshal(b) // a struct of plain fields always encodes
	return j
}
