package mqtt

import (
	"errors"
	"time"

	"varco.dev/edge"
	vsync "varco.dev/protocol/sync"
)

// receive checks and handles one received message.
func (l *loop) receive(m inbound) {
	kind := l.handle(m)
	if l.afterMessage != nil {
		l.afterMessage(kind)
	}
}

func (l *loop) handle(m inbound) vsync.Kind {
	switch m.topic {
	case l.topics.state, l.topics.sync, l.topics.ack, l.topics.cmd:
	default:
		l.reject(RejectWrongTopic, "a topic not ours", "topic", m.topic)
		return 0
	}
	topic, err := vsync.ParseTopic(m.topic)
	if err != nil { // our own names always parse
		l.reject(RejectWrongTopic, "a topic that does not parse", "topic", m.topic, "err", err)
		return 0
	}
	env, err := vsync.UnmarshalEnvelope(m.payload)
	if err != nil {
		l.reject(RejectMalformed, "malformed", "topic", m.topic, "bytes", len(m.payload), "err", err)
		return 0
	}
	// The signature first: nothing of a message the cloud did not sign is
	// decoded further, or believed.
	if r, err := l.verify(env); err != nil {
		l.reject(r, "not signed by the cloud", "topic", m.topic, "kind", env.Kind, "key_id", env.KeyID, "err", err)
		return env.Kind
	}
	msg, err := env.Open()
	if err != nil {
		l.reject(RejectMalformed, "malformed", "topic", m.topic, "kind", env.Kind, "bytes", len(m.payload), "err", err)
		return env.Kind
	}
	h := headerOf(msg)
	if h.Tenant != l.cfg.Tenant || (h.Site != "" && h.Site != l.cfg.Site) || (h.Edge != "" && h.Edge != l.cfg.Edge) {
		l.reject(RejectForeign, "of another tenant, site or edge", "topic", m.topic, "kind", msg.Kind(),
			"msg_tenant", h.Tenant, "msg_site", h.Site, "msg_edge", h.Edge)
		return msg.Kind()
	}
	if err := topic.Check(msg); err != nil {
		l.reject(RejectWrongTopic, "not of its topic", "topic", m.topic, "kind", msg.Kind(), "err", err)
		return msg.Kind()
	}
	switch msg := msg.(type) {
	case *vsync.Delta:
		l.down.delta(l, msg)
	case *vsync.Snapshot:
		l.down.snapshot(l, msg)
	case *vsync.Ack:
		l.up.ack(l, msg)
	case *vsync.Command:
		l.command(msg)
	}
	return msg.Kind()
}

// command hands a new and timely command to the daemon.
func (l *loop) command(c *vsync.Command) {
	if r, why := l.admit(c); r != 0 {
		l.reject(r, why, "id", c.ID, "op", c.Op, "time", c.Time, "expires", c.Expires)
		return
	}
	select {
	case l.commands <- c:
		l.carried[c.ID] = c.Expires
		l.st.commands.Add(1)
	default:
		l.st.commandsDropped.Add(1)
		l.log.Warn("mqtt: command dropped: the daemon is not taking commands", "id", c.ID, "op", c.Op)
	}
}

// downlink is the state of the site's state stream: deltas and snapshots
// into the cache.
type downlink struct {
	// gap is set once a CatchUp was sent for the cache version gapFrom: more
	// deltas beyond the gap do not send another until the version moves or
	// the agent reconnects.
	gap     bool
	gapFrom uint64
	snap    *snapshotLoad // the snapshot being loaded, if any
	loaded  uint64        // the id of the last snapshot committed
	resync  bool          // a full resync is asked and not yet sent
	asked   asked
}

// asked is what the agent last asked the cloud for, with a Birth or a
// CatchUp: the only times it takes a snapshot. An old snapshot that a broker
// replays must never take the cache back to an earlier state (a member
// blocked since would pass again), so a snapshot begins only while one was
// asked for, at a version no older than the one asked from and than the
// cache's.
type asked struct {
	on   bool   // a snapshot may come
	from uint64 // the cache version asked from
	full bool   // a full resync: only a snapshot answers it, deltas do not
}

// ask records a request sent from version from.
func (d *downlink) ask(from uint64, full bool) {
	d.asked = asked{on: true, from: from, full: full || (d.asked.on && d.asked.full)}
}

// unasked says why snapshot m may not begin, or "" if it may.
func (d *downlink) unasked(l *loop, m *vsync.Snapshot) string {
	switch {
	case !d.asked.on:
		return "a snapshot not asked for"
	case m.Version < d.asked.from:
		return "a snapshot older than asked for"
	case m.Version < l.cache.Version():
		return "a snapshot older than the cache"
	}
	return ""
}

// sendResync sends the full CatchUp that Resync asked for, if connected.
func (d *downlink) sendResync(l *loop) {
	if !d.resync || !l.client.IsConnectionOpen() {
		return
	}
	from := l.cache.Version()
	if l.publish(l.topics.catchUp, &vsync.CatchUp{From: from, Full: true}) {
		l.st.catchUps.Add(1)
		d.resync = false
		d.ask(from, true)
	}
}

// snapshotLoad is a snapshot being written beside the live cache.
type snapshotLoad struct {
	id, version  uint64
	next, chunks uint32
	w            edge.SnapshotWriter
}

func (d *downlink) delta(l *loop, m *vsync.Delta) {
	step, err := l.cache.ApplyDelta(l.ctx, m)
	var gap *edge.GapError
	switch {
	case errors.As(err, &gap):
		l.st.gaps.Add(1)
		if d.gap && d.gapFrom == gap.Have {
			return
		}
		l.log.Info("mqtt: gap, catching up", "have", gap.Have, "prev", gap.Prev, "version", gap.Version)
		d.catchUp(l, gap.Have)
	case err != nil:
		l.st.cacheErrs.Add(1)
		l.log.Error("mqtt: apply delta", "prev", m.Prev, "version", m.Version, "err", err)
	case step == vsync.StepApply:
		l.st.applied.Add(1)
		d.gap = false
		l.setInSync(true)
		if !d.asked.full {
			d.asked.on = false // the cloud answered with deltas, or had nothing older to send
		}
		l.applied()
	default:
		l.st.skipped.Add(1)
	}
}

// applied tells Config.Applied of the cache's new version.
func (l *loop) applied() {
	if l.cfg.Applied != nil {
		l.cfg.Applied(l.cache.Version())
	}
	l.reportVersion(false)
}

// statusEvery bounds how often the retained status reports a new cache
// version: a catch-up applies many deltas in a row.
const statusEvery = time.Second

// reportVersion republishes the online status with the cache version, so
// that the cloud shows each edge's version and lag; at most once per
// statusEvery, the last change at the next tick (flush).
func (l *loop) reportVersion(flush bool) {
	now := l.cfg.Now()
	if flush && !l.statusDue {
		return
	}
	if !flush && now.Sub(l.statusAt) < statusEvery {
		l.statusDue = true
		return
	}
	l.statusDue, l.statusAt = false, now
	l.publish(l.topics.status, &vsync.Status{Online: true, Boot: l.journal.Boot(), CacheVersion: l.cache.Version()})
}

// catchUp asks for the state since from after a gap: the edge is out of
// sync until it has it.
func (d *downlink) catchUp(l *loop, from uint64) {
	l.setInSync(false)
	if l.publish(l.topics.catchUp, &vsync.CatchUp{From: from}) {
		l.st.catchUps.Add(1)
		d.gap, d.gapFrom = true, from
		d.ask(from, false)
	}
}

// snapshot loads the chunks of a snapshot in order: chunk 0 begins it, each
// next chunk adds to it, the last commits it. A repeated chunk is ignored;
// a chunk of an older snapshot is ignored; a newer snapshot drops the one
// being loaded; a chunk out of order or that does not match the others
// aborts the load and asks the cloud again. A snapshot that was not asked
// for, or is older than asked (see asked), is rejected as a replay; so is
// the commit of one that deltas overtook while it loaded.
func (d *downlink) snapshot(l *loop, m *vsync.Snapshot) {
	s := d.snap
	switch {
	case m.ID <= d.loaded:
		return // a late chunk of a snapshot already loaded
	case s != nil && m.ID < s.id:
		return // an older snapshot's late chunk
	case s != nil && m.ID == s.id && m.Chunk < s.next && m.Version == s.version && m.Chunks == s.chunks:
		return // a duplicate
	case s != nil && m.ID == s.id && (m.Chunk != s.next || m.Version != s.version || m.Chunks != s.chunks):
		d.abort(l, "chunk out of order or not matching", m)
		return
	case s == nil || m.ID > s.id:
		if why := d.unasked(l, m); why != "" {
			l.reject(RejectReplayed, why, "id", m.ID, "chunk", m.Chunk, "version", m.Version,
				"asked_from", d.asked.from, "cache_version", l.cache.Version())
			return
		}
		if s != nil {
			d.abort(l, "a newer snapshot began", m)
		}
		if m.Chunk != 0 {
			d.abort(l, "a snapshot that does not begin with chunk 0", m)
			return
		}
		w, err := l.cache.BeginSnapshot(l.ctx, m.Version)
		if err != nil {
			l.st.cacheErrs.Add(1)
			l.log.Error("mqtt: begin snapshot", "id", m.ID, "version", m.Version, "err", err)
			return
		}
		w.SetPolicy(m.Policy) // chunk 0's: the site's policy at the snapshot's version
		s = &snapshotLoad{id: m.ID, version: m.Version, chunks: m.Chunks, w: w}
		d.snap = s
	}
	if err := s.w.Add(l.ctx, m.Records); err != nil {
		l.st.cacheErrs.Add(1)
		l.log.Error("mqtt: snapshot chunk", "id", m.ID, "chunk", m.Chunk, "err", err)
		d.abort(l, "write failed", m)
		return
	}
	s.next++
	if s.next < s.chunks {
		return
	}
	d.snap = nil
	if v := l.cache.Version(); s.version < v {
		_ = s.w.Abort()
		l.reject(RejectReplayed, "a snapshot that deltas overtook while it loaded", "id", s.id, "version", s.version, "cache_version", v)
		return
	}
	if err := s.w.Commit(l.ctx); err != nil {
		l.st.cacheErrs.Add(1)
		l.log.Error("mqtt: commit snapshot", "id", m.ID, "version", m.Version, "err", err)
		_ = s.w.Abort()
		d.catchUp(l, l.cache.Version())
		return
	}
	l.st.snapLoaded.Add(1)
	d.gap, d.loaded, d.asked = false, s.id, asked{}
	l.setInSync(true)
	l.applied()
	l.log.Info("mqtt: snapshot loaded", "id", s.id, "version", s.version, "chunks", s.chunks)
}

// abort drops the snapshot being loaded, if any, and asks for the state
// again.
func (d *downlink) abort(l *loop, why string, m *vsync.Snapshot) {
	l.st.snapAborts.Add(1)
	l.log.Warn("mqtt: snapshot aborted", "why", why, "id", m.ID, "chunk", m.Chunk, "chunks", m.Chunks, "version", m.Version)
	if d.snap != nil {
		if err := d.snap.w.Abort(); err != nil {
			l.log.Error("mqtt: abort snapshot", "err", err)
		}
		d.snap = nil
	}
	d.catchUp(l, l.cache.Version())
}

// uplink is the state of the journal stream: what was sent and what the
// cloud acknowledged.
type uplink struct {
	acked    uint64    // the cloud's high-water mark, deleted from the journal
	sent     uint64    // the last sequence sent on this connection
	inflight []uint64  // the last sequence of each batch sent and not acknowledged
	progress time.Time // when the window last moved
}

// resend makes the next pump send from the last acknowledged event.
func (u *uplink) resend() {
	u.sent = u.acked
	u.inflight = u.inflight[:0]
	u.progress = time.Time{}
}

// stalled reports whether a window's worth of batches waited too long for
// an Ack.
func (u *uplink) stalled(now time.Time, timeout time.Duration) bool {
	return len(u.inflight) > 0 && timeout > 0 && !u.progress.IsZero() && now.Sub(u.progress) > timeout
}

// pump sends batches of journaled events until the window is full or the
// journal has none left. A batch holds the events of one boot.
func (u *uplink) pump(l *loop) {
	for len(u.inflight) < l.cfg.Window && l.client.IsConnectionOpen() {
		entries, err := l.journal.ReadAfter(l.ctx, u.sent, l.cfg.Batch)
		if err != nil {
			l.st.journalErrs.Add(1)
			l.log.Error("mqtt: read journal", "after", u.sent, "err", err)
			return
		}
		if len(entries) == 0 {
			return
		}
		boot := entries[0].Boot
		events := make([]vsync.Event, 0, len(entries))
		for _, e := range entries {
			if e.Boot != boot {
				break
			}
			events = append(events, e.Event)
		}
		if !l.publish(l.topics.events, &vsync.Events{Boot: boot, Events: events}) {
			return
		}
		if len(u.inflight) == 0 {
			u.progress = l.cfg.Now()
		}
		u.sent = events[len(events)-1].Seq
		u.inflight = append(u.inflight, u.sent)
		l.st.batchesSent.Add(1)
		l.st.eventsSent.Add(uint64(len(events)))
	}
}

// ack deletes what the cloud acknowledged and sends more.
func (u *uplink) ack(l *loop, m *vsync.Ack) {
	if m.Seq <= u.acked {
		return // a duplicate or an old ack
	}
	if last := l.journal.LastSeq(); m.Seq > last {
		// An ack of a journal this edge no longer has (a new disk), or a
		// cloud bug: deleting by it could drop events never sent.
		l.reject(RejectAckAhead, "ack beyond the journal", "seq", m.Seq, "last_seq", last)
		return
	}
	if err := l.journal.DeleteThrough(l.ctx, m.Seq); err != nil {
		l.st.journalErrs.Add(1)
		l.log.Error("mqtt: delete acknowledged events", "seq", m.Seq, "err", err)
		return
	}
	l.st.acks.Add(1)
	u.acked = m.Seq
	u.sent = max(u.sent, m.Seq)
	i := 0
	for i < len(u.inflight) && u.inflight[i] <= m.Seq {
		i++
	}
	u.inflight = append(u.inflight[:0], u.inflight[i:]...)
	u.progress = l.cfg.Now()
	u.pump(l)
}
