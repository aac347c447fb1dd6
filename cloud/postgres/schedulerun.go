package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"

	"varco.dev/cloud"
)

// DueRun is one run of a scheduled operation to execute: the operation and
// its run day, in the operation's time zone.
type DueRun struct {
	TenantID   int64
	ScheduleID int64
	Day        cloud.Date
}

// ScheduleRunner is the SQL side of the scheduler: it finds the runs that
// are due and executes one run of an operation, idempotently. The job
// queue (cloud/river) decides when and where they happen.
type ScheduleRunner struct {
	db *DB
	// Communicator sends the communications of operations; nil fails their
	// runs with cloud.ErrNoCommunicator.
	Communicator cloud.Communicator
	// BatchSize is how many members' actions are created per transaction.
	BatchSize int
	// AfterBatch, when set, is called after each committed batch of
	// actions; an error stops the run there as a crash would (tests).
	AfterBatch func(run DueRun, batch int) error
	// OnRunEnd, when set, is called when ExecuteRun returns, with what it
	// returns (tests wait on it).
	OnRunEnd func(run DueRun, res *cloud.ScheduleRun, err error)
}

// NewScheduleRunner returns a runner on db.
func NewScheduleRunner(db *DB) *ScheduleRunner { return &ScheduleRunner{db: db, BatchSize: 200} }

// enqueueBatch bounds the operations handled per transaction of EnqueueDue.
const enqueueBatch = 200

// EnqueueDue hands every run that is due at the store's now to enqueue,
// in the transaction that moves the operation's next_run_at on, so that a
// run is enqueued exactly when its operation advances (enqueue inserts its
// job in tx). Operations are locked with SKIP LOCKED: replicas ticking at
// once share them out. A run whose day is already over in the operation's
// time zone (the scheduler was down all that day) is recorded as missed
// instead. It returns how many runs were enqueued.
func (r *ScheduleRunner) EnqueueDue(ctx context.Context, enqueue func(ctx context.Context, tx pgx.Tx, run DueRun) error) (int, error) {
	total := 0
	for {
		n, err := r.enqueueBatch(ctx, enqueue, &total)
		if err != nil {
			return total, err
		}
		if n < enqueueBatch {
			return total, nil
		}
	}
}

func (r *ScheduleRunner) enqueueBatch(ctx context.Context, enqueue func(ctx context.Context, tx pgx.Tx, run DueRun) error, total *int) (int, error) {
	now := r.db.now()
	tx, err := r.db.Pool.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("enqueue due: begin: %w", err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	rows, err := tx.Query(ctx, `SELECT `+scheduleCols+` FROM schedules WHERE active AND next_run_at <= $1
		ORDER BY next_run_at, id LIMIT $2 FOR UPDATE SKIP LOCKED`, now, enqueueBatch)
	if err != nil {
		return 0, fmt.Errorf("enqueue due: %w", err)
	}
	due, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*cloud.Schedule, error) { return scanSchedule(row) })
	if err != nil {
		return 0, fmt.Errorf("enqueue due: %w", err)
	}
	for _, sc := range due {
		loc, err := time.LoadLocation(sc.Timezone)
		if err != nil {
			return 0, fmt.Errorf("enqueue due: schedule %d: %w", sc.ID, err)
		}
		today := cloud.DateOf(now.In(loc))
		// Every occurrence up to now: today's is enqueued, those of days
		// gone by (the scheduler was down) are recorded as missed.
		next := sc.NextRunAt
		for n := 0; next != nil && !next.After(now) && n < 400; n++ {
			day := cloud.DateOf(next.In(loc))
			if day.Before(today) {
				if _, err := tx.Exec(ctx, `INSERT INTO schedule_runs (tenant_id, schedule_id, run_day, status, sender_id, target_id, body, started_at, finished_at)
					VALUES ($1, $2, $3, 'missed', $4, $5, $6, $7, $7) ON CONFLICT (schedule_id, run_day) DO NOTHING`,
					sc.TenantID, sc.ID, day.Time(), sc.SenderID, sc.TargetID, marshalBody(sc.Body), now); err != nil {
					return 0, fmt.Errorf("enqueue due: missed run: %w", err)
				}
				r.db.Logger.WarnContext(ctx, "scheduled run missed", slog.Int64("schedule_id", sc.ID), slog.String("day", day.String()))
			} else {
				if err := enqueue(ctx, tx, DueRun{TenantID: sc.TenantID, ScheduleID: sc.ID, Day: day}); err != nil {
					return 0, fmt.Errorf("enqueue due: schedule %d: %w", sc.ID, err)
				}
				*total++
			}
			next = nextRunAt(sc, *next)
		}
		if _, err := tx.Exec(ctx, `UPDATE schedules SET next_run_at = $2 WHERE id = $1`, sc.ID, next); err != nil {
			return 0, fmt.Errorf("enqueue due: next run: %w", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("enqueue due: commit: %w", err)
	}
	return len(due), nil
}

// errorText is what a run's history says about err: the message of a
// domain error, the text of any other (a gateway's answer, a timeout).
func errorText(err error) string {
	var e *cloud.Error
	if errors.As(err, &e) {
		return e.Message
	}
	return err.Error()
}

// ExecuteRun executes one run of an operation. It may be called again for
// the same run, after a crash or by another replica: members already done
// are not done again (schedule_run_items for actions, the dedup key for
// communications), and a finished run is left as it is. A run of an
// operation deactivated since it was enqueued does nothing. The error is
// returned after it was recorded on the run; it is a *cloud.Error (other
// than EINTERNAL) or ErrNoCommunicator when retrying cannot help.
func (r *ScheduleRunner) ExecuteRun(ctx context.Context, run DueRun) (res *cloud.ScheduleRun, err error) {
	if r.OnRunEnd != nil {
		defer func() { r.OnRunEnd(run, res, err) }()
	}
	sc, err := findSchedule(ctx, r.db.Pool, run.TenantID, run.ScheduleID)
	if err != nil {
		return nil, err
	}
	if !sc.Active {
		return nil, nil
	}
	now := r.db.now()
	var runID int64
	err = r.db.Pool.QueryRow(ctx, `INSERT INTO schedule_runs (tenant_id, schedule_id, run_day, status, sender_id, target_id, body, attempts, started_at)
		VALUES ($1, $2, $3, 'running', $4, $5, $6, 1, $7)
		ON CONFLICT (schedule_id, run_day) DO UPDATE SET attempts = schedule_runs.attempts + 1, status = 'running', error = ''
		WHERE schedule_runs.status IN ('running', 'failed') RETURNING id`,
		sc.TenantID, sc.ID, run.Day.Time(), sc.SenderID, sc.TargetID, marshalBody(sc.Body), now).Scan(&runID)
	if errors.Is(err, pgx.ErrNoRows) {
		return r.findRun(ctx, run) // done or missed already
	} else if err != nil {
		return nil, fmt.Errorf("start run: %w", err)
	}
	if err := r.execute(ctx, sc, run, runID); err != nil {
		// Recorded even when ctx was cancelled (a stopping scheduler).
		rctx := context.WithoutCancel(ctx)
		if _, ferr := r.db.Pool.Exec(rctx, `UPDATE schedule_runs SET status = 'failed', error = $2, finished_at = $3 WHERE id = $1`,
			runID, errorText(err), r.db.now()); ferr != nil {
			return nil, errors.Join(err, fmt.Errorf("record failed run: %w", ferr))
		}
		res, _ = r.findRun(rctx, run)
		return res, err
	}
	return r.findRun(ctx, run)
}

func (r *ScheduleRunner) findRun(ctx context.Context, run DueRun) (*cloud.ScheduleRun, error) {
	res, err := scanRun(r.db.Pool.QueryRow(ctx, `SELECT `+runCols+` FROM `+runFrom+` WHERE r.tenant_id = $1 AND r.schedule_id = $2 AND r.run_day = $3`,
		run.TenantID, run.ScheduleID, run.Day.Time()))
	if err != nil {
		return nil, notFound(err, "Run")
	}
	return res, nil
}

// execute evaluates the target on the run day and does the body for its
// members, then records the counts.
func (r *ScheduleRunner) execute(ctx context.Context, sc *cloud.Schedule, run DueRun, runID int64) error {
	sender, err := findOperator(ctx, r.db.Pool, sc.TenantID, sc.SenderID)
	if err != nil {
		return err
	}
	if !sender.Active {
		return cloud.Invalid("sender_id", "The sender %s is no longer active.", sender.Email)
	}
	t, err := findTarget(ctx, r.db.Pool, sc.TenantID, sc.TargetID)
	if err != nil {
		return err
	}
	if t.ArchivedAt != nil {
		return cloud.Invalid("target_id", "The target %q is archived.", t.Name)
	}
	ids, err := r.db.targetMemberIDs(ctx, r.db.Pool, sc.TenantID, &t.TargetDefinition, run.Day, 1_000_000)
	if err != nil {
		return err
	}
	switch sc.Body.Kind {
	case cloud.BodyActions:
		if err := r.createActions(ctx, sc, sender, run, ids); err != nil {
			return err
		}
		_, err = r.db.Pool.Exec(ctx, `UPDATE schedule_runs SET status = 'done', members = $2, finished_at = $3,
			created = (SELECT count(*) FROM schedule_run_items WHERE schedule_id = $4 AND run_day = $5 AND status = 'created'),
			skipped = (SELECT count(*) FROM schedule_run_items WHERE schedule_id = $4 AND run_day = $5 AND status = 'skipped')
			WHERE id = $1`, runID, len(ids), r.db.now(), sc.ID, run.Day.Time())
	case cloud.BodyCommunication:
		if r.Communicator == nil {
			return cloud.ErrNoCommunicator
		}
		if sc.Body.TemplateID == nil {
			return cloud.Invalid("body.template_id", "The operation has no template.")
		}
		res, cerr := r.Communicator.Communicate(ctx, cloud.CommunicationRequest{TenantID: sc.TenantID, OperatorID: sender.ID,
			TemplateID: *sc.Body.TemplateID, Channel: string(sc.Body.Channel), Purpose: string(sc.Body.Purpose), MemberIDs: ids,
			DedupKey: cloud.DedupKey(sc.ID, run.Day)})
		if cerr != nil {
			return fmt.Errorf("communicate: %w", cerr)
		}
		_, err = r.db.Pool.Exec(ctx, `UPDATE schedule_runs SET status = 'done', members = $2, sent = $3, skipped = $4, failed = $5,
			finished_at = $6 WHERE id = $1`, runID, len(ids), res.Sent, res.Skipped, res.Failed, r.db.now())
	}
	if err != nil {
		return fmt.Errorf("finish run: %w", err)
	}
	return nil
}

// createActions creates the operation's action for each member in
// batches, each in one transaction acting as the sender: the run item
// (schedule, day, member) is inserted first, ON CONFLICT DO NOTHING, and
// only a new item gets an action, so a member never gets two. A member
// with an open action of the type is skipped with the reason.
func (r *ScheduleRunner) createActions(ctx context.Context, sc *cloud.Schedule, sender *cloud.Operator, run DueRun, ids []int64) error {
	size := max(r.BatchSize, 1)
	for batch := 0; batch*size < len(ids); batch++ {
		chunk := ids[batch*size : min(len(ids), (batch+1)*size)]
		err := r.db.inTxAs(ctx, sender, func(tx *Tx) error { return r.actionBatch(ctx, tx, sc, run, chunk) })
		if err != nil {
			return err
		}
		if r.AfterBatch != nil {
			if err := r.AfterBatch(run, batch); err != nil {
				return err
			}
		}
	}
	return nil
}

func (r *ScheduleRunner) actionBatch(ctx context.Context, tx *Tx, sc *cloud.Schedule, run DueRun, ids []int64) error {
	cfg, err := r.db.crmConfig(ctx, tx, tx.tenant())
	if err != nil {
		return err
	}
	typeID := *sc.Body.ActionTypeID
	rows, err := tx.Query(ctx, `SELECT `+memberCols+` FROM members WHERE tenant_id = $1 AND id = ANY($2) ORDER BY id`, tx.tenant(), ids)
	if err != nil {
		return fmt.Errorf("run members: %w", err)
	}
	members, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*cloud.Member, error) { return scanMember(row) })
	if err != nil {
		return fmt.Errorf("run members: %w", err)
	}
	rows, err = tx.Query(ctx, `SELECT DISTINCT member_id FROM crm_actions WHERE tenant_id = $1 AND type_id = $2 AND is_open AND member_id = ANY($3)`,
		tx.tenant(), typeID, ids)
	if err != nil {
		return fmt.Errorf("open actions: %w", err)
	}
	open, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return fmt.Errorf("open actions: %w", err)
	}
	hasOpen := make(map[int64]bool, len(open))
	for _, id := range open {
		hasOpen[id] = true
	}
	for _, m := range members {
		status, reason := "created", ""
		if hasOpen[m.ID] {
			status, reason = "skipped", cloud.SkipOpenAction
		}
		tag, err := tx.Exec(ctx, `INSERT INTO schedule_run_items (tenant_id, schedule_id, run_day, member_id, status, reason, at)
			VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (schedule_id, run_day, member_id) DO NOTHING`,
			tx.tenant(), sc.ID, run.Day.Time(), m.ID, status, reason, tx.now)
		if err != nil {
			return fmt.Errorf("run item: %w", err)
		}
		if tag.RowsAffected() == 0 || hasOpen[m.ID] {
			continue // done by an earlier attempt, or skipped
		}
		a := &cloud.Action{TypeID: typeID, Kind: cloud.ActionPlanned, Description: sc.Body.ActionText}
		if sc.Body.CompleteDays != nil {
			a.CompleteBy = run.Day.AddDays(*sc.Body.CompleteDays)
		}
		if err := a.Prepare(cfg, m, tx.op, tx.now); err != nil {
			return err
		}
		if err := insertAction(ctx, tx, a); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE schedule_run_items SET action_id = $4 WHERE schedule_id = $1 AND run_day = $2 AND member_id = $3`,
			sc.ID, run.Day.Time(), m.ID, a.ID); err != nil {
			return fmt.Errorf("run item action: %w", err)
		}
	}
	return nil
}

// PermanentRunError reports whether an error of ExecuteRun will not go away
// by retrying: a missing communicator, or a domain error such as an
// archived target, an inactive sender or an obsolete action type.
func PermanentRunError(err error) bool {
	if errors.Is(err, cloud.ErrNoCommunicator) {
		return true
	}
	var e *cloud.Error
	return errors.As(err, &e) && e.Code != cloud.EINTERNAL
}
