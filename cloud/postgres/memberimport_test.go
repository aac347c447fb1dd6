package postgres_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"varco.dev/cloud"
	"varco.dev/cloud/postgres"
)

// membersCSV returns a file of n people whose last name is tag, with the
// cards 7:key..7:key+n-1; the rows whose index is in bad have a birth date
// the parser refuses.
func membersCSV(tag string, key, n int, bad ...int) []byte {
	var b strings.Builder
	b.WriteString("kind,first_name,last_name,email,birth_date,credential\n")
	for i := range n {
		birth := "1990-01-01"
		for _, x := range bad {
			if x == i {
				birth = "01/01/1990"
			}
		}
		fmt.Fprintf(&b, "person,P%d,%s,p%d.%s@x.test,%s,card:7:%d\n", i, tag, i, strings.ToLower(tag), birth, key+i)
	}
	return []byte(b.String())
}

// ended returns a worker hook that passes the jobs it ended to a channel,
// and a function that waits for the next one.
func ended(t *testing.T) (func(*cloud.ImportJob), func() *cloud.ImportJob) {
	ch := make(chan *cloud.ImportJob, 8)
	return func(j *cloud.ImportJob) { ch <- j }, func() *cloud.ImportJob {
		t.Helper()
		select {
		case j := <-ch:
			return j
		case <-time.After(time.Minute): // a guard against a hang, not a timing assertion
			t.Fatal("no import job ended")
			return nil
		}
	}
}

func countMembers(t *testing.T, b *bundle, lastName string) (rows, distinct int) {
	t.Helper()
	if err := b.db.Pool.QueryRow(context.Background(), `SELECT count(*), count(DISTINCT email) FROM members WHERE tenant_id = $1 AND last_name = $2`,
		b.tenantID, lastName).Scan(&rows, &distinct); err != nil {
		t.Fatal(err)
	}
	return rows, distinct
}

// TestImportResumesAfterStop stops a worker in the middle of a job (as a
// shutdown does) and starts another one (as the next process does): the job
// goes on from the row it stopped at and no row is imported twice.
func TestImportResumesAfterStop(t *testing.T) {
	t.Parallel()
	b := setup(t)
	first := postgres.NewImportService(b.db)
	first.BatchRows = 10
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	first.OnBatch = func(_ int64, processed int) {
		if processed >= 20 {
			stop() // shutdown after the second batch
		}
	}
	job, err := first.ImportMembers(b.admin, membersCSV("Resume", 1000, 35, 3, 22, 34), true)
	if err != nil {
		t.Fatal(err)
	}
	if job.Status != cloud.ImportQueued || job.Rows != 35 || job.Processed != 0 {
		t.Fatalf("queued job = %+v", job)
	}
	if err := first.Start(ctx); err != nil {
		t.Fatal(err)
	}
	<-ctx.Done()
	first.Stop()
	job, err = first.FindImportByID(b.admin, job.ID)
	if err != nil {
		t.Fatal(err)
	}
	if job.Status != cloud.ImportRunning || job.Processed != 20 || job.Imported != 19 || job.ErrorCount != 1 {
		t.Fatalf("job after stop = %+v, want running at row 20", job)
	}
	if n, _ := countMembers(t, b, "Resume"); n != 19 {
		t.Fatalf("%d members after stop, want 19", n)
	}

	next := postgres.NewImportService(b.db)
	next.BatchRows = 10
	hook, wait := ended(t)
	next.OnJobEnd = hook
	if err := next.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer next.Stop()
	done := wait()
	if done.ID != job.ID || done.Status != cloud.ImportDone || done.Processed != 35 || done.Imported != 32 || done.ErrorCount != 3 || done.FinishedAt == nil {
		t.Fatalf("job = %+v, want done with 32 imported and 3 errors", done)
	}
	rows := []int{}
	for _, e := range done.Errors {
		rows = append(rows, e.Row)
	}
	if fmt.Sprint(rows) != "[5 24 36]" || done.Errors[0].Field != "birth_date" {
		t.Errorf("error rows = %v (%+v), want the file's lines 5, 24, 36", rows, done.Errors)
	}
	if n, distinct := countMembers(t, b, "Resume"); n != 32 || distinct != 32 {
		t.Errorf("%d members (%d distinct), want 32 imported once each", n, distinct)
	}
	var file *[]byte
	if err := b.db.Pool.QueryRow(context.Background(), `SELECT file FROM member_imports WHERE id = $1`, job.ID).Scan(&file); err != nil || file != nil {
		t.Errorf("the uploaded file is still stored after the job: %v", err)
	}
}

// TestImportTakesOverADeadWorkersJob leaves a job leased by a process that
// died: it is not touched while the lease runs, and taken over after.
func TestImportTakesOverADeadWorkersJob(t *testing.T) {
	t.Parallel()
	b := setup(t)
	svc := postgres.NewImportService(b.db)
	svc.BatchRows = 10
	hook, wait := ended(t)
	svc.OnJobEnd = hook
	orphan, err := svc.ImportMembers(b.admin, membersCSV("Orphan", 2000, 25), true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.db.Pool.Exec(context.Background(), `UPDATE member_imports SET status = 'running', lease_owner = 'dead-process',
		lease_until = $2, started_at = $3 WHERE id = $1`, orphan.ID, t0.Add(time.Minute), t0); err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer svc.Stop()
	// A new job wakes the worker: it runs that one and leaves the leased one.
	fresh, err := svc.ImportMembers(b.admin, membersCSV("Fresh", 3000, 3), true)
	if err != nil {
		t.Fatal(err)
	}
	if j := wait(); j.ID != fresh.ID || j.Status != cloud.ImportDone {
		t.Fatalf("first job ended = %+v, want the fresh one", j)
	}
	if j, _ := svc.FindImportByID(b.admin, orphan.ID); j.Status != cloud.ImportRunning || j.Processed != 0 {
		t.Fatalf("leased job = %+v, want untouched", j)
	}
	// Once the lease expires, the next wake-up takes it over (the new job
	// may run before or after it).
	b.clock.Add(time.Minute)
	later, err := svc.ImportMembers(b.admin, membersCSV("Later", 4000, 1), true)
	if err != nil {
		t.Fatal(err)
	}
	got := map[int64]*cloud.ImportJob{}
	for range 2 {
		j := wait()
		got[j.ID] = j
	}
	if j := got[orphan.ID]; j == nil || j.Status != cloud.ImportDone || j.Imported != 25 {
		t.Fatalf("orphan job = %+v, want done", j)
	}
	if j := got[later.ID]; j == nil || j.Status != cloud.ImportDone || j.Imported != 1 {
		t.Fatalf("later job = %+v, want done", j)
	}
	if n, distinct := countMembers(t, b, "Orphan"); n != 25 || distinct != 25 {
		t.Errorf("%d orphan members (%d distinct), want 25", n, distinct)
	}
}

func TestImportOwnedByTenant(t *testing.T) {
	t.Parallel()
	b := setup(t)
	svc := postgres.NewImportService(b.db)
	job, err := svc.ImportMembers(b.admin, membersCSV("Mine", 5000, 2, 1), false)
	if err != nil {
		t.Fatal(err)
	}
	if job.Status != cloud.ImportDone || job.Imported != 1 || len(job.Errors) != 1 {
		t.Fatalf("small file imported inline = %+v", job)
	}
	empty, err := svc.ImportMembers(b.admin, []byte("kind,last_name\n"), true)
	if err != nil || empty.Status != cloud.ImportDone || empty.Rows != 0 {
		t.Fatalf("header-only file = %+v, %v", empty, err)
	}
	if _, err := svc.ImportMembers(b.admin, []byte("kind,password\nperson,x\n"), false); cloud.ErrorField(err) != "file" {
		t.Errorf("bad header: %v", err)
	}
	bctx := b.otherTenant(t)
	if _, err := svc.FindImportByID(bctx, job.ID); cloud.ErrorCode(err) != cloud.ENOTFOUND {
		t.Errorf("B reads A's job: %v", err)
	}
	if _, err := svc.FindImportErrors(bctx, job.ID, 0, 10); cloud.ErrorCode(err) != cloud.ENOTFOUND {
		t.Errorf("B reads A's errors: %v", err)
	}
	if l, err := svc.FindImports(bctx, 0, 10); err != nil || len(l) != 0 {
		t.Errorf("B lists %d jobs, %v", len(l), err)
	}
	if l, err := svc.FindImports(b.admin, 0, 10); err != nil || len(l) != 2 || l[0].ID != empty.ID || l[0].Errors != nil {
		t.Errorf("A's jobs = %+v, %v", l, err)
	}
}
