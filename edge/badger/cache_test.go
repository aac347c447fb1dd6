package badger

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	badgerdb "github.com/dgraph-io/badger/v4"
	"golang.org/x/sys/unix"

	"varco.dev/edge"
	vsync "varco.dev/protocol/sync"
)

func openCache(t *testing.T, dir string) *Cache {
	t.Helper()
	c, err := OpenCache(ctx, dir, CacheOptions{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// member looks key up and returns the member, 0 if unknown.
func member(t *testing.T, c *Cache, key vsync.CredentialKey) vsync.MemberRef {
	t.Helper()
	var r vsync.Record
	ok, err := c.Lookup(key, &r)
	if err != nil {
		t.Fatalf("Lookup(%s): %v", key, err)
	}
	if !ok {
		return 0
	}
	if len(r.Credentials) != 1 || r.Credentials[0].Key != key {
		t.Fatalf("Lookup(%s): credentials %v", key, r.Credentials)
	}
	return r.Member
}

func wantMembers(t *testing.T, c *Cache, want map[vsync.CredentialKey]vsync.MemberRef) {
	t.Helper()
	for k, m := range want {
		if got := member(t, c, k); got != m {
			t.Errorf("credential %s: member %d, want %d", k, got, m)
		}
	}
}

func apply(t *testing.T, c *Cache, d *vsync.Delta) {
	t.Helper()
	if step, err := c.ApplyDelta(ctx, d); err != nil || step != vsync.StepApply {
		t.Fatalf("ApplyDelta(%d→%d) = %s, %v", d.Prev, d.Version, step, err)
	}
}

func TestCacheDeltas(t *testing.T) {
	dir := t.TempDir()
	c := openCache(t, dir)
	if v := c.Version(); v != 0 {
		t.Fatalf("empty cache at version %d", v)
	}
	pin := vsync.CredentialHash(tenantKey, "pin:1234")
	apply(t, c, &vsync.Delta{Prev: 0, Version: 1, Upserts: []vsync.Record{
		rec(1), rec(2, func(r *vsync.Record) { r.Credentials = append(r.Credentials, vsync.Credential{Key: pin}) }), rec(3),
	}})
	wantMembers(t, c, map[vsync.CredentialKey]vsync.MemberRef{cardKey(1): 1, cardKey(2): 2, pin: 2, cardKey(3): 3, cardKey(4): 0})

	// Member 2 loses its card and keeps its PIN; member 3 goes; 4 comes.
	apply(t, c, &vsync.Delta{Prev: 1, Version: 5,
		Upserts: []vsync.Record{rec(2, func(r *vsync.Record) { r.Credentials = []vsync.Credential{{Key: pin}} }), rec(4)},
		Deletes: []vsync.MemberRef{3, 99}})
	want := map[vsync.CredentialKey]vsync.MemberRef{cardKey(1): 1, cardKey(2): 0, pin: 2, cardKey(3): 0, cardKey(4): 4}
	wantMembers(t, c, want)

	for _, d := range []*vsync.Delta{{Prev: 1, Version: 5}, {Prev: 0, Version: 1, Upserts: []vsync.Record{rec(3)}}} {
		if step, err := c.ApplyDelta(ctx, d); err != nil || step != vsync.StepSkip {
			t.Errorf("duplicate %d→%d: %s, %v", d.Prev, d.Version, step, err)
		}
	}
	step, err := c.ApplyDelta(ctx, &vsync.Delta{Prev: 7, Version: 8, Upserts: []vsync.Record{rec(3)}})
	var gap *edge.GapError
	if step != vsync.StepCatchUp || !errors.Is(err, edge.ErrGap) || !errors.As(err, &gap) || *gap != (edge.GapError{Have: 5, Prev: 7, Version: 8}) {
		t.Errorf("gap: %s, %v", step, err)
	}
	if v := c.Version(); v != 5 {
		t.Errorf("version %d after the gap, want 5", v)
	}
	wantMembers(t, c, want)

	// An invalid record refuses the whole delta.
	bad := rec(5)
	bad.Credentials = append(bad.Credentials, bad.Credentials[0])
	if _, err := c.ApplyDelta(ctx, &vsync.Delta{Prev: 5, Version: 6, Upserts: []vsync.Record{rec(6), bad}}); !errors.Is(err, vsync.ErrInvalid) {
		t.Errorf("invalid delta: %v", err)
	}
	for _, d := range []*vsync.Delta{
		{Prev: 5, Version: 6, Upserts: []vsync.Record{rec(6), rec(6)}},
		{Prev: 5, Version: 6, Upserts: []vsync.Record{rec(6)}, Deletes: []vsync.MemberRef{6}},
		{Prev: 5, Version: 6, Upserts: []vsync.Record{rec(6), rec(7, func(r *vsync.Record) { r.Credentials[0].Key = cardKey(6) })}},
	} {
		if _, err := c.ApplyDelta(ctx, d); !errors.Is(err, vsync.ErrInvalid) {
			t.Errorf("delta with a member or credential twice: %v", err)
		}
	}
	if v, m := c.Version(), member(t, c, cardKey(6)); v != 5 || m != 0 {
		t.Errorf("invalid delta applied in part: version %d, member %d", v, m)
	}

	// The same after a restart.
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Lookup(cardKey(1), new(vsync.Record)); !errors.Is(err, edge.ErrClosed) {
		t.Errorf("Lookup after Close: %v", err)
	}
	c = openCache(t, dir)
	if v := c.Version(); v != 5 {
		t.Errorf("version %d after reopen, want 5", v)
	}
	wantMembers(t, c, want)
	if st := c.Stats(); st.Members != 3 || st.Credentials != 3 {
		t.Errorf("stats %+v", st)
	}
}

func TestCacheLookupRecord(t *testing.T) {
	c := openCache(t, t.TempDir())
	full := vsync.Record{
		Member: 77,
		Credentials: []vsync.Credential{{Key: cardKey(77), Valid: vsync.Window{From: 5, Until: 9}},
			{Key: cardKey(78), Valid: vsync.Window{Until: 1_900_000_000_000}}},
		Valid:     []vsync.Window{{}, {From: 1, Until: 2}},
		Sites:     []string{"7", "milano-2"},
		Devices:   vsync.AllDevices,
		Suspended: true,
		Actions: []vsync.Action{{ID: 1, Mode: vsync.AccessMessageBlock, Devices: vsync.DeviceSetOf(vsync.DeviceSpa), Text: "Perché?", Priority: 3},
			{ID: 2, Mode: vsync.AccessNone}},
		Notices: []vsync.Notice{{Text: "Buon compleanno", Priority: 9, Valid: vsync.Window{From: 10, Until: 20}}},
	}
	apply(t, c, &vsync.Delta{Prev: 0, Version: 1, Upserts: []vsync.Record{full}})
	var got vsync.Record
	if ok, err := c.Lookup(cardKey(78), &got); !ok || err != nil {
		t.Fatalf("Lookup: %v %v", ok, err)
	}
	want := full
	want.Credentials = full.Credentials[1:]
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Lookup =\n%+v\nwant\n%+v", got, want)
	}
	// Reused with a smaller record: nothing of the first one stays.
	apply(t, c, &vsync.Delta{Prev: 1, Version: 2, Upserts: []vsync.Record{rec(5)}})
	if ok, err := c.Lookup(cardKey(5), &got); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if want := rec(5); !reflect.DeepEqual(got.Credentials, want.Credentials) || len(got.Sites) != 0 ||
		len(got.Actions) != 0 || len(got.Notices) != 0 || got.Suspended || got.Devices != want.Devices {
		t.Errorf("reused record: %+v", got)
	}
}

func TestCacheLookupAllocs(t *testing.T) {
	c := openCache(t, t.TempDir())
	apply(t, c, &vsync.Delta{Prev: 0, Version: 1, Upserts: []vsync.Record{rec(1, func(r *vsync.Record) {
		r.Actions = []vsync.Action{{ID: 9, Mode: vsync.AccessMessageBlock, Devices: vsync.AllDevices, Text: "See reception"}}
		r.Notices = []vsync.Notice{{Text: "Hi"}}
	})}})
	var r vsync.Record
	in := edge.Input{Credential: cardKey(1), Reader: edge.Reader{ID: "in-1", Device: vsync.DeviceEntrance, Rows: 2, Cols: 16}, Now: 1_800_000_000_000}
	d, _ := edge.DecideCached(c, &r, in) // grows r's slices
	if d.Reason != vsync.ReasonBlocked {
		t.Fatalf("decision %+v", d)
	}
	if n := testing.AllocsPerRun(1000, func() { d, _ = edge.DecideCached(c, &r, in) }); n != 0 {
		t.Errorf("lookup and decision allocate %v times", n)
	}
}

// A credential that moves from member 1 to member 2, in one delta or in two.
func TestCacheCredentialMoves(t *testing.T) {
	c := openCache(t, t.TempDir())
	apply(t, c, &vsync.Delta{Prev: 0, Version: 1, Upserts: []vsync.Record{rec(1), rec(2)}})
	k := cardKey(1)
	take := func(r *vsync.Record) { r.Credentials = append(r.Credentials, vsync.Credential{Key: k}) }
	drop := func(r *vsync.Record) { r.Credentials = []vsync.Credential{{Key: cardKey(100)}} }
	apply(t, c, &vsync.Delta{Prev: 1, Version: 2, Upserts: []vsync.Record{rec(1, drop), rec(2, take)}})
	wantMembers(t, c, map[vsync.CredentialKey]vsync.MemberRef{k: 2, cardKey(100): 1})

	apply(t, c, &vsync.Delta{Prev: 2, Version: 3, Upserts: []vsync.Record{rec(3, func(r *vsync.Record) {
		r.Credentials = []vsync.Credential{{Key: k}}
	})}})
	apply(t, c, &vsync.Delta{Prev: 3, Version: 4, Upserts: []vsync.Record{rec(2)}}) // 2 drops k, which is 3's now
	wantMembers(t, c, map[vsync.CredentialKey]vsync.MemberRef{k: 3, cardKey(2): 2})
	if st := c.Stats(); st.Conflicts != 1 {
		t.Errorf("conflicts %d, want 1", st.Conflicts)
	}
}

func snapshot(t *testing.T, c *Cache, version uint64, recs ...vsync.Record) {
	t.Helper()
	w, err := c.BeginSnapshot(ctx, version)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Add(ctx, recs); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestCacheSnapshot(t *testing.T) {
	dir := t.TempDir()
	c := openCache(t, dir)
	apply(t, c, &vsync.Delta{Prev: 0, Version: 3, Upserts: []vsync.Record{rec(1), rec(2)}})
	snapshot(t, c, 40, rec(2), rec(3))
	want := map[vsync.CredentialKey]vsync.MemberRef{cardKey(1): 0, cardKey(2): 2, cardKey(3): 3}
	wantMembers(t, c, want)
	if v := c.Version(); v != 40 {
		t.Errorf("version %d", v)
	}
	apply(t, c, &vsync.Delta{Prev: 40, Version: 41, Upserts: []vsync.Record{rec(4)}})
	want[cardKey(4)] = 4

	// An aborted snapshot, and one replaced by a newer one, leave no trace.
	w, _ := c.BeginSnapshot(ctx, 50)
	if err := w.Add(ctx, []vsync.Record{rec(9)}); err != nil {
		t.Fatal(err)
	}
	if err := w.Abort(); err != nil {
		t.Fatal(err)
	}
	w, _ = c.BeginSnapshot(ctx, 60)
	_ = w.Add(ctx, []vsync.Record{rec(9)})
	w2, _ := c.BeginSnapshot(ctx, 61)
	if err := w.Commit(ctx); err == nil {
		t.Error("replaced snapshot committed")
	}
	if err := w2.Abort(); err != nil {
		t.Fatal(err)
	}
	// A snapshot that the process never committed (it died) is dropped at open.
	w, _ = c.BeginSnapshot(ctx, 70)
	_ = w.Add(ctx, []vsync.Record{rec(9)})
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	c = openCache(t, dir)
	wantMembers(t, c, want)
	if v := c.Version(); v != 41 {
		t.Errorf("version %d after reopen", v)
	}
	gens := map[uint32]int{}
	c.db.View(func(txn *badgerdb.Txn) error {
		it := txn.NewIterator(badgerdb.IteratorOptions{Prefix: []byte{'r'}})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			gens[uint32(it.Item().Key()[4])]++
		}
		return nil
	})
	if len(gens) != 1 {
		t.Errorf("generations on disk: %v", gens)
	}
}

// TestCacheSnapshotAtomic looks credentials up while a snapshot replaces
// every record: each lookup sees the old state or the new one, never a
// missing record, and never the old one after the new.
func TestCacheSnapshotAtomic(t *testing.T) {
	const n = 3000
	c := openCache(t, t.TempDir())
	var old, next []vsync.Record
	for i := 1; i <= n; i++ {
		old = append(old, rec(i, func(r *vsync.Record) { r.Sites = []string{"old"} }))
		next = append(next, rec(i, func(r *vsync.Record) { r.Sites = []string{"new"} }))
	}
	snapshot(t, c, 1, old...)

	// Two readers look up in a loop from before the swap until they see the
	// new state.
	var wg sync.WaitGroup
	started := make(chan struct{}, 2)
	var lookups atomic.Int64
	for g := range 2 {
		wg.Go(func() {
			var r vsync.Record
			for i := g; ; i++ {
				k := cardKey(1 + i%n)
				ok, err := c.Lookup(k, &r)
				lookups.Add(1)
				if i == g {
					started <- struct{}{}
				}
				switch {
				case err != nil || !ok:
					t.Errorf("lookup %d during the swap: %v %v", 1+i%n, ok, err)
					return
				case r.Sites[0] == "new":
					return
				}
			}
		})
	}
	<-started
	<-started
	snapshot(t, c, 2, next...)
	wg.Wait()
	t.Logf("%d lookups during the snapshot", lookups.Load())
	wantMembers(t, c, map[vsync.CredentialKey]vsync.MemberRef{cardKey(1): 1, cardKey(n): n})
	var r vsync.Record
	if ok, _ := c.Lookup(cardKey(n), &r); !ok || r.Sites[0] != "new" {
		t.Errorf("after the swap: %+v", r)
	}
}

func TestCacheCorruptRecord(t *testing.T) {
	dir := t.TempDir()
	c := openCache(t, dir)
	apply(t, c, &vsync.Delta{Prev: 0, Version: 1, Upserts: []vsync.Record{rec(1), rec(2), rec(3)}})
	gen := c.mem.Load().gen
	c.Close()

	// Damage member 2's record, and add a record filed under another member.
	db, err := badgerdb.Open(cacheOptions(dir, testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	r4, _ := encodeRecord(&vsync.Record{Member: 4, Credentials: []vsync.Credential{{Key: cardKey(4)}}})
	err = db.Update(func(txn *badgerdb.Txn) error {
		if err := txn.Set(recordKey(gen, 2), []byte{0xa2, 0x01, 0x02, 0xff}); err != nil {
			return err
		}
		return txn.Set(recordKey(gen, 5), r4)
	})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()

	c = openCache(t, dir)
	if st := c.Stats(); st.Corrupt != 2 || st.Members != 2 {
		t.Errorf("stats %+v, want 2 corrupt and 2 members", st)
	}
	wantMembers(t, c, map[vsync.CredentialKey]vsync.MemberRef{cardKey(1): 1, cardKey(3): 3})
	// A credential not found may be in an unreadable record: an error, and
	// the decision a fault, not "unknown".
	for _, k := range []vsync.CredentialKey{cardKey(2), cardKey(4), cardKey(99)} {
		if ok, err := c.Lookup(k, new(vsync.Record)); ok || !errors.Is(err, edge.ErrCorrupt) {
			t.Errorf("lookup of a missing credential with unreadable records: %v %v", ok, err)
		}
	}
	// Deltas replace them: then unknown is unknown again.
	apply(t, c, &vsync.Delta{Prev: 1, Version: 2, Upserts: []vsync.Record{rec(2)}})
	wantMembers(t, c, map[vsync.CredentialKey]vsync.MemberRef{cardKey(2): 2})
	if _, err := c.Lookup(cardKey(99), new(vsync.Record)); !errors.Is(err, edge.ErrCorrupt) {
		t.Errorf("one unreadable record left: %v", err)
	}
	apply(t, c, &vsync.Delta{Prev: 2, Version: 3, Deletes: []vsync.MemberRef{5}})
	wantMembers(t, c, map[vsync.CredentialKey]vsync.MemberRef{cardKey(99): 0, cardKey(4): 0})
	if st := c.Stats(); st.Corrupt != 0 {
		t.Errorf("stats %+v after the deltas", st)
	}

	// A damaged in-memory record is an error for its lookup, not a crash.
	s := c.mem.Load()
	r, _ := s.idx.get(cardKey(3))
	s.mu.Lock()
	chunk := s.chunks[r.offset()>>chunkBits]
	copy(chunk[r.offset()&(chunkSize-1):], []byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80})
	s.mu.Unlock()
	if _, err := c.Lookup(cardKey(3), new(vsync.Record)); !errors.Is(err, edge.ErrCorrupt) {
		t.Errorf("lookup of a damaged record: %v", err)
	}
	d, err := edge.DecideCached(c, new(vsync.Record), edge.Input{Credential: cardKey(3)})
	if err == nil || d.Reason != vsync.ReasonReaderFault {
		t.Errorf("decision on a damaged record: %s, %v", d.Reason, err)
	}
}

func TestCacheCompact(t *testing.T) {
	c := openCache(t, t.TempDir())
	var v uint64
	for round := range 20 {
		var recs []vsync.Record
		for i := 1; i <= 200; i++ {
			recs = append(recs, rec(i, func(r *vsync.Record) { r.Notices = []vsync.Notice{{Text: fmt.Sprint("round ", round)}} }))
		}
		apply(t, c, &vsync.Delta{Prev: v, Version: v + 1, Upserts: recs})
		v++
	}
	before := c.Stats()
	if err := c.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	after := c.Stats()
	if after.LiveBytes != before.LiveBytes || after.Members != 200 || after.Version != v {
		t.Errorf("compaction changed the records: %+v → %+v", before, after)
	}
	if s := c.mem.Load(); s.dead != 0 || int64(len(s.chunks)) != 1 {
		t.Errorf("after compaction: %d dead bytes in %d chunks", s.dead, len(s.chunks))
	}
	var r vsync.Record
	if ok, _ := c.Lookup(cardKey(200), &r); !ok || r.Notices[0].Text != "round 19" {
		t.Errorf("after compaction: %+v", r)
	}
}

// TestDiskFull fills a small tmpfs: writes fail with edge.ErrDiskFull, and
// nothing crashes. It needs root to mount.
func TestDiskFull(t *testing.T) {
	dir := t.TempDir()
	if out, err := run("mount", "-t", "tmpfs", "-o", "size=160m", "tmpfs", dir); err != nil {
		t.Skipf("cannot mount a tmpfs (%v: %s)", err, out)
	}
	t.Cleanup(func() { run("umount", dir) })
	c := openCache(t, filepath.Join(dir, "cache"))
	j := openJournal(t, filepath.Join(dir, "journal"), JournalOptions{})
	apply(t, c, &vsync.Delta{Prev: 0, Version: 1, Upserts: []vsync.Record{rec(1)}})
	if _, err := j.Append(ctx, passage(1)); err != nil {
		t.Fatal(err)
	}

	// Leave 40 MiB: less than the cache keeps, more than the journal does.
	fill(t, filepath.Join(dir, "filler1"), dir, 40<<20)
	if _, err := c.ApplyDelta(ctx, &vsync.Delta{Prev: 1, Version: 2, Upserts: []vsync.Record{rec(2)}}); !errors.Is(err, edge.ErrDiskFull) {
		t.Errorf("delta on a full disk: %v", err)
	}
	w, err := c.BeginSnapshot(ctx, 9)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Add(ctx, []vsync.Record{rec(3)}); !errors.Is(err, edge.ErrDiskFull) {
		t.Errorf("snapshot on a full disk: %v", err)
	}
	w.Abort()
	if _, err := j.Append(ctx, passage(2)); err != nil {
		t.Errorf("journal append with 40 MiB left: %v", err)
	}
	fill(t, filepath.Join(dir, "filler2"), dir, 8<<20)
	if _, err := j.Append(ctx, passage(3)); !errors.Is(err, edge.ErrDiskFull) {
		t.Errorf("journal append on a full disk: %v", err)
	}
	wantMembers(t, c, map[vsync.CredentialKey]vsync.MemberRef{cardKey(1): 1})
	if c.Version() != 1 || j.LastSeq() != 2 {
		t.Errorf("version %d, last seq %d", c.Version(), j.LastSeq())
	}
	t.Log(err)
}

// fill writes a file that leaves about left bytes available in dir.
func fill(t *testing.T, name, dir string, left uint64) {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	free := uint64(st.Bavail) * uint64(st.Bsize)
	if free <= left {
		return
	}
	f, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	for n := (free - left) >> 20; n > 0; n-- {
		if _, err := f.Write(buf); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCachePolicyAndSynced follows the site's offline policy through deltas
// (nil leaves it), a snapshot (its policy, or none, replaces it), a
// compaction and a reopen; and the last moment in sync across a reopen.
func TestCachePolicyAndSynced(t *testing.T) {
	dir := t.TempDir()
	c := openCache(t, dir)
	closedBlocks := &vsync.OfflinePolicy{Limits: []vsync.OfflineLimit{{Rule: vsync.RuleBlock, Mode: vsync.FailClosed, After: 60}}}
	openMembership := &vsync.OfflinePolicy{Limits: []vsync.OfflineLimit{{Rule: vsync.RuleMembership, Mode: vsync.FailOpen, After: 3600}}}
	wantPolicy := func(step string, want *vsync.OfflinePolicy) {
		t.Helper()
		if got := c.Policy(); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: policy %+v, want %+v", step, got, want)
		}
	}
	wantPolicy("empty cache", nil)
	if !c.Synced().IsZero() {
		t.Errorf("a fresh cache was in sync at %v", c.Synced())
	}

	apply(t, c, &vsync.Delta{Prev: 0, Version: 1, Upserts: []vsync.Record{rec(1)}, Policy: closedBlocks})
	wantPolicy("delta with a policy", closedBlocks)
	apply(t, c, &vsync.Delta{Prev: 1, Version: 2, Upserts: []vsync.Record{rec(2)}})
	wantPolicy("delta without", closedBlocks)
	// A delta that fails (a gap) changes nothing, the policy included.
	if _, err := c.ApplyDelta(ctx, &vsync.Delta{Prev: 5, Version: 6, Policy: openMembership}); err == nil {
		t.Fatal("gap applied")
	}
	wantPolicy("gap", closedBlocks)
	if err := c.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	wantPolicy("compaction", closedBlocks)

	at := time.UnixMilli(time.Now().UnixMilli())
	if err := c.SetSynced(ctx, at); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	c = openCache(t, dir)
	wantPolicy("reopen", closedBlocks)
	if got := c.Synced(); !got.Equal(at) {
		t.Errorf("in sync at %v after reopen, want %v", got, at)
	}

	// A snapshot's policy replaces the cache's when it commits, not before.
	w, err := c.BeginSnapshot(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	w.SetPolicy(openMembership)
	if err := w.Add(ctx, []vsync.Record{rec(3)}); err != nil {
		t.Fatal(err)
	}
	wantPolicy("snapshot loading", closedBlocks)
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	wantPolicy("snapshot", openMembership)
	snapshot(t, c, 11, rec(4)) // no policy: the site has none
	wantPolicy("snapshot without a policy", nil)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	c = openCache(t, dir)
	wantPolicy("reopen after a snapshot without a policy", nil)
}
