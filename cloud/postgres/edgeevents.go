package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"varco.dev/cloud"
	"varco.dev/cloud/mqtt"
	vsync "varco.dev/protocol/sync"
)

var _ mqtt.EdgeStore = (*EventStore)(nil)

// EventStore implements mqtt.EdgeStore: what edges send, stored. It acts for
// the edges, not for an operator, and audits nothing.
type EventStore struct{ db *DB }

// NewEventStore returns an EventStore on db.
func NewEventStore(db *DB) *EventStore { return &EventStore{db: db} }

// edgeRef is the row of the edge a message came from, locked.
type edgeRef struct {
	tenantID, id, siteID int64
	epoch                int
	acked                uint64
}

// lockEdge finds and locks the edge of h in tx: ENOTFOUND if there is none
// (or it was deleted), EINVALID if h names another site than the edge's.
func lockEdge(ctx context.Context, tx pgx.Tx, h vsync.Header) (edgeRef, error) {
	var (
		e     edgeRef
		acked int64
	)
	err := tx.QueryRow(ctx, `SELECT e.tenant_id, e.id, e.site_id, e.journal_epoch, e.acked_seq
		FROM edges e JOIN tenants t ON t.id = e.tenant_id
		WHERE t.slug = $1 AND e.code = $2 AND e.deleted_at IS NULL FOR UPDATE OF e`, h.Tenant, h.Edge).
		Scan(&e.tenantID, &e.id, &e.siteID, &e.epoch, &acked)
	if err != nil {
		return e, notFound(err, "Edge "+mqtt.EdgeUsername(h.Tenant, h.Edge))
	}
	e.acked = uint64(acked)
	if site := strconv.FormatInt(e.siteID, 10); h.Site != site {
		return e, cloud.Invalid("site", "Edge %s is at site %s, not %s.", mqtt.EdgeUsername(h.Tenant, h.Edge), site, h.Site)
	}
	return e, nil
}

// inEdgeTx runs fn in a transaction, again when PostgreSQL broke a deadlock
// by failing it: two edges' batches can update the same members' last visit
// in different orders.
func (s *EventStore) inEdgeTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	for attempt := 1; ; attempt++ {
		err := pgx.BeginFunc(ctx, s.db.Pool, fn)
		var pgErr *pgconn.PgError
		if attempt < 3 && errors.As(err, &pgErr) && (pgErr.Code == "40P01" || pgErr.Code == "40001") {
			continue
		}
		return err
	}
}

// eventColumns are the events of a batch as column arrays, for one
// multi-row INSERT ... SELECT FROM unnest(...).
type eventColumns struct {
	seq, member, action, command []*int64
	at                           []time.Time
	kind, decision, reason       []int16
	reader                       []string
	credential                   [][]byte
}

// columns converts the events with a sequence after acked. It refuses (with
// EINVALID) numbers beyond PostgreSQL's bigint, which no honest edge sends.
func columns(events []vsync.Event, acked uint64) (*eventColumns, error) {
	c := &eventColumns{}
	n := len(events)
	c.seq, c.member, c.action, c.command = make([]*int64, 0, n), make([]*int64, 0, n), make([]*int64, 0, n), make([]*int64, 0, n)
	c.at, c.kind, c.decision, c.reason = make([]time.Time, 0, n), make([]int16, 0, n), make([]int16, 0, n), make([]int16, 0, n)
	c.reader, c.credential = make([]string, 0, n), make([][]byte, 0, n)
	ref := func(v uint64, what string, seq uint64) (*int64, error) {
		if v == 0 {
			return nil, nil
		}
		if v > math.MaxInt64 {
			return nil, cloud.Invalid(what, "Event %d: %s %d out of range.", seq, what, v)
		}
		i := int64(v)
		return &i, nil
	}
	for i := range events {
		ev := &events[i]
		if ev.Seq <= acked {
			continue
		}
		seq, err := ref(ev.Seq, "seq", ev.Seq)
		if err != nil {
			return nil, err
		}
		member, err := ref(uint64(ev.Member), "member", ev.Seq)
		if err != nil {
			return nil, err
		}
		action, err := ref(ev.Action, "action", ev.Seq)
		if err != nil {
			return nil, err
		}
		command, err := ref(ev.Command, "command", ev.Seq)
		if err != nil {
			return nil, err
		}
		var cred []byte
		if !ev.Credential.IsZero() {
			cred = ev.Credential[:]
		}
		c.seq, c.member, c.action, c.command = append(c.seq, seq), append(c.member, member), append(c.action, action), append(c.command, command)
		c.at = append(c.at, ev.Time.Time())
		c.kind, c.decision, c.reason = append(c.kind, int16(ev.Kind)), append(c.decision, int16(ev.Decision)), append(c.reason, int16(ev.Reason))
		c.reader, c.credential = append(c.reader, ev.Reader), append(c.credential, cred)
	}
	return c, nil
}

// storeEventsSQL inserts a batch's events that are not stored yet and, from
// the ones it inserted, in the same statement: moves the last visit of the
// members granted a passage, and marks done the commands of this edge that
// an EventRemoteOpen (open) or EventCommandDone (show, resync) reports
// carried out. It returns how many events it inserted.
const storeEventsSQL = `
WITH ins AS (
	INSERT INTO edge_events (tenant_id, edge_id, journal_epoch, seq, boot_id, at, received_at, kind, reader, credential,
		member_id, decision, reason, action_id, command_id)
	SELECT $1, $2, $3, u.seq, $4, u.at, $5, u.kind, u.reader, u.credential, u.member_id, u.decision, u.reason, u.action_id, u.command_id
	FROM unnest($6::bigint[], $7::timestamptz[], $8::smallint[], $9::text[], $10::bytea[], $11::bigint[], $12::smallint[],
		$13::smallint[], $14::bigint[], $15::bigint[])
		AS u (seq, at, kind, reader, credential, member_id, decision, reason, action_id, command_id)
	ON CONFLICT DO NOTHING
	RETURNING kind, at, member_id, decision, command_id
), visits AS (
	UPDATE members m SET last_visit_at = v.at
	FROM (SELECT member_id, max(at) AS at FROM ins WHERE kind = 1 AND decision = 1 AND member_id IS NOT NULL GROUP BY member_id) v
	WHERE m.tenant_id = $1 AND m.id = v.member_id AND (m.last_visit_at IS NULL OR m.last_visit_at < v.at)
), done AS (
	UPDATE edge_commands c SET status = 'done', done_at = ins.at
	FROM ins
	WHERE c.tenant_id = $1 AND c.edge_id = $2 AND c.id = ins.command_id AND c.status <> 'done'
	  AND ((ins.kind = 6 AND c.op = 'open') OR (ins.kind = 7 AND c.op IN ('show', 'resync')))
)
SELECT count(*) FROM ins`

// highWaterSQL is the first stored sequence from $4 on whose successor is
// not stored: the new high-water mark when every sequence up to $4 is.
const highWaterSQL = `
SELECT e.seq FROM edge_events e
WHERE e.tenant_id = $1 AND e.edge_id = $2 AND e.journal_epoch = $3 AND e.seq >= $4
  AND NOT EXISTS (SELECT 1 FROM edge_events n
	WHERE n.tenant_id = $1 AND n.edge_id = $2 AND n.journal_epoch = $3 AND n.seq = e.seq + 1)
ORDER BY e.seq LIMIT 1`

// StoreEvents implements mqtt.EdgeStore. Under the edge's row lock it
// inserts the batch's events that are after the high-water mark (ON
// CONFLICT DO NOTHING on the journal position skips the ones already
// stored), then moves the high-water mark over every sequence now stored
// without a gap. It relies on the mark's invariant: the sequence after it is
// not stored.
func (s *EventStore) StoreEvents(ctx context.Context, batch *vsync.Events) (mqtt.StoredEvents, error) {
	var res mqtt.StoredEvents
	err := s.inEdgeTx(ctx, func(tx pgx.Tx) error {
		e, err := lockEdge(ctx, tx, batch.Header)
		if err != nil {
			return err
		}
		res = mqtt.StoredEvents{Acked: e.acked}
		first, last := batch.Events[0].Seq, batch.Events[len(batch.Events)-1].Seq
		if last <= e.acked {
			return nil // all stored already: a resend
		}
		c, err := columns(batch.Events, e.acked)
		if err != nil {
			return err
		}
		var stored int64
		if err := tx.QueryRow(ctx, storeEventsSQL, e.tenantID, e.id, e.epoch, int64(batch.Boot), s.db.now(),
			c.seq, c.at, c.kind, c.reader, c.credential, c.member, c.decision, c.reason, c.action, c.command).Scan(&stored); err != nil {
			return fmt.Errorf("store events: %w", err)
		}
		res.Stored = int(stored)
		if first > e.acked+1 {
			return nil // a gap before the batch: the mark stays
		}
		var hw int64
		if err := tx.QueryRow(ctx, highWaterSQL, e.tenantID, e.id, e.epoch, int64(last)).Scan(&hw); err != nil {
			return fmt.Errorf("high-water mark: %w", err)
		}
		res.Acked = uint64(hw)
		if _, err := tx.Exec(ctx, `UPDATE edges SET acked_seq = $3, last_seen_at = $4 WHERE tenant_id = $1 AND id = $2`,
			e.tenantID, e.id, hw, s.db.now()); err != nil {
			return fmt.Errorf("update high-water mark: %w", err)
		}
		return nil
	})
	return res, err
}

// RecordBirth implements mqtt.EdgeStore.
func (s *EventStore) RecordBirth(ctx context.Context, b *vsync.Birth, protocolVersion int) (mqtt.BirthRecord, error) {
	var res mqtt.BirthRecord
	err := s.inEdgeTx(ctx, func(tx pgx.Tx) error {
		e, err := lockEdge(ctx, tx, b.Header)
		if err != nil {
			return err
		}
		if b.CacheVersion > math.MaxInt64 || b.LastSeq > math.MaxInt64 {
			return cloud.Invalid("birth", "Cache version or last sequence out of range.")
		}
		if b.LastSeq < e.acked {
			// The edge's journal ends before what was stored of it: a new
			// journal, numbered from 1 again.
			e.epoch, e.acked, res.NewJournal = e.epoch+1, 0, true
		}
		res.Acked = e.acked
		readers, err := json.Marshal(cloud.EdgeReaders(b.Readers))
		if err != nil {
			return fmt.Errorf("encode readers: %w", err)
		}
		now := s.db.now()
		if _, err := tx.Exec(ctx, `UPDATE edges SET boot_id = $3, cache_version = $4, software = $5, protocol_version = $6,
			readers = $7, journal_epoch = $8, acked_seq = $9, last_seen_at = $10, last_birth_at = $10,
			prev_birth_time = birth_time, birth_time = $11, status_time = $11, online = true
			WHERE tenant_id = $1 AND id = $2`,
			e.tenantID, e.id, int64(b.Boot), int64(b.CacheVersion), b.Software, protocolVersion, readers, e.epoch, int64(e.acked),
			now, b.Time.Time()); err != nil {
			return fmt.Errorf("record birth: %w", err)
		}
		res.Pending, err = pendingCommands(ctx, tx, e, b.Header, now)
		return err
	})
	return res, err
}

// RecordStatus implements mqtt.EdgeStore: an online status is kept when it
// is newer than the status kept (a Birth counts as one); an offline one
// unless it is older than the previous Birth, for then it is the late will
// of an older connection (see the edges table in the migration).
func (s *EventStore) RecordStatus(ctx context.Context, st *vsync.Status) (bool, error) {
	var kept bool
	err := s.inEdgeTx(ctx, func(tx pgx.Tx) error {
		e, err := lockEdge(ctx, tx, st.Header)
		if err != nil {
			return err
		}
		if st.CacheVersion > math.MaxInt64 {
			return cloud.Invalid("cache_version", "Cache version out of range.")
		}
		now := s.db.now()
		tag, err := tx.Exec(ctx, `UPDATE edges SET online = $3, status_time = greatest(status_time, $4),
			cache_version = $5, last_seen_at = CASE WHEN $3 THEN $6 ELSE last_seen_at END
			WHERE tenant_id = $1 AND id = $2 AND CASE WHEN $3 THEN status_time IS NULL OR status_time < $4
				ELSE prev_birth_time IS NULL OR prev_birth_time <= $4 END`,
			e.tenantID, e.id, st.Online, st.Time.Time(), int64(st.CacheVersion), now)
		if err != nil {
			return fmt.Errorf("record status: %w", err)
		}
		kept = tag.RowsAffected() == 1
		return nil
	})
	return kept, err
}
