package badger

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	badgerdb "github.com/dgraph-io/badger/v4"
	"github.com/jonboulle/clockwork"

	"varco.dev/edge"
	vsync "varco.dev/protocol/sync"
)

func openJournal(t *testing.T, dir string, opts JournalOptions) *Journal {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = testLogger(t)
	}
	j, err := OpenJournal(ctx, dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	return j
}

// passage is a valid passage event of member i.
func passage(i int) vsync.Event {
	return vsync.Event{Time: 1_800_000_000_000 + vsync.Timestamp(i), Kind: vsync.EventPassage, Reader: "in-1",
		Credential: cardKey(i), Member: vsync.MemberRef(i), Decision: vsync.DecisionGrant}
}

func seqs(t *testing.T, j *Journal, after uint64, limit int) []uint64 {
	t.Helper()
	es, err := j.ReadAfter(ctx, after, limit)
	if err != nil {
		t.Fatal(err)
	}
	var out []uint64
	for _, e := range es {
		out = append(out, e.Seq)
	}
	return out
}

func span(from, to uint64) []uint64 {
	var out []uint64
	for s := from; s <= to; s++ {
		out = append(out, s)
	}
	return out
}

func TestJournal(t *testing.T) {
	j := openJournal(t, t.TempDir(), JournalOptions{Boot: 42, Fsync: edge.FsyncNever})
	if j.LastSeq() != 0 || j.Backlog() != 0 || seqs(t, j, 0, 10) != nil {
		t.Fatal("new journal not empty")
	}
	for i := 1; i <= 10; i++ {
		if seq, err := j.Append(ctx, passage(i)); err != nil || seq != uint64(i) {
			t.Fatalf("Append %d = %d, %v", i, seq, err)
		}
	}
	es, err := j.ReadAfter(ctx, 0, 100)
	if err != nil || len(es) != 10 {
		t.Fatalf("ReadAfter: %d, %v", len(es), err)
	}
	for i, e := range es {
		want := passage(i + 1)
		want.Seq = uint64(i + 1)
		if e.Boot != 42 || e.Event != want {
			t.Errorf("entry %d = %+v, want %+v", i, e, want)
		}
	}
	if got := seqs(t, j, 5, 3); !slices.Equal(got, []uint64{6, 7, 8}) {
		t.Errorf("ReadAfter(5, 3) = %v", got)
	}
	if got := seqs(t, j, 9, 0); got != nil {
		t.Errorf("ReadAfter(9, 0) = %v", got)
	}
	if err := j.DeleteThrough(ctx, 4); err != nil {
		t.Fatal(err)
	}
	if got := seqs(t, j, 0, 100); !slices.Equal(got, span(5, 10)) || j.Backlog() != 6 {
		t.Errorf("after DeleteThrough(4): %v, backlog %d", got, j.Backlog())
	}
	if err := j.DeleteThrough(ctx, 2); err != nil || j.Backlog() != 6 {
		t.Errorf("DeleteThrough(2) after 4: %v, backlog %d", err, j.Backlog())
	}
	if err := j.DeleteThrough(ctx, 1000); err != nil || j.Backlog() != 0 || seqs(t, j, 0, 100) != nil {
		t.Errorf("DeleteThrough beyond the last: %v, backlog %d", err, j.Backlog())
	}
	if seq, _ := j.Append(ctx, passage(11)); seq != 11 || j.LastSeq() != 11 || j.Backlog() != 1 {
		t.Errorf("append after deleting all: seq %d, last %d, backlog %d", seq, j.LastSeq(), j.Backlog())
	}
}

func TestJournalReopen(t *testing.T) {
	dir := t.TempDir()
	j := openJournal(t, dir, JournalOptions{Boot: 1})
	for i := range 5 {
		j.Append(ctx, passage(i))
	}
	j.DeleteThrough(ctx, 2)
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := j.Append(ctx, passage(9)); err == nil {
		t.Error("append after Close")
	}
	j = openJournal(t, dir, JournalOptions{Boot: 2})
	if j.LastSeq() != 5 || j.Backlog() != 3 {
		t.Errorf("reopened: last %d backlog %d", j.LastSeq(), j.Backlog())
	}
	if seq, _ := j.Append(ctx, passage(6)); seq != 6 {
		t.Errorf("first append after reopen: %d", seq)
	}
	es, _ := j.ReadAfter(ctx, 0, 10)
	var boots []vsync.BootID
	for _, e := range es {
		boots = append(boots, e.Boot)
	}
	if !slices.Equal(boots, []vsync.BootID{1, 1, 1, 2}) || es[0].Seq != 3 {
		t.Errorf("boots %v from seq %d", boots, es[0].Seq)
	}
}

// TestJournalDeleteCrash reopens a journal that crashed between recording an
// acknowledgement and deleting the events: they are deleted at open.
func TestJournalDeleteCrash(t *testing.T) {
	dir := t.TempDir()
	j := openJournal(t, dir, JournalOptions{})
	for i := range 10 {
		j.Append(ctx, passage(i))
	}
	j.Close()
	db, err := badgerdb.Open(journalOptions(dir, testLogger(t), edge.FsyncNever))
	if err != nil {
		t.Fatal(err)
	}
	db.Update(func(txn *badgerdb.Txn) error { return txn.Set(ackedKey, u64(7)) })
	db.Close()
	j = openJournal(t, dir, JournalOptions{})
	if j.Backlog() != 3 || !slices.Equal(seqs(t, j, 0, 100), []uint64{8, 9, 10}) {
		t.Errorf("backlog %d, events %v", j.Backlog(), seqs(t, j, 0, 100))
	}
	n := 0
	j.db.View(func(txn *badgerdb.Txn) error {
		it := txn.NewIterator(badgerdb.IteratorOptions{Prefix: []byte{'e'}})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			n++
		}
		return nil
	})
	if n != 3 {
		t.Errorf("%d events stored, want 3", n)
	}
}

func TestJournalConcurrentAppends(t *testing.T) {
	j := openJournal(t, t.TempDir(), JournalOptions{})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 50 {
				if _, err := j.Append(ctx, passage(g*100+i)); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Go(func() {
		for range 20 {
			j.DeleteThrough(ctx, j.LastSeq()/2)
		}
	})
	wg.Wait()
	if j.LastSeq() != 200 {
		t.Errorf("last seq %d", j.LastSeq())
	}
	after := 200 - j.Backlog()
	if got := seqs(t, j, 0, 1000); !slices.Equal(got, span(after+1, 200)) {
		t.Errorf("events %v, want %d..200", got, after+1)
	}
}

// TestJournalBatchSync drives the FsyncBatch goroutine with a fake clock.
func TestJournalBatchSync(t *testing.T) {
	clock := clockwork.NewFakeClock()
	synced := make(chan struct{})
	j := openJournal(t, t.TempDir(), JournalOptions{Clock: clock, BatchInterval: time.Second})
	j.afterSync = func() { synced <- struct{}{} }
	tick := func() {
		t.Helper()
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := clock.BlockUntilContext(ctx, 1); err != nil {
			t.Fatal(err)
		}
		clock.Advance(time.Second)
		select {
		case <-synced:
		case <-ctx.Done():
			t.Fatal("no sync after a tick")
		}
	}
	tick()
	if _, err := j.Append(ctx, passage(1)); err != nil {
		t.Fatal(err)
	}
	if j.Unsynced() != 1 {
		t.Errorf("%d events unsynced after an append, want 1", j.Unsynced())
	}
	tick()
	if j.Unsynced() != 0 {
		t.Error("tick did not sync")
	}
}

// TestJournalReadSyncs: ReadAfter returns only synced events, syncing first.
func TestJournalReadSyncs(t *testing.T) {
	j := openJournal(t, t.TempDir(), JournalOptions{Fsync: edge.FsyncNever})
	for i := range 3 {
		j.Append(ctx, passage(i))
	}
	if j.Unsynced() != 3 {
		t.Fatalf("unsynced %d", j.Unsynced())
	}
	if got := seqs(t, j, 0, 10); len(got) != 3 || j.Unsynced() != 0 {
		t.Errorf("read %v, %d unsynced after", got, j.Unsynced())
	}
}

func TestJournalSyncAlways(t *testing.T) {
	dir := t.TempDir()
	j := openJournal(t, dir, JournalOptions{Fsync: edge.FsyncAlways})
	if !j.db.Opts().SyncWrites {
		t.Error("FsyncAlways without SyncWrites")
	}
	if seq, err := j.Append(ctx, passage(1)); seq != 1 || err != nil {
		t.Fatal(seq, err)
	}
	if j.Unsynced() != 0 {
		t.Error("an append with FsyncAlways is unsynced")
	}
}

const (
	childEnv   = "VARCO_JOURNAL_CHILD"
	childFsync = "VARCO_JOURNAL_FSYNC"
)

// journalChild appends events from 4 goroutines until it is killed, printing
// each sequence number once Append has returned it.
func journalChild(dir string) {
	p, _ := edge.ParseFsyncPolicy(os.Getenv(childFsync))
	j, err := OpenJournal(context.Background(), dir, JournalOptions{Fsync: p})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	out := bufio.NewWriterSize(os.Stdout, 64) // one line per write
	var mu sync.Mutex
	for g := range 4 {
		go func() {
			for i := 0; ; i++ {
				seq, err := j.Append(context.Background(), passage(g*1_000_000+i))
				if err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(3)
				}
				mu.Lock()
				fmt.Fprintf(out, "%d\n", seq)
				out.Flush()
				mu.Unlock()
			}
		}()
	}
	select {}
}

// TestJournalKill9 kills a process appending events with SIGKILL, three
// times: every sequence number it printed (Append had returned) is in the
// journal afterwards, and the sequence has no gap.
func TestJournalKill9(t *testing.T) {
	for _, fsync := range []edge.FsyncPolicy{edge.FsyncNever, edge.FsyncAlways} {
		t.Run(fsync.String(), func(t *testing.T) {
			dir := t.TempDir()
			var printed []uint64
			for round := range 3 {
				cmd := exec.Command(os.Args[0], "-test.run=^$")
				cmd.Env = append(os.Environ(), childEnv+"="+dir, childFsync+"="+fsync.String())
				cmd.Stderr = os.Stderr
				stdout, err := cmd.StdoutPipe()
				if err != nil {
					t.Fatal(err)
				}
				if err := cmd.Start(); errors.Is(err, syscall.ENOEXEC) {
					t.Skipf("cannot run the test binary again (qemu-user without binfmt_misc?): %v", err)
				} else if err != nil {
					t.Fatal(err)
				}
				sc := bufio.NewScanner(stdout)
				killed := false
				for sc.Scan() {
					seq, err := strconv.ParseUint(sc.Text(), 10, 64)
					if err != nil {
						t.Fatalf("child printed %q", sc.Text())
					}
					printed = append(printed, seq)
					if n := len(printed); !killed && n >= (round+1)*500 {
						cmd.Process.Signal(syscall.SIGKILL) // lines already in the pipe are still read
						killed = true
					}
				}
				if err := cmd.Wait(); err == nil || !killed {
					t.Fatalf("child ended with %v, killed %v", err, killed)
				}
			}
			j := openJournal(t, dir, JournalOptions{})
			all := seqs(t, j, 0, 1<<30)
			if !slices.Equal(all, span(1, j.LastSeq())) {
				t.Fatalf("journal of %d events has gaps (last seq %d)", len(all), j.LastSeq())
			}
			slices.Sort(printed)
			if len(printed) > 0 && printed[len(printed)-1] > j.LastSeq() {
				t.Errorf("child printed seq %d, journal ends at %d", printed[len(printed)-1], j.LastSeq())
			}
			if n := len(printed); len(slices.Compact(printed)) != n {
				t.Error("a sequence number was printed twice")
			}
			t.Logf("%d events appended over 3 kills, %d acknowledged to the child, all present", j.LastSeq(), len(printed))
		})
	}
}

// TestJournalCloseWhileBusy closes the journal under appends and reads: they
// fail with edge.ErrClosed, nothing panics.
func TestJournalCloseWhileBusy(t *testing.T) {
	j := openJournal(t, t.TempDir(), JournalOptions{})
	var wg sync.WaitGroup
	for g := range 3 {
		wg.Go(func() {
			for i := 0; ; i++ {
				var err error
				if g == 0 {
					_, err = j.ReadAfter(ctx, 0, 10)
				} else {
					_, err = j.Append(ctx, passage(i))
				}
				if errors.Is(err, edge.ErrClosed) {
					return
				} else if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	for j.LastSeq() < 50 {
		runtime.Gosched()
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
}
