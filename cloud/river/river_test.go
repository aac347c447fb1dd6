package river_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"varco.dev/cloud"
	"varco.dev/cloud/internal/pgtest"
	"varco.dev/cloud/postgres"
	cloudriver "varco.dev/cloud/river"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// t0 is Tuesday 4 March 2025, 09:30 in Rome.
var t0 = time.Date(2025, 3, 4, 8, 30, 0, 0, time.UTC)

// replica is one cloud process: its own pool on the shared database, a
// runner and a scheduler.
type replica struct {
	db        *postgres.DB
	runner    *postgres.ScheduleRunner
	scheduler *cloudriver.Scheduler
	comms     *postgres.CommunicationService // the runner's communicator, if any
}

type bundle struct {
	t        *testing.T
	url      string
	clock    *pgtest.Clock
	db       *postgres.DB // the first replica's store, for setup and checks
	admin    context.Context
	schedule *postgres.ScheduleService
	ends     chan runEnd
	members  []int64
}

type runEnd struct {
	run postgres.DueRun
	res *cloud.ScheduleRun
	err error
}

func (b *bundle) open() *postgres.DB {
	b.t.Helper()
	db := postgres.NewDB(b.url)
	db.Logger = pgtest.Logger(b.t)
	db.PasswordParams = pgtest.FastPasswords
	db.Now = b.clock.Now
	if err := db.Open(context.Background()); err != nil {
		b.t.Fatal(err)
	}
	b.t.Cleanup(db.Close)
	return db
}

// replica starts a scheduler on its own pool; configure adjusts the replica
// (its runner, a communicator on its pool) before the scheduler starts.
func (b *bundle) replica(id string, configure func(*replica)) *replica {
	b.t.Helper()
	db := b.open()
	r := &replica{db: db, runner: postgres.NewScheduleRunner(db)}
	r.runner.BatchSize = 5
	r.runner.OnRunEnd = func(run postgres.DueRun, res *cloud.ScheduleRun, err error) { b.ends <- runEnd{run, res, err} }
	if configure != nil {
		configure(r)
	}
	r.scheduler = cloudriver.NewScheduler(db.Pool, r.runner, pgtest.Logger(b.t))
	r.scheduler.ID = id
	r.scheduler.TickInterval = time.Hour // ticks come from the test
	r.scheduler.FetchPollInterval = 200 * time.Millisecond
	if err := r.scheduler.Start(context.Background()); err != nil {
		b.t.Fatal(err)
	}
	b.t.Cleanup(func() { r.stop(b.t) })
	return r
}

func (r *replica) stop(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.scheduler.Stop(ctx); err != nil {
		t.Error(err)
	}
}

// setup makes a club whose members (n of them) have a valid membership and
// no medical certificate, and activates the seeded daily blocking operation.
func setup(t *testing.T, n int) (*bundle, *cloud.Schedule) {
	t.Helper()
	b := &bundle{t: t, url: pgtest.NewURL(t), clock: pgtest.NewClock(t0), ends: make(chan runEnd, 64)}
	b.db = b.open()
	ctx := context.Background()
	if err := cloudriver.Migrate(ctx, b.db.Pool, pgtest.Logger(t)); err != nil {
		t.Fatal(err)
	}
	if err := cloudriver.Migrate(ctx, b.db.Pool, pgtest.Logger(t)); err != nil {
		t.Fatalf("migrating twice: %v", err)
	}
	admin := &cloud.Operator{Email: "admin@a.test", Name: "Admin"}
	if err := postgres.NewTenantService(b.db).CreateTenant(ctx, &cloud.Tenant{Name: "Club", Slug: "club"}, admin, "correct horse battery"); err != nil {
		t.Fatal(err)
	}
	b.admin = cloud.NewContextWithOperator(ctx, admin)
	members := postgres.NewMemberService(b.db)
	for i := range n {
		m := &cloud.Member{Kind: cloud.KindPerson, FirstName: "M", LastName: fmt.Sprint(i)}
		if err := members.CreateMember(b.admin, m); err != nil {
			t.Fatal(err)
		}
		if err := members.CreateMembership(b.admin, &cloud.Membership{MemberID: m.ID, Name: "Annual", StartsOn: cloud.NewDate(2025, 1, 1), EndsOn: cloud.NewDate(2025, 12, 31)}); err != nil {
			t.Fatal(err)
		}
		b.members = append(b.members, m.ID)
	}
	// A member with a certificate is not blocked.
	ok := &cloud.Member{Kind: cloud.KindPerson, FirstName: "Fit", LastName: "Member", MedicalCertExpiry: cloud.NewDate(2026, 1, 1)}
	if err := members.CreateMember(b.admin, ok); err != nil {
		t.Fatal(err)
	}
	b.schedule = postgres.NewScheduleService(b.db)
	block := b.recipe("block_medical_cert")
	if block.Active || block.Body.Kind != cloud.BodyActions || block.Body.CompleteDays == nil || *block.Body.CompleteDays != 0 {
		t.Fatalf("seeded blocking operation = %+v", block)
	}
	block, err := b.schedule.UpdateSchedule(b.admin, block.ID, block.Version, cloud.ScheduleUpdate{Active: new(true)})
	if err != nil {
		t.Fatal(err)
	}
	// 05:00 in Rome tomorrow.
	if want := time.Date(2025, 3, 5, 4, 0, 0, 0, time.UTC); block.NextRunAt == nil || !block.NextRunAt.Equal(want) {
		t.Fatalf("next run %v, want %s", block.NextRunAt, want)
	}
	return b, block
}

func (b *bundle) recipe(key string) *cloud.Schedule {
	b.t.Helper()
	all, err := b.schedule.FindSchedules(b.admin, cloud.ScheduleFilter{})
	if err != nil {
		b.t.Fatal(err)
	}
	for _, s := range all {
		if s.Recipe == key {
			return s
		}
	}
	b.t.Fatalf("no recipe %s among %d operations", key, len(all))
	return nil
}

// wait returns the next run end that matches, failing after a minute.
func (b *bundle) wait(match func(runEnd) bool) runEnd {
	b.t.Helper()
	deadline := time.After(time.Minute)
	for {
		select {
		case e := <-b.ends:
			if match(e) {
				return e
			}
		case <-deadline:
			b.t.Fatal("no run ended in a minute")
		}
	}
}

// actionsPerMember counts the actions of each blocked member.
func (b *bundle) actionsPerMember() map[int64]int {
	b.t.Helper()
	rows, err := b.db.Pool.Query(context.Background(), `SELECT member_id, count(*) FROM crm_actions GROUP BY member_id`)
	if err != nil {
		b.t.Fatal(err)
	}
	defer rows.Close()
	out := map[int64]int{}
	for rows.Next() {
		var id int64
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			b.t.Fatal(err)
		}
		out[id] = n
	}
	return out
}

func (b *bundle) exactlyOneEach() {
	b.t.Helper()
	got := b.actionsPerMember()
	if len(got) != len(b.members) {
		b.t.Errorf("%d members have actions, want %d", len(got), len(b.members))
	}
	for _, id := range b.members {
		if got[id] != 1 {
			b.t.Errorf("member %d has %d actions, want 1", id, got[id])
		}
	}
}

// TestTwoSchedulersOneDay runs one day's operations with two scheduler
// instances (two River clients, two pools) on the same database, both
// ticking: every member gets exactly one blocking action; the next day
// nobody gets a second one while the first is open; an operation whose
// messages have no communicator is recorded as failed, not retried.
func TestTwoSchedulersOneDay(t *testing.T) {
	b, block := setup(t, 23)
	// A communication operation, active, with nobody to send it.
	welcome := b.recipe("membership_ending_15d")
	tmpl := &cloud.Template{Name: "Renewal", Channel: cloud.ChannelSMS, Text: "Ciao [FirstName], rinnova!"}
	if err := postgres.NewTemplateService(b.db).CreateTemplate(b.admin, tmpl); err != nil {
		t.Fatal(err)
	}
	body := welcome.Body
	body.TemplateID = &tmpl.ID
	welcome, err := b.schedule.UpdateSchedule(b.admin, welcome.ID, welcome.Version, cloud.ScheduleUpdate{Active: new(true), Body: &body})
	if err != nil {
		t.Fatal(err)
	}
	b.clock.Set(time.Date(2025, 3, 5, 9, 30, 0, 0, time.UTC)) // 10:30 in Rome: both are due
	r1 := b.replica("replica-1", nil)
	r2 := b.replica("replica-2", nil)
	for _, r := range []*replica{r1, r2, r1, r2} {
		if err := r.scheduler.Tick(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	day := cloud.NewDate(2025, 3, 5)
	got := map[int64]runEnd{}
	for len(got) < 2 {
		e := b.wait(func(e runEnd) bool { return e.res != nil && e.res.Status != cloud.RunRunning })
		got[e.run.ScheduleID] = e
	}
	if e := got[block.ID]; e.err != nil || e.res.Status != cloud.RunDone || e.res.Day != day || e.res.Members != 23 || e.res.Created != 23 || e.res.Skipped != 0 {
		t.Fatalf("blocking run = %+v, %v", e.res, e.err)
	}
	if e := got[welcome.ID]; !errors.Is(e.err, cloud.ErrNoCommunicator) || e.res.Status != cloud.RunFailed || e.res.Error == "" || e.res.Attempts != 1 {
		t.Fatalf("communication run = %+v, %v", e.res, e.err)
	}
	b.exactlyOneEach()
	// The actions block at the turnstile, complete by the run day.
	var blocking, dueToday int
	if err := b.db.Pool.QueryRow(context.Background(), `SELECT count(*) FILTER (WHERE t.access_action = 'message_block'),
		count(*) FILTER (WHERE a.complete_by = '2025-03-05') FROM crm_actions a JOIN action_types t ON t.id = a.type_id`).Scan(&blocking, &dueToday); err != nil {
		t.Fatal(err)
	}
	if blocking != 23 || dueToday != 23 {
		t.Errorf("%d blocking actions, %d due on the run day; want 23, 23", blocking, dueToday)
	}
	// More ticks the same day enqueue nothing: the next runs are tomorrow.
	for _, r := range []*replica{r1, r2} {
		if err := r.scheduler.Tick(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	// The next day, yesterday's blocks are still open: all skipped, with the reason.
	b.clock.Set(time.Date(2025, 3, 6, 4, 30, 0, 0, time.UTC))
	if err := r2.scheduler.Tick(context.Background()); err != nil {
		t.Fatal(err)
	}
	e := b.wait(func(e runEnd) bool {
		return e.run.ScheduleID == block.ID && e.res != nil && e.res.Status == cloud.RunDone
	})
	if e.res.Day != day.AddDays(1) || e.res.Created != 0 || e.res.Skipped != 23 || e.res.SkippedReasons[cloud.SkipOpenAction] != 23 {
		t.Fatalf("second day = %+v", e.res)
	}
	b.exactlyOneEach()
	runs, err := b.schedule.FindScheduleRuns(b.admin, block.ID, cloud.Date{}, 0)
	if err != nil || len(runs) != 2 || runs[0].Day != day.AddDays(1) || runs[1].Created != 23 || runs[1].SenderID == 0 {
		t.Fatalf("history = %+v, %v", runs, err)
	}
}

// TestRestartMidRun fails a run after its first batch of actions, as a
// crash would, on one scheduler; another scheduler takes the retry up:
// nobody gets two actions.
func TestRestartMidRun(t *testing.T) {
	b, block := setup(t, 17)
	b.clock.Set(time.Date(2025, 3, 5, 4, 30, 0, 0, time.UTC))
	var crashed atomic.Bool
	r1 := b.replica("crashing", func(r *replica) {
		r.runner.AfterBatch = func(run postgres.DueRun, batch int) error {
			if batch == 1 && crashed.CompareAndSwap(false, true) {
				return errors.New("power cut")
			}
			return nil
		}
	})
	if err := r1.scheduler.Tick(context.Background()); err != nil {
		t.Fatal(err)
	}
	e := b.wait(func(e runEnd) bool { return e.err != nil })
	if e.res == nil || e.res.Status != cloud.RunFailed || e.res.Error != "power cut" {
		t.Fatalf("crashed run = %+v, %v", e.res, e.err)
	}
	if n := len(b.actionsPerMember()); n != 10 {
		t.Fatalf("%d members got an action before the crash, want 10 (two batches of 5)", n)
	}
	r1.stop(t)
	b.replica("restarted", nil) // River retries the job after its backoff
	e = b.wait(func(e runEnd) bool { return e.res != nil && e.res.Status == cloud.RunDone })
	if e.res.Created != 17 || e.res.Attempts < 2 || e.run.ScheduleID != block.ID {
		t.Fatalf("resumed run = %+v", e.res)
	}
	b.exactlyOneEach()
	// Executing the finished run again changes nothing.
	res, err := postgres.NewScheduleRunner(b.db).ExecuteRun(context.Background(), e.run)
	if err != nil || res.Status != cloud.RunDone || res.Attempts != e.res.Attempts {
		t.Fatalf("again = %+v, %v", res, err)
	}
	b.exactlyOneEach()
}

// TestMissedDay: a scheduler down for a whole run day records the run as
// missed and runs the next day normally.
func TestMissedDay(t *testing.T) {
	b, block := setup(t, 3)
	b.clock.Set(time.Date(2025, 3, 6, 4, 30, 0, 0, time.UTC)) // the 5th went by
	r := b.replica("late", nil)
	if err := r.scheduler.Tick(context.Background()); err != nil {
		t.Fatal(err)
	}
	e := b.wait(func(e runEnd) bool { return e.res != nil && e.res.Status == cloud.RunDone })
	if e.res.Day != cloud.NewDate(2025, 3, 6) || e.res.Created != 3 {
		t.Fatalf("run = %+v", e.res)
	}
	runs, err := b.schedule.FindScheduleRuns(b.admin, block.ID, cloud.Date{}, 0)
	if err != nil || len(runs) != 2 || runs[1].Status != cloud.RunMissed || runs[1].Day != cloud.NewDate(2025, 3, 5) {
		t.Fatalf("history = %+v, %v", runs, err)
	}
}
