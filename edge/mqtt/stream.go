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
		l.st.wrongTopic.Add(1)
		l.log.Warn("mqtt: message on a topic not ours", "topic", m.topic)
		return 0
	}
	topic, err := vsync.ParseTopic(m.topic)
	if err != nil { // our own names always parse
		l.st.wrongTopic.Add(1)
		l.log.Error("mqtt: topic", "err", err)
		return 0
	}
	msg, err := vsync.Unmarshal(m.payload)
	if err != nil {
		l.st.malformed.Add(1)
		l.log.Warn("mqtt: rejected a malformed message", "topic", m.topic, "bytes", len(m.payload), "err", err)
		return 0
	}
	h := headerOf(msg)
	if h.Tenant != l.cfg.Tenant || (h.Site != "" && h.Site != l.cfg.Site) || (h.Edge != "" && h.Edge != l.cfg.Edge) {
		l.st.foreign.Add(1)
		l.log.Warn("mqtt: rejected a message of another tenant, site or edge", "topic", m.topic, "kind", msg.Kind(),
			"msg_tenant", h.Tenant, "msg_site", h.Site, "msg_edge", h.Edge)
		return msg.Kind()
	}
	if err := topic.Check(msg); err != nil {
		l.st.wrongTopic.Add(1)
		l.log.Warn("mqtt: rejected a message", "topic", m.topic, "kind", msg.Kind(), "err", err)
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
		select {
		case l.commands <- msg:
			l.st.commands.Add(1)
		default:
			l.st.commandsDropped.Add(1)
			l.log.Warn("mqtt: command dropped: the daemon is not taking commands", "id", msg.ID, "op", msg.Op)
		}
	}
	return msg.Kind()
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
}

// sendResync sends the full CatchUp that Resync asked for, if connected.
func (d *downlink) sendResync(l *loop) {
	if !d.resync || !l.client.IsConnectionOpen() {
		return
	}
	if l.publish(l.topics.catchUp, &vsync.CatchUp{From: l.cache.Version(), Full: true}) {
		l.st.catchUps.Add(1)
		d.resync = false
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
}

func (d *downlink) catchUp(l *loop, from uint64) {
	if l.publish(l.topics.catchUp, &vsync.CatchUp{From: from}) {
		l.st.catchUps.Add(1)
		d.gap, d.gapFrom = true, from
	}
}

// snapshot loads the chunks of a snapshot in order: chunk 0 begins it, each
// next chunk adds to it, the last commits it. A repeated chunk is ignored;
// a chunk of an older snapshot is ignored; a newer snapshot drops the one
// being loaded; a chunk out of order or that does not match the others
// aborts the load and asks the cloud again.
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
	if err := s.w.Commit(l.ctx); err != nil {
		l.st.cacheErrs.Add(1)
		l.log.Error("mqtt: commit snapshot", "id", m.ID, "version", m.Version, "err", err)
		_ = s.w.Abort()
		d.catchUp(l, l.cache.Version())
		return
	}
	l.st.snapLoaded.Add(1)
	d.gap, d.loaded = false, s.id
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
		l.log.Warn("mqtt: ack beyond the journal", "seq", m.Seq, "last_seq", last)
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
