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

// bigint converts a number an edge sent for a bigint column; 0 is NULL. It
// refuses (EINVALID) numbers beyond PostgreSQL's bigint, which no honest
// edge sends.
func bigint(v uint64, what string, seq uint64) (*int64, error) {
	if v == 0 {
		return nil, nil
	}
	if v > math.MaxInt64 {
		return nil, cloud.Invalid(what, "Event %d: %s %d out of range.", seq, what, v)
	}
	i := int64(v)
	return &i, nil
}

// eventRows are the rows of new events, for COPY, and what they change
// besides: members' last visits and commands reported carried out.
type eventRows struct {
	rows [][]any
	// visits is the latest granted passage of each member.
	visits map[int64]time.Time
	// done are the command reports: command id, event kind and time.
	doneIDs   []int64
	doneKinds []int16
	doneAt    []time.Time
}

var eventCopyColumns = []string{"tenant_id", "edge_id", "journal_epoch", "seq", "boot_id", "at", "received_at", "kind", "reader",
	"credential", "member_id", "decision", "reason", "action_id", "command_id"}

// newRows converts the events of batch that are after the mark and not in
// stored, for edge e.
func newRows(e edgeRef, batch *vsync.Events, stored map[int64]bool, now time.Time) (*eventRows, error) {
	r := &eventRows{rows: make([][]any, 0, len(batch.Events)), visits: map[int64]time.Time{}}
	for i := range batch.Events {
		ev := &batch.Events[i]
		if ev.Seq <= e.acked {
			continue
		}
		seq, err := bigint(ev.Seq, "seq", ev.Seq)
		if err != nil {
			return nil, err
		}
		if stored[*seq] {
			continue
		}
		member, err := bigint(uint64(ev.Member), "member", ev.Seq)
		if err != nil {
			return nil, err
		}
		action, err := bigint(ev.Action, "action", ev.Seq)
		if err != nil {
			return nil, err
		}
		command, err := bigint(ev.Command, "command", ev.Seq)
		if err != nil {
			return nil, err
		}
		var cred []byte
		if !ev.Credential.IsZero() {
			cred = ev.Credential[:]
		}
		at := ev.Time.Time()
		r.rows = append(r.rows, []any{e.tenantID, e.id, e.epoch, *seq, int64(batch.Boot), at, now, int16(ev.Kind), ev.Reader,
			cred, member, int16(ev.Decision), int16(ev.Reason), action, command})
		if ev.Kind == vsync.EventPassage && ev.Decision == vsync.DecisionGrant && member != nil && at.After(r.visits[*member]) {
			r.visits[*member] = at
		}
		if command != nil {
			r.doneIDs, r.doneKinds, r.doneAt = append(r.doneIDs, *command), append(r.doneKinds, int16(ev.Kind)), append(r.doneAt, at)
		}
	}
	return r, nil
}

// storedSeqs returns the sequences of [from, to] of e's journal that are
// stored already: events that came ahead of a gap.
func storedSeqs(ctx context.Context, tx pgx.Tx, e edgeRef, from, to uint64) (map[int64]bool, error) {
	if to > math.MaxInt64 {
		to = math.MaxInt64
	}
	rows, err := tx.Query(ctx, `SELECT seq FROM edge_events WHERE tenant_id = $1 AND edge_id = $2 AND journal_epoch = $3
		AND seq BETWEEN $4 AND $5`, e.tenantID, e.id, e.epoch, int64(from), int64(to))
	if err != nil {
		return nil, fmt.Errorf("stored events: %w", err)
	}
	seqs, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("stored events: %w", err)
	}
	stored := make(map[int64]bool, len(seqs))
	for _, s := range seqs {
		stored[s] = true
	}
	return stored, nil
}

// visitsSQL moves the last visit of members to their latest grant.
const visitsSQL = `UPDATE members m SET last_visit_at = v.at
FROM unnest($2::bigint[], $3::timestamptz[]) AS v (id, at)
WHERE m.tenant_id = $1 AND m.id = v.id AND (m.last_visit_at IS NULL OR m.last_visit_at < v.at)`

// commandsDoneSQL marks done the commands of the edge that an
// EventRemoteOpen (open) or EventCommandDone (show, resync) reports carried
// out; a report of another edge, or of the wrong kind, changes nothing.
const commandsDoneSQL = `UPDATE edge_commands c SET status = 'done', done_at = v.at
FROM unnest($3::bigint[], $4::smallint[], $5::timestamptz[]) AS v (id, kind, at)
WHERE c.tenant_id = $1 AND c.edge_id = $2 AND c.id = v.id AND c.status <> 'done'
  AND ((v.kind = 6 AND c.op = 'open') OR (v.kind = 7 AND c.op IN ('show', 'resync')))`

// highWater returns the high-water mark of e's journal when every sequence
// up to from is stored: the end of the run of stored sequences from there.
// It reads the sequences after from in pages of the primary key: usually
// none, some when batches came ahead of a gap.
func highWater(ctx context.Context, tx pgx.Tx, e edgeRef, from uint64) (uint64, error) {
	const page = 1024
	hw := int64(from)
	for {
		rows, err := tx.Query(ctx, `SELECT seq FROM edge_events WHERE tenant_id = $1 AND edge_id = $2 AND journal_epoch = $3
			AND seq > $4 ORDER BY seq LIMIT $5`, e.tenantID, e.id, e.epoch, hw, page)
		if err != nil {
			return 0, fmt.Errorf("high-water mark: %w", err)
		}
		seqs, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return 0, fmt.Errorf("high-water mark: %w", err)
		}
		for _, s := range seqs {
			if s != hw+1 {
				return uint64(hw), nil
			}
			hw = s
		}
		if len(seqs) < page {
			return uint64(hw), nil
		}
	}
}

// StoreEvents implements mqtt.EdgeStore. Under the edge's row lock, which
// every writer of the edge's events takes, it skips the batch's events up to
// the high-water mark and those stored already after it (sent ahead of a
// gap), COPYs the others in, moves the last visit of the members they grant
// and marks done the commands they report, and then moves the high-water
// mark over every sequence now stored without a gap. It relies on the
// mark's invariant: the sequence after it is not stored.
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
			return s.seen(ctx, tx, e, e.acked) // all stored already: a resend
		}
		stored, err := storedSeqs(ctx, tx, e, max(first, e.acked+1), last)
		if err != nil {
			return err
		}
		r, err := newRows(e, batch, stored, s.db.now())
		if err != nil {
			return err
		}
		if len(r.rows) > 0 {
			n, err := tx.CopyFrom(ctx, pgx.Identifier{"edge_events"}, eventCopyColumns, pgx.CopyFromRows(r.rows))
			if err != nil {
				return fmt.Errorf("store events: %w", err)
			}
			res.Stored = int(n)
		}
		if len(r.visits) > 0 {
			ids, ats := make([]int64, 0, len(r.visits)), make([]time.Time, 0, len(r.visits))
			for id, at := range r.visits {
				ids, ats = append(ids, id), append(ats, at)
			}
			if _, err := tx.Exec(ctx, visitsSQL, e.tenantID, ids, ats); err != nil {
				return fmt.Errorf("last visits: %w", err)
			}
		}
		if len(r.doneIDs) > 0 {
			if _, err := tx.Exec(ctx, commandsDoneSQL, e.tenantID, e.id, r.doneIDs, r.doneKinds, r.doneAt); err != nil {
				return fmt.Errorf("commands done: %w", err)
			}
		}
		if first <= e.acked+1 { // no gap before the batch: the mark moves
			if res.Acked, err = highWater(ctx, tx, e, last); err != nil {
				return err
			}
		}
		return s.seen(ctx, tx, e, res.Acked)
	})
	return res, err
}

// seen records the edge's high-water mark and that it was heard from.
func (s *EventStore) seen(ctx context.Context, tx pgx.Tx, e edgeRef, acked uint64) error {
	if _, err := tx.Exec(ctx, `UPDATE edges SET acked_seq = $3, last_seen_at = $4 WHERE tenant_id = $1 AND id = $2`,
		e.tenantID, e.id, int64(acked), s.db.now()); err != nil {
		return fmt.Errorf("update high-water mark: %w", err)
	}
	return nil
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
