package mqtt

import (
	"context"
	"testing"
	"time"

	"varco.dev/edge"
	vsync "varco.dev/protocol/sync"
)

// TestRejectsUntrusted sends the agent, through the real broker, what a
// broker in the wrong hands could: unsigned, forged, misaddressed and
// replayed messages. Each is counted under its reason, and none changes the
// cache, the journal or reaches the daemon as a command.
func TestRejectsUntrusted(t *testing.T) {
	t.Parallel()
	soon := func() vsync.Timestamp { return vsync.TimestampOf(time.Now().Add(time.Minute)) }
	open := func(b *bundle, id uint64) *vsync.Command {
		return &vsync.Command{Header: vsync.Header{Edge: b.cfg.Edge}, ID: id, Op: vsync.CmdOpen, Reader: "r1", Expires: soon()}
	}
	tests := []struct {
		name string
		// before brings the agent to the state of the test (the cache at
		// version 1 with member 1 already); it may take commands.
		before func(t *testing.T, b *bundle, a *Agent)
		// send sends the message that is rejected.
		send func(t *testing.T, b *bundle)
		want func(s Stats) uint64
	}{
		{name: "unsigned delta", send: func(t *testing.T, b *bundle) {
			b.cloud.sendAs(b.cloud.stateTopic(), delta(1, 2, b.cfg.Site, rec(2)), "", nil)
		}, want: func(s Stats) uint64 { return s.Unsigned }},
		{name: "delta signed by an unknown key", send: func(t *testing.T, b *bundle) {
			b.cloud.sendAs(b.cloud.stateTopic(), delta(1, 2, b.cfg.Site, rec(2)), "cloud-2", otherKey)
		}, want: func(s Stats) uint64 { return s.UnknownKey }},
		{name: "delta signed by another key under the cloud's key id", send: func(t *testing.T, b *bundle) {
			b.cloud.sendAs(b.cloud.stateTopic(), delta(1, 2, b.cfg.Site, rec(2)), cloudKeyID, otherKey)
		}, want: func(s Stats) uint64 { return s.Forged }},
		{name: "delta altered after signing", send: func(t *testing.T, b *bundle) {
			d, other := delta(1, 2, b.cfg.Site, rec(2)), delta(1, 2, b.cfg.Site, rec(3))
			d.Tenant, other.Tenant = b.cfg.Tenant, b.cfg.Tenant
			env, err := vsync.Seal(d)
			if err != nil {
				t.Fatal(err)
			}
			if err := env.Sign(cloudKeyID, cloudKey); err != nil {
				t.Fatal(err)
			}
			// Swap in another delta's payload: the signature no longer covers it.
			otherEnv, err := vsync.Seal(other)
			if err != nil {
				t.Fatal(err)
			}
			env.Payload = otherEnv.Payload
			raw, err := env.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			b.cloud.sendRaw(b.cloud.stateTopic(), raw)
		}, want: func(s Stats) uint64 { return s.Forged }},
		{name: "signed delta of another site", send: func(t *testing.T, b *bundle) {
			b.cloud.send(b.cloud.stateTopic(), delta(1, 2, "other-site", rec(2)))
		}, want: func(s Stats) uint64 { return s.Foreign }},
		{name: "signed delta of another tenant", send: func(t *testing.T, b *bundle) {
			d := delta(1, 2, b.cfg.Site, rec(2))
			d.Tenant = "other-tenant"
			b.cloud.send(b.cloud.stateTopic(), d)
		}, want: func(s Stats) uint64 { return s.Foreign }},
		{name: "signed command for another edge", send: func(t *testing.T, b *bundle) {
			c := open(b, 5)
			c.Edge = "other-edge"
			b.cloud.send(b.cloud.edgeTopic(vsync.CommandTopic), c)
		}, want: func(s Stats) uint64 { return s.Foreign }},
		{name: "snapshot not asked for", send: func(t *testing.T, b *bundle) {
			b.cloud.send(b.cloud.edgeTopic(vsync.SyncTopic), &vsync.Snapshot{Header: vsync.Header{Site: b.cfg.Site, Edge: b.cfg.Edge},
				ID: 9, Version: 50, Chunks: 1, Records: []vsync.Record{rec(2)}})
		}, want: func(s Stats) uint64 { return s.Replayed }},
		{name: "snapshot older than the cache", before: func(t *testing.T, b *bundle, a *Agent) {
			a.Resync() // asks from version 1
			b.cloud.until(isKind(vsync.KindCatchUp))
		}, send: func(t *testing.T, b *bundle) {
			// An old snapshot (version 0 had no one), replayed in answer.
			b.cloud.send(b.cloud.edgeTopic(vsync.SyncTopic), &vsync.Snapshot{Header: vsync.Header{Site: b.cfg.Site, Edge: b.cfg.Edge},
				ID: 3, Version: 0, Chunks: 1})
		}, want: func(s Stats) uint64 { return s.Replayed }},
		{name: "forged command", send: func(t *testing.T, b *bundle) {
			b.cloud.sendAs(b.cloud.edgeTopic(vsync.CommandTopic), open(b, 5), cloudKeyID, otherKey)
		}, want: func(s Stats) uint64 { return s.Forged }},
		{name: "command carried out already", before: func(t *testing.T, b *bundle, a *Agent) {
			b.cloud.send(b.cloud.edgeTopic(vsync.CommandTopic), open(b, 5))
			select {
			case <-a.Commands():
			case <-time.After(wait):
				t.Fatal("the first command did not come")
			}
			b.waitHandled(t, 1)
		}, send: func(t *testing.T, b *bundle) {
			b.cloud.send(b.cloud.edgeTopic(vsync.CommandTopic), open(b, 5))
		}, want: func(s Stats) uint64 { return s.Replayed }},
		{name: "expired command", send: func(t *testing.T, b *bundle) {
			c := open(b, 6)
			c.Time, c.Expires = vsync.TimestampOf(time.Now().Add(-2*time.Minute)), vsync.TimestampOf(time.Now().Add(-time.Minute))
			b.cloud.send(b.cloud.edgeTopic(vsync.CommandTopic), c)
		}, want: func(s Stats) uint64 { return s.Replayed }},
		{name: "command made before the agent started", send: func(t *testing.T, b *bundle) {
			c := open(b, 7)
			c.Time = vsync.TimestampOf(time.Now().Add(-time.Hour)) // and valid for a day: a replay after a restart
			c.Expires = vsync.TimestampOf(time.Now().Add(23 * time.Hour))
			b.cloud.send(b.cloud.edgeTopic(vsync.CommandTopic), c)
		}, want: func(s Stats) uint64 { return s.Replayed }},
		{name: "command from the future", send: func(t *testing.T, b *bundle) {
			c := open(b, 8)
			c.Time, c.Expires = vsync.TimestampOf(time.Now().Add(time.Hour)), vsync.TimestampOf(time.Now().Add(2*time.Hour))
			b.cloud.send(b.cloud.edgeTopic(vsync.CommandTopic), c)
		}, want: func(s Stats) uint64 { return s.Untimely }},
		{name: "ack beyond the journal", send: func(t *testing.T, b *bundle) {
			b.cloud.send(b.cloud.edgeTopic(vsync.AckTopic), &vsync.Ack{Header: vsync.Header{Edge: b.cfg.Edge}, Seq: 99})
		}, want: func(s Stats) uint64 { return s.AckAhead }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			var rejected []Reject
			b.cfg.Rejected = func(r Reject) { rejected = append(rejected, r) } // the loop's goroutine; read after waitHandled
			if _, err := b.journal.Append(context.Background(), passage(1)); err != nil {
				t.Fatal(err)
			}
			a, _ := b.start(t)
			b.cloud.until(isKind(vsync.KindStatus))
			b.cloud.send(b.cloud.stateTopic(), delta(0, 1, b.cfg.Site, rec(1)))
			b.waitHandled(t, 1)
			if tt.before != nil {
				tt.before(t, b, a)
			}
			before := a.Stats()

			tt.send(t, b)
			b.waitHandled(t, 1)
			after := a.Stats()
			if got := tt.want(after) - tt.want(before); got != 1 {
				t.Errorf("counter moved by %d, want 1; stats %+v", got, after)
			}
			if n := rejectedTotal(after) - rejectedTotal(before); n != 1 {
				t.Errorf("%d rejections, want 1; stats %+v", n, after)
			}
			if len(rejected) == 0 {
				t.Error("Config.Rejected was not called")
			}
			if v := b.cache.Version(); v != 1 || b.found(t, 2) || b.found(t, 3) || !b.found(t, 1) {
				t.Errorf("the cache changed: version %d", v)
			}
			if n := b.journal.Backlog(); n != 1 {
				t.Errorf("journal backlog %d, want 1", n)
			}
			select {
			case c := <-a.Commands():
				t.Errorf("command %+v reached the daemon", c)
			default:
			}
		})
	}
}

func rejectedTotal(s Stats) uint64 {
	return s.Malformed + s.WrongTopic + s.Foreign + s.Unsigned + s.UnknownKey + s.Forged + s.Replayed + s.Untimely + s.AckAhead
}

// TestSnapshotNeverRollsBack replays, after a snapshot was loaded and deltas
// moved the cache on, the same snapshot and an older one in answer to a
// resync: neither takes the cache back.
func TestSnapshotNeverRollsBack(t *testing.T) {
	t.Parallel()
	b := setup(t)
	a, _ := b.start(t)
	b.cloud.until(isKind(vsync.KindStatus))
	sync := b.cloud.edgeTopic(vsync.SyncTopic)
	snap := func(id, version uint64, records ...vsync.Record) *vsync.Snapshot {
		return &vsync.Snapshot{Header: vsync.Header{Site: b.cfg.Site, Edge: b.cfg.Edge}, ID: id, Version: version, Chunks: 1, Records: records}
	}
	// A fresh edge's birth asks from 0: the cloud answers with a snapshot.
	b.cloud.send(sync, snap(1, 10, rec(1)))
	b.waitHandled(t, 1)
	// Member 1 is blocked since: his record goes at version 11.
	d := delta(10, 11, b.cfg.Site)
	d.Deletes = []vsync.MemberRef{1}
	b.cloud.send(b.cloud.stateTopic(), d)
	b.waitHandled(t, 1)
	if v := b.cache.Version(); v != 11 || b.found(t, 1) {
		t.Fatalf("version %d", v)
	}

	b.cloud.send(sync, snap(1, 10, rec(1))) // the same snapshot again: ignored
	b.cloud.send(sync, snap(2, 10, rec(1))) // an old snapshot under a new id: rejected
	a.Resync()
	b.cloud.until(isKind(vsync.KindCatchUp))
	b.cloud.send(sync, snap(3, 10, rec(1))) // even when one is asked for
	b.waitHandled(t, 3)
	if v := b.cache.Version(); v != 11 || b.found(t, 1) {
		t.Fatalf("rolled back to version %d", v)
	}
	if s := a.Stats(); s.Replayed != 2 || s.SnapshotsLoaded != 1 {
		t.Fatalf("stats %+v", s)
	}
	// The snapshot asked for loads.
	b.cloud.send(sync, snap(4, 12, rec(2)))
	b.waitHandled(t, 1)
	if v := b.cache.Version(); v != 12 || !b.found(t, 2) {
		t.Fatalf("version %d", v)
	}
}

// TestStaleness follows the edge in and out of sync: stale since ever
// before its first connect, fresh once connected, ageing from a gap, and
// still ageing, from the moment the cache kept, after a restart.
func TestStaleness(t *testing.T) {
	t.Parallel()
	b := setup(t)
	fresh, err := New(b.cfg, b.cache, b.journal)
	if err != nil {
		t.Fatal(err)
	}
	if s := fresh.Staleness(time.Now()); s != edge.Forever {
		t.Fatalf("a fresh edge before its first connect: staleness %v, want forever", s)
	}
	a, stop := b.start(t)
	b.cloud.until(isKind(vsync.KindStatus))
	if s := a.Staleness(time.Now()); s != 0 {
		t.Fatalf("connected: staleness %v", s)
	}
	b.cloud.send(b.cloud.stateTopic(), delta(0, 1, b.cfg.Site, rec(1)))
	b.cloud.send(b.cloud.stateTopic(), delta(5, 6, b.cfg.Site, rec(6))) // a gap
	b.waitHandled(t, 2)
	left := b.cache.Synced()
	if left.IsZero() {
		t.Fatal("the cache has no moment in sync")
	}
	later := left.Add(time.Hour)
	if s := a.Staleness(later); s != time.Hour {
		t.Fatalf("an hour after the gap: staleness %v", s)
	}

	// A restart does not make the cache fresh.
	stop()
	b.cloud.until(isStatus(false))
	again, err := New(b.cfg, b.cache, b.journal)
	if err != nil {
		t.Fatal(err)
	}
	if s := again.Staleness(later); s < time.Hour-time.Second || s > time.Hour {
		t.Fatalf("after a restart: staleness %v, want about an hour", s)
	}

	// The catch-up brings it back in sync.
	a, _ = b.start(t)
	b.cloud.until(isStatus(true))
	catchUp := delta(1, 6, b.cfg.Site, rec(6))
	catchUp.Edge = b.cfg.Edge
	b.cloud.send(b.cloud.edgeTopic(vsync.SyncTopic), catchUp)
	b.waitHandled(t, 1)
	if s := a.Staleness(later); s != 0 || b.cache.Version() != 6 {
		t.Fatalf("after the catch-up: staleness %v, version %d", s, b.cache.Version())
	}
}

func isStatus(online bool) func(received) bool {
	return func(r received) bool {
		st, ok := r.msg.(*vsync.Status)
		return ok && st.Online == online
	}
}
