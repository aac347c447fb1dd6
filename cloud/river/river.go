// Package river runs varco-cloud's scheduled operations on River
// (riverqueue/river), a job queue in PostgreSQL driven through pgx.
//
// Why River: jobs are rows in the same database as the CRM, so a run is
// enqueued in the very transaction that advances its operation's next run
// (InsertTx on the pgx transaction): never lost, never enqueued twice by a
// crash between the two. Unique jobs keyed by (operation, run day) stop a
// second replica or a retried tick from enqueuing a run again; failed runs
// are retried with exponential backoff; periodic jobs are inserted only by
// the elected leader, so several replicas tick once between them. Nothing
// beyond PostgreSQL is needed to run it.
//
// The SQL of the runs lives in cloud/postgres (ScheduleRunner); this
// package only decides when and where it executes:
//
//   - a periodic tick (every TickInterval, leader only) calls
//     ScheduleRunner.EnqueueDue, which hands each due run to a RunArgs job
//     inserted in its transaction;
//   - RunWorker executes a run with ScheduleRunner.ExecuteRun, which keeps
//     "at most one action per member per operation per day" in the
//     database itself, so a retry, a restart or two workers at once cannot
//     duplicate anything.
package river

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"

	"varco.dev/cloud"
	"varco.dev/cloud/postgres"
)

// Queue is the River queue of scheduled operations.
const Queue = "varco_schedules"

// migrateLockKey is the advisory lock that serialises River's migrations
// between replicas starting together (rivermigrate takes none itself).
const migrateLockKey = 7412008

// Migrate applies River's own migrations (its river_* tables). A session
// advisory lock, held on one connection while the migrator works through
// the pool, keeps replicas starting together from racing (rivermigrate
// takes no lock itself, and its migrations cannot share one transaction:
// some add an enum value that the next statement uses).
func Migrate(ctx context.Context, pool *pgxpool.Pool, logger *slog.Logger) error {
	migrator, err := rivermigrate.New(riverpgxv5.New(pool), &rivermigrate.Config{Logger: logger})
	if err != nil {
		return fmt.Errorf("river migrate: %w", err)
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("river migrate: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, migrateLockKey); err != nil {
		return fmt.Errorf("river migrate: lock: %w", err)
	}
	defer func() { _, _ = conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, migrateLockKey) }()
	res, err := migrator.Migrate(ctx, rivermigrate.DirectionUp, nil)
	if err != nil {
		return fmt.Errorf("river migrate: %w", err)
	}
	for _, v := range res.Versions {
		logger.InfoContext(ctx, "river migration applied", slog.Int("version", v.Version), slog.Duration("duration", v.Duration))
	}
	return nil
}

// RunArgs is the job of one run: an operation on a day. River keeps it
// unique by its arguments.
type RunArgs struct {
	TenantID   int64  `json:"tenant_id"`
	ScheduleID int64  `json:"schedule_id"`
	Day        string `json:"day"` // YYYY-MM-DD in the operation's time zone
}

// Kind implements river.JobArgs.
func (RunArgs) Kind() string { return "varco_schedule_run" }

// InsertOpts makes runs unique by (operation, day), whatever the job's
// state: a completed run is not enqueued again while River retains it,
// and the schedule_runs table refuses it after that.
func (RunArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: Queue, MaxAttempts: 10, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// TickArgs is the periodic job that enqueues the due runs.
type TickArgs struct{}

// Kind implements river.JobArgs.
func (TickArgs) Kind() string { return "varco_schedule_tick" }

// InsertOpts puts ticks on the scheduler's queue.
func (TickArgs) InsertOpts() river.InsertOpts { return river.InsertOpts{Queue: Queue, MaxAttempts: 3} }

// TickWorker enqueues every due run, each in the transaction that moves
// its operation on.
type TickWorker struct {
	river.WorkerDefaults[TickArgs]
	runner *postgres.ScheduleRunner
	logger *slog.Logger
}

// Work implements river.Worker.
func (w *TickWorker) Work(ctx context.Context, job *river.Job[TickArgs]) error {
	client := river.ClientFromContext[pgx.Tx](ctx)
	n, err := w.runner.EnqueueDue(ctx, func(ctx context.Context, tx pgx.Tx, run postgres.DueRun) error {
		_, err := client.InsertTx(ctx, tx, RunArgs{TenantID: run.TenantID, ScheduleID: run.ScheduleID, Day: run.Day.String()}, nil)
		return err
	})
	if n > 0 {
		w.logger.InfoContext(ctx, "scheduled runs enqueued", slog.Int("runs", n))
	}
	return err
}

// RunWorker executes one run.
type RunWorker struct {
	river.WorkerDefaults[RunArgs]
	runner  *postgres.ScheduleRunner
	logger  *slog.Logger
	timeout time.Duration
}

// Timeout implements river.Worker: a run may send to a big target.
func (w *RunWorker) Timeout(*river.Job[RunArgs]) time.Duration { return w.timeout }

// Work implements river.Worker. An error that retrying cannot fix cancels
// the job (the run is recorded as failed); others are retried with
// River's backoff; a run interrupted by a stopping client is snoozed, to
// be resumed at once by the next client.
func (w *RunWorker) Work(ctx context.Context, job *river.Job[RunArgs]) error {
	day, err := cloud.ParseDate(job.Args.Day)
	if err != nil || day.IsZero() {
		return river.JobCancel(fmt.Errorf("run job %d: bad day %q", job.ID, job.Args.Day))
	}
	run := postgres.DueRun{TenantID: job.Args.TenantID, ScheduleID: job.Args.ScheduleID, Day: day}
	res, err := w.runner.ExecuteRun(ctx, run)
	attrs := []any{slog.Int64("schedule_id", run.ScheduleID), slog.String("day", job.Args.Day), slog.Int("attempt", job.Attempt)}
	switch {
	case err == nil:
		if res != nil {
			w.logger.InfoContext(ctx, "scheduled run done", append(attrs, slog.Int("members", res.Members), slog.Int("created", res.Created),
				slog.Int("sent", res.Sent), slog.Int("skipped", res.Skipped), slog.Int("failed", res.Failed))...)
		}
		return nil
	case ctx.Err() != nil && errors.Is(err, ctx.Err()):
		return river.JobSnooze(0)
	case postgres.PermanentRunError(err):
		w.logger.ErrorContext(ctx, "scheduled run failed", append(attrs, slog.Any("err", err))...)
		return river.JobCancel(err)
	}
	w.logger.WarnContext(ctx, "scheduled run failed, will retry", append(attrs, slog.Any("err", err))...)
	return err
}

// Scheduler runs the scheduled operations of every tenant: a River client
// with the tick and run workers. Start it once per process; any number of
// processes may run one on the same database.
type Scheduler struct {
	// TickInterval is how often due runs are looked for (default a minute):
	// runs start at most this late after their send time.
	TickInterval time.Duration
	// Workers is how many runs execute at once in this process (default 8).
	Workers int
	// RunTimeout bounds one run (default 10 minutes).
	RunTimeout time.Duration
	// FetchPollInterval is how often the client polls for jobs when no
	// notification came (River's default when zero).
	FetchPollInterval time.Duration
	// FetchCooldown is the least time between two fetches of jobs (default
	// 20ms; River's 100ms caps a client at Workers jobs per 100ms).
	FetchCooldown time.Duration
	// ID names the client in River's tables (default: River's own).
	ID string

	pool   *pgxpool.Pool
	runner *postgres.ScheduleRunner
	logger *slog.Logger
	client *river.Client[pgx.Tx]
}

// NewScheduler returns a scheduler executing runs with runner on pool.
func NewScheduler(pool *pgxpool.Pool, runner *postgres.ScheduleRunner, logger *slog.Logger) *Scheduler {
	return &Scheduler{pool: pool, runner: runner, logger: cmp.Or(logger, slog.Default())}
}

// newClient builds the River client.
func (s *Scheduler) newClient() (*river.Client[pgx.Tx], error) {
	tick := cmp.Or(s.TickInterval, time.Minute)
	timeout := cmp.Or(s.RunTimeout, 10*time.Minute)
	workers := river.NewWorkers()
	if err := river.AddWorkerSafely(workers, &TickWorker{runner: s.runner, logger: s.logger}); err != nil {
		return nil, err
	}
	if err := river.AddWorkerSafely(workers, &RunWorker{runner: s.runner, logger: s.logger, timeout: timeout}); err != nil {
		return nil, err
	}
	return river.NewClient(riverpgxv5.New(s.pool), &river.Config{
		ID:                s.ID,
		Logger:            s.logger,
		FetchPollInterval: s.FetchPollInterval,
		FetchCooldown:     cmp.Or(s.FetchCooldown, 20*time.Millisecond),
		Queues:            map[string]river.QueueConfig{Queue: {MaxWorkers: cmp.Or(s.Workers, 8)}},
		Workers:           workers,
		// A run whose process died is taken up again after this.
		RescueStuckJobsAfter: timeout + 5*time.Minute,
		PeriodicJobs: []*river.PeriodicJob{river.NewPeriodicJob(river.PeriodicInterval(tick),
			func() (river.JobArgs, *river.InsertOpts) { return TickArgs{}, nil }, &river.PeriodicJobOpts{RunOnStart: true})},
	})
}

// Start starts the client: its workers, and the periodic tick when this
// process is elected leader. River's tables must exist (Migrate).
func (s *Scheduler) Start(ctx context.Context) error {
	if s.client != nil {
		return errors.New("scheduler: already started")
	}
	client, err := s.newClient()
	if err != nil {
		return fmt.Errorf("scheduler: %w", err)
	}
	if err := client.Start(ctx); err != nil {
		return fmt.Errorf("scheduler: start: %w", err)
	}
	s.client = client
	return nil
}

// Stop stops fetching jobs and waits, within ctx, for the runs in progress;
// when ctx ends first they are cancelled and resumed by the next client.
func (s *Scheduler) Stop(ctx context.Context) error {
	if s.client == nil {
		return nil
	}
	client := s.client
	s.client = nil
	if err := client.Stop(ctx); err != nil {
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			return client.StopAndCancel(context.WithoutCancel(ctx))
		}
		return fmt.Errorf("scheduler: stop: %w", err)
	}
	return nil
}

// Tick enqueues the due runs now, as the periodic tick does (for an
// operator's "run now" or tests).
func (s *Scheduler) Tick(ctx context.Context) error {
	if s.client == nil {
		return errors.New("scheduler: not started")
	}
	_, err := s.client.Insert(ctx, TickArgs{}, nil)
	return err
}
