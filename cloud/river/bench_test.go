package river_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"varco.dev/cloud"
	"varco.dev/cloud/internal/pgtest"
	"varco.dev/cloud/postgres"
	cloudriver "varco.dev/cloud/river"
)

// BenchmarkSchedulerDay runs one scheduler day of 1,000 active daily
// operations, each creating a CRM action for the 5 members of its own
// target (5,000 actions a day), on one scheduler with its default 8 workers. An
// iteration is a day: all operations due, one tick, until every run is
// done. Later days find yesterday's actions open and skip their members,
// so run it once (-benchtime 1x) for the figure of a day that creates.
func BenchmarkSchedulerDay(b *testing.B) {
	const ops, perTarget = 1000, 5
	clock := pgtest.NewClock(t0)
	db := postgres.NewDB(pgtest.NewURL(b) + "&pool_max_conns=12")
	db.Now = clock.Now
	db.PasswordParams = pgtest.FastPasswords
	db.Logger = slog.New(slog.NewTextHandler(io.Discard, nil)) // a line per run would be the benchmark
	if err := db.Open(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	if err := cloudriver.Migrate(ctx, db.Pool, db.Logger); err != nil {
		b.Fatal(err)
	}
	admin := &cloud.Operator{Email: "admin@a.test", Name: "Admin"}
	ten := &cloud.Tenant{Name: "Club", Slug: "club"}
	if err := postgres.NewTenantService(db).CreateTenant(ctx, ten, admin, "correct horse battery"); err != nil {
		b.Fatal(err)
	}
	var typeID int64
	if err := db.Pool.QueryRow(ctx, `SELECT id FROM action_types WHERE tenant_id = $1 AND name = 'Telemarketing'`, ten.ID).Scan(&typeID); err != nil {
		b.Fatal(err)
	}
	// Operation i targets the members tagged g<i>; all run daily at 05:00 in Rome.
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO members (tenant_id, kind, last_name, tags, created_at, updated_at)
		 SELECT $1, 'person', 'M' || i, ARRAY['g' || (i % $2::int)], now(), now() FROM generate_series(0, $2::int * $3::int - 1) i`, []any{ten.ID, ops, perTarget}},
		{`INSERT INTO targets (tenant_id, name, criteria, date_mode, reference_date, schedulable, created_at, updated_at)
		 SELECT $1, 'T' || i, jsonb_build_array(jsonb_build_object('kind', 'tags', 'tags', jsonb_build_array('g' || i))), 'none', '2025-03-04', true, now(), now()
		 FROM generate_series(0, $2::int - 1) i`, []any{ten.ID, ops}},
		{`INSERT INTO schedules (tenant_id, name, active, sender_id, recurrence, send_time, timezone, starts_on, target_id, body_kind,
		   action_type_id, action_text, complete_days, created_at, updated_at)
		 SELECT $1, 'Op ' || t.name, true, $2, 'daily', '05:00', 'Europe/Rome', '2025-03-04', t.id, 'actions', $3, 'Call', 3, now(), now()
		 FROM targets t WHERE t.tenant_id = $1 AND t.name ~ '^T[0-9]+$'`, []any{ten.ID, admin.ID, typeID}},
		{`ANALYZE`, nil},
	} {
		if _, err := db.Pool.Exec(ctx, q.sql, q.args...); err != nil {
			b.Fatalf("%s: %v", q.sql[:30], err)
		}
	}
	ends := make(chan *cloud.ScheduleRun, ops)
	runner := postgres.NewScheduleRunner(db)
	runner.OnRunEnd = func(_ postgres.DueRun, res *cloud.ScheduleRun, err error) {
		if err != nil {
			b.Errorf("run: %v", err)
		}
		ends <- res
	}
	s := cloudriver.NewScheduler(db.Pool, runner, db.Logger)
	s.TickInterval = time.Hour
	s.FetchPollInterval = 200 * time.Millisecond
	if err := s.Start(ctx); err != nil {
		b.Fatal(err)
	}
	defer func() {
		if err := s.Stop(ctx); err != nil {
			b.Error(err)
		}
	}()
	day := cloud.NewDate(2025, 3, 5)
	var created, skipped int
	for b.Loop() {
		b.StopTimer()
		// 05:00 in Rome (04:00 UTC in March) of the day, every operation due.
		at := time.Date(2025, 3, day.Time().Day(), 4, 0, 0, 0, time.UTC)
		clock.Set(at.Add(time.Minute))
		if _, err := db.Pool.Exec(ctx, `UPDATE schedules SET next_run_at = $1 WHERE tenant_id = $2 AND active`, at, ten.ID); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if err := s.Tick(ctx); err != nil {
			b.Fatal(err)
		}
		created, skipped = 0, 0
		for range ops {
			select {
			case res := <-ends:
				if res != nil {
					created += res.Created
					skipped += res.Skipped
				}
			case <-time.After(5 * time.Minute):
				b.Fatal("runs did not end")
			}
		}
		day = day.AddDays(1)
	}
	b.ReportMetric(float64(ops), "operations/day")
	b.ReportMetric(float64(created), "actions-created")
	b.ReportMetric(float64(skipped), "members-skipped")
}
