package postgres

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	gosync "sync"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"varco.dev/cloud"
	vsync "varco.dev/protocol/sync"
)

// RecordFormat is the version of what ComputeAccessRecord produces. Bump it
// with any change to the records it computes for unchanged data: at the next
// maintenance every site then recomputes, and publishes, every member.
const RecordFormat = 1

// Defaults of SyncService.
const (
	DefaultSyncRetention = 7 * 24 * time.Hour
	DefaultSyncBatch     = 1000
	// maxDeltaRecords and maxDeltaBytes bound one delta, well inside the
	// protocol's MaxRecords and MaxMessageSize: a bigger change is split
	// into consecutive versions.
	maxDeltaRecords = 1000
	maxDeltaBytes   = 512 << 10
	// syncLockClass is the first key of the per-tenant advisory lock that
	// the publishers of several replicas share.
	syncLockClass = 0x76737963
	// NotifyChannel is the channel the outbox triggers notify, with the
	// tenant id as payload.
	NotifyChannel = "varco_sync"
)

// SyncService is the database side of the state-down flow: it turns the
// access outbox into each site's versioned change log and publishes the
// changes through a caller's function, answers catch-ups from the log and
// makes snapshots. cloud/mqtt.Publisher drives it.
//
// # Outbox
//
// Triggers (migration 00006) write access_outbox rows in the transaction of
// every change to data that an access record is computed from, and notify
// NotifyChannel at commit. Sync drains a tenant's rows in batches: it
// recomputes each member's record at each site of the tenant
// (cloud.ComputeAccessRecord on data loaded for the whole batch), compares it
// with the record last published there (sync_records, CBOR bytes), and
// writes the differences as the next versions of the site's change log
// (sync_changes), in one transaction with the deletion of the rows. A burst
// of changes drained together becomes one version per site (or a few: a
// delta holds at most 1000 records and 512 KiB). A member has a record at a
// site when it exists, is not archived and has at least one usable
// credential: the edge finds records by credential only, so a record without
// one would be dead weight; otherwise the delta deletes it.
//
// # Publishing
//
// The versions are published in order, after they are committed, and
// published_version records how far each site got; an interrupted publish
// (a crash, a broker outage) resumes with the first unpublished version.
// The whole of Sync for a tenant runs under a PostgreSQL session advisory
// lock on a dedicated connection, so that of several replicas one at a time
// assigns a tenant's versions and publishes them: no version is published
// twice or out of order, unless the lock's connection dies mid-publish (the
// edges ignore a repeated version). A replica that finds the lock taken
// leaves the tenant to its holder, which checks the outbox again after
// releasing it.
//
// # Time
//
// Records also change with time alone (a notice is for one day, a membership
// starts or ends). Maintain queues a recompute of every member of a site
// once a day, after local midnight, and whenever RecordFormat changes; it
// also prunes published changes older than Retention.
type SyncService struct {
	db *DB
	// Retention is how long published changes stay in the log for
	// catch-ups; older ones are pruned and an edge that far behind gets a
	// snapshot. DefaultSyncRetention when 0.
	Retention time.Duration
	// Batch is how many outbox rows, and members of a full recompute, one
	// drain step takes; DefaultSyncBatch when 0.
	Batch int

	zones gosync.Map // time zone name → *time.Location
}

// NewSyncService returns a SyncService on db.
func NewSyncService(db *DB) *SyncService { return &SyncService{db: db} }

// encMode encodes records and policies deterministically, as protocol/sync
// does: equal records give equal bytes.
var encMode = func() cbor.EncMode {
	em, err := cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		panic(err)
	}
	return em
}()

func (s *SyncService) batch() int { return cmp.Or(s.Batch, DefaultSyncBatch) }

func (s *SyncService) location(name string) (*time.Location, error) {
	if l, ok := s.zones.Load(name); ok {
		return l.(*time.Location), nil
	}
	l, err := time.LoadLocation(name)
	if err != nil {
		return nil, err
	}
	s.zones.Store(name, l)
	return l, nil
}

// Listen calls wake with the tenant id of every notification on
// NotifyChannel until ctx is done, on a connection of its own that it
// re-opens when it is lost. After every (re)connect it calls wake(0): the
// caller should look for work by polling, as notifications sent while it was
// not listening are lost.
func (s *SyncService) Listen(ctx context.Context, wake func(tenantID int64)) error {
	backoff := 100 * time.Millisecond
	for {
		start := time.Now()
		err := s.listen(ctx, wake)
		if ctx.Err() != nil {
			return nil
		}
		if time.Since(start) > time.Minute {
			backoff = 100 * time.Millisecond
		}
		s.db.Logger.WarnContext(ctx, "sync: listen connection lost", slog.Any("err", err), slog.Duration("retry_in", backoff))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 10*time.Second)
	}
}

func (s *SyncService) listen(ctx context.Context, wake func(int64)) error {
	conn, err := pgx.Connect(ctx, s.db.URL)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()
	if _, err := conn.Exec(ctx, `LISTEN `+NotifyChannel); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	wake(0)
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return fmt.Errorf("wait for notification: %w", err)
		}
		if id, err := strconv.ParseInt(n.Payload, 10, 64); err == nil && id > 0 {
			wake(id)
		}
	}
}

// PendingTenants returns the tenants with outbox rows or unpublished
// versions: the polling fallback of Listen.
func (s *SyncService) PendingTenants(ctx context.Context) ([]int64, error) {
	rows, err := s.db.Pool.Query(ctx, `SELECT DISTINCT tenant_id FROM access_outbox
		UNION SELECT tenant_id FROM sync_sites WHERE published_version < version`)
	if err != nil {
		return nil, fmt.Errorf("pending tenants: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("pending tenants: %w", err)
	}
	return ids, nil
}

// Sync drains a tenant's outbox into its sites' change logs and publishes
// every unpublished version with send, holding the tenant's advisory lock.
// send gets the deltas of one site, in order, and returns once the broker
// has them all.
// It returns when there is nothing left to do, or at once when another
// process holds the lock. An error of send leaves the versions unpublished
// for the next call.
func (s *SyncService) Sync(ctx context.Context, tenantID int64, send func(context.Context, []*vsync.Delta) error) error {
	for {
		locked, err := s.syncLocked(ctx, tenantID, send)
		if err != nil || !locked {
			return err
		}
		// Rows committed while we held the lock may have woken another
		// replica that found it taken: look again now that it is free.
		var more bool
		err = s.db.Pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM access_outbox WHERE tenant_id = $1)
			OR EXISTS (SELECT 1 FROM sync_sites WHERE tenant_id = $1 AND published_version < version)`, tenantID).Scan(&more)
		if err != nil {
			return fmt.Errorf("sync tenant %d: %w", tenantID, err)
		}
		if !more {
			return nil
		}
	}
}

func (s *SyncService) syncLocked(ctx context.Context, tenantID int64, send func(context.Context, []*vsync.Delta) error) (bool, error) {
	conn, err := s.db.Pool.Acquire(ctx)
	if err != nil {
		return false, fmt.Errorf("sync tenant %d: %w", tenantID, err)
	}
	defer conn.Release()
	var locked bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1, $2)`, int32(syncLockClass), int32(tenantID)).Scan(&locked); err != nil {
		return false, fmt.Errorf("sync tenant %d: lock: %w", tenantID, err)
	}
	if !locked {
		return false, nil
	}
	defer func() {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if _, err := conn.Exec(uctx, `SELECT pg_advisory_unlock($1, $2)`, int32(syncLockClass), int32(tenantID)); err != nil {
			// A connection that may still hold the lock must not go back
			// to the pool: closing it releases the lock.
			_ = conn.Conn().Close(uctx)
		}
	}()
	tenant, err := findTenant(ctx, conn, tenantID)
	if err != nil {
		return true, fmt.Errorf("sync tenant %d: %w", tenantID, err)
	}
	if err := s.publishPending(ctx, conn, tenant, send); err != nil {
		return true, err
	}
	for {
		n, err := s.drain(ctx, conn, tenant)
		if err != nil {
			return true, fmt.Errorf("sync tenant %s: %w", tenant.Slug, err)
		}
		if n > 0 {
			if err := s.publishPending(ctx, conn, tenant, send); err != nil {
				return true, err
			}
		}
		if n < s.batch() {
			return true, nil // the outbox is empty, or nearly: Sync looks again
		}
	}
}

// publishPending publishes the tenant's unpublished versions, site by site
// and in order.
func (s *SyncService) publishPending(ctx context.Context, conn *pgxpool.Conn, tenant *cloud.Tenant, send func(context.Context, []*vsync.Delta) error) error {
	for {
		rows, err := conn.Query(ctx, `SELECT c.site_id, c.delta FROM sync_changes c
			JOIN sync_sites ss ON ss.tenant_id = c.tenant_id AND ss.site_id = c.site_id
			WHERE c.tenant_id = $1 AND c.version > ss.published_version ORDER BY c.site_id, c.version LIMIT 100`, tenant.ID)
		if err != nil {
			return fmt.Errorf("sync tenant %s: unpublished changes: %w", tenant.Slug, err)
		}
		type change struct {
			site  int64
			delta []byte
		}
		changes, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (change, error) {
			var c change
			return c, r.Scan(&c.site, &c.delta)
		})
		if err != nil {
			return fmt.Errorf("sync tenant %s: unpublished changes: %w", tenant.Slug, err)
		}
		if len(changes) == 0 {
			return nil
		}
		for i := 0; i < len(changes); {
			site := changes[i].site
			var deltas []*vsync.Delta
			for ; i < len(changes) && changes[i].site == site; i++ {
				d, err := unmarshalDelta(changes[i].delta)
				if err != nil {
					return fmt.Errorf("sync tenant %s site %d: %w", tenant.Slug, site, err)
				}
				deltas = append(deltas, d)
			}
			if err := send(ctx, deltas); err != nil {
				return fmt.Errorf("sync tenant %s site %d: publish: %w", tenant.Slug, site, err)
			}
			if _, err := conn.Exec(ctx, `UPDATE sync_sites SET published_version = $3 WHERE tenant_id = $1 AND site_id = $2`,
				tenant.ID, site, int64(deltas[len(deltas)-1].Version)); err != nil {
				return fmt.Errorf("sync tenant %s site %d: mark published: %w", tenant.Slug, site, err)
			}
		}
	}
}

func unmarshalDelta(b []byte) (*vsync.Delta, error) {
	msg, err := vsync.Unmarshal(b)
	if err != nil {
		return nil, fmt.Errorf("stored delta: %w", err)
	}
	d, ok := msg.(*vsync.Delta)
	if !ok {
		return nil, fmt.Errorf("stored delta is a %s", msg.Kind())
	}
	return d, nil
}

// outboxRow is a row of access_outbox.
type outboxRow struct {
	id          int64
	member      *int64
	site        *int64
	allMembers  bool
	afterMember int64
}

// syncSite is a site's sync state as a drain step reads it.
type syncSite struct {
	id       int64
	timezone string
	version  int64
	policy   []byte
}

// drain runs one step of the outbox of tenant in one transaction, and
// returns how many outbox rows it handled (0: the outbox was empty).
func (s *SyncService) drain(ctx context.Context, conn *pgxpool.Conn, tenant *cloud.Tenant) (int, error) {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	// Plan with the parameters at hand: sync_records fills up from nothing
	// while a site's first sync runs, and a generic plan made when it was
	// empty would scan it whole at every step.
	if _, err := tx.Exec(ctx, `SET LOCAL plan_cache_mode = force_custom_plan`); err != nil {
		return 0, fmt.Errorf("plan cache mode: %w", err)
	}
	now := s.db.now()
	rows, err := tx.Query(ctx, `SELECT id, member_id, site_id, all_members, after_member FROM access_outbox
		WHERE tenant_id = $1 ORDER BY id LIMIT $2`, tenant.ID, s.batch())
	if err != nil {
		return 0, fmt.Errorf("read outbox: %w", err)
	}
	entries, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (outboxRow, error) {
		var e outboxRow
		err := r.Scan(&e.id, &e.member, &e.site, &e.allMembers, &e.afterMember)
		return e, err
	})
	if err != nil {
		return 0, fmt.Errorf("read outbox: %w", err)
	}
	if len(entries) == 0 {
		return 0, nil
	}

	// What to recompute: members at every site (key 0) or at one site.
	work := map[int64]map[int64]struct{}{}
	add := func(site *int64, ids ...int64) {
		k := int64(0)
		if site != nil {
			k = *site
		}
		if work[k] == nil {
			work[k] = map[int64]struct{}{}
		}
		for _, id := range ids {
			work[k][id] = struct{}{}
		}
	}
	var done []int64
	fullStep := false
	for _, e := range entries {
		switch {
		case e.member != nil:
			add(e.site, *e.member)
			done = append(done, e.id)
		case e.allMembers && !fullStep:
			// One batch of one full recompute per step, so that changes
			// queued meanwhile are not held up behind a million members.
			fullStep = true
			ids, err := s.nextMembers(ctx, tx, tenant.ID, e.site, e.afterMember)
			if err != nil {
				return 0, err
			}
			add(e.site, ids...)
			if len(ids) < s.batch() {
				done = append(done, e.id)
			} else if _, err := tx.Exec(ctx, `UPDATE access_outbox SET after_member = $2 WHERE id = $1`, e.id, ids[len(ids)-1]); err != nil {
				return 0, fmt.Errorf("advance full recompute: %w", err)
			}
		case !e.allMembers:
			done = append(done, e.id) // a wake-up: the policy is compared below
		}
	}
	if _, err := tx.Exec(ctx, `DELETE FROM access_outbox WHERE id = ANY($1)`, done); err != nil {
		return 0, fmt.Errorf("delete outbox rows: %w", err)
	}

	rows, err = tx.Query(ctx, `SELECT ss.site_id, s.timezone, ss.version, ss.policy FROM sync_sites ss
		JOIN sites s ON s.tenant_id = ss.tenant_id AND s.id = ss.site_id WHERE ss.tenant_id = $1 ORDER BY ss.site_id`, tenant.ID)
	if err != nil {
		return 0, fmt.Errorf("read sites: %w", err)
	}
	sites, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (syncSite, error) {
		var ss syncSite
		return ss, r.Scan(&ss.id, &ss.timezone, &ss.version, &ss.policy)
	})
	if err != nil {
		return 0, fmt.Errorf("read sites: %w", err)
	}
	policy, policyBytes, err := currentPolicy(ctx, tx, tenant.ID)
	if err != nil {
		return 0, err
	}
	all := map[int64]struct{}{}
	for _, ids := range work {
		maps.Copy(all, ids)
	}
	data, err := loadAccessData(ctx, tx, tenant, slices.Collect(maps.Keys(all)))
	if err != nil {
		return 0, err
	}
	for _, site := range sites {
		ids := maps.Clone(work[0])
		if ids == nil {
			ids = map[int64]struct{}{}
		}
		maps.Copy(ids, work[site.id])
		policyChanged := !bytes.Equal(site.policy, policyBytes)
		if len(ids) == 0 && !policyChanged {
			continue
		}
		if err := s.syncSite(ctx, tx, tenant, site, slices.Sorted(maps.Keys(ids)), data, policyChanged, policy, policyBytes, now); err != nil {
			return 0, fmt.Errorf("site %d: %w", site.id, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("commit: %w", err)
	}
	return len(entries), nil
}

// nextMembers returns the next batch of member ids of a full recompute
// after the cursor: the tenant's members and the members with a record at
// the site (or any site), so that deleted members are deleted at the edges.
func (s *SyncService) nextMembers(ctx context.Context, tx pgx.Tx, tenantID int64, site *int64, after int64) ([]int64, error) {
	// Each side limited on its own index scan, then merged: a plain UNION
	// would read every remaining row at each step.
	sql := `(SELECT id FROM members WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT $3)
		UNION (SELECT member_id FROM sync_records WHERE tenant_id = $1 AND member_id > $2 ORDER BY member_id LIMIT $3)
		ORDER BY 1 LIMIT $3`
	args := []any{tenantID, after, s.batch()}
	if site != nil {
		sql = `(SELECT id FROM members WHERE tenant_id = $1 AND id > $3 ORDER BY id LIMIT $4)
			UNION (SELECT member_id FROM sync_records WHERE tenant_id = $1 AND site_id = $2 AND member_id > $3 ORDER BY member_id LIMIT $4)
			ORDER BY 1 LIMIT $4`
		args = []any{tenantID, *site, after, s.batch()}
	}
	rows, err := tx.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("full recompute: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("full recompute: %w", err)
	}
	return ids, nil
}

// currentPolicy returns the tenant's offline policy for the wire and its
// CBOR encoding; nil and nil when it has none.
func currentPolicy(ctx context.Context, q queryer, tenantID int64) (*vsync.OfflinePolicy, []byte, error) {
	p, err := findPolicy(ctx, q, tenantID)
	if err != nil {
		return nil, nil, err
	}
	sp, err := p.SyncPolicy()
	if err != nil || sp == nil {
		return nil, nil, err
	}
	b, err := encMode.Marshal(sp)
	if err != nil {
		return nil, nil, fmt.Errorf("encode offline policy: %w", err)
	}
	return sp, b, nil
}

// change is one member's change at a site: a new record, or a deletion
// (record nil).
type change struct {
	member int64
	record *vsync.Record
	bytes  []byte
}

// syncSite recomputes members (sorted ids) at site and writes what changed
// as the site's next versions.
func (s *SyncService) syncSite(ctx context.Context, tx pgx.Tx, tenant *cloud.Tenant, site syncSite, members []int64, data *accessData,
	policyChanged bool, policy *vsync.OfflinePolicy, policyBytes []byte, now time.Time) error {
	loc, err := s.location(site.timezone)
	if err != nil {
		return fmt.Errorf("time zone: %w", err)
	}
	old := make(map[int64][]byte, len(members))
	rows, err := tx.Query(ctx, `SELECT member_id, record FROM sync_records WHERE tenant_id = $1 AND site_id = $2 AND member_id = ANY($3)`,
		tenant.ID, site.id, members)
	if err != nil {
		return fmt.Errorf("read records: %w", err)
	}
	var id int64
	var rec []byte
	if _, err := pgx.ForEachRow(rows, []any{&id, &rec}, func() error { old[id] = bytes.Clone(rec); return nil }); err != nil {
		return fmt.Errorf("read records: %w", err)
	}
	var changes []change
	for _, id := range members {
		var c change
		if in := data.input(id, site.id, loc, now); in != nil {
			r, err := cloud.ComputeAccessRecord(*in)
			if err != nil {
				// Bad data of one member must not hold up the others: its
				// edges keep the record they have.
				s.db.Logger.ErrorContext(ctx, "sync: access record not computed", slog.String("tenant", tenant.Slug),
					slog.Int64("site", site.id), slog.Int64("member", id), slog.Any("err", err))
				continue
			}
			if len(r.Credentials) > 0 {
				if c.bytes, err = encMode.Marshal(&r); err != nil {
					return fmt.Errorf("encode record of member %d: %w", id, err)
				}
				c.record = &r
			}
		}
		prev, had := old[id]
		if (c.record == nil && had) || (c.record != nil && !bytes.Equal(prev, c.bytes)) {
			c.member = id
			changes = append(changes, c)
		}
	}
	if len(changes) == 0 && !policyChanged {
		return nil
	}
	deltas, err := splitDeltas(tenant.Slug, site, changes, policyChanged, policy, now)
	if err != nil {
		return err
	}
	var upIDs, delIDs []int64
	var upRecs [][]byte
	for _, c := range changes {
		if c.record == nil {
			delIDs = append(delIDs, c.member)
		} else {
			upIDs, upRecs = append(upIDs, c.member), append(upRecs, c.bytes)
		}
	}
	if len(upIDs) > 0 {
		if _, err := tx.Exec(ctx, `INSERT INTO sync_records (tenant_id, site_id, member_id, record)
			SELECT $1, $2, unnest($3::bigint[]), unnest($4::bytea[])
			ON CONFLICT (tenant_id, site_id, member_id) DO UPDATE SET record = excluded.record`, tenant.ID, site.id, upIDs, upRecs); err != nil {
			return fmt.Errorf("save records: %w", err)
		}
	}
	if len(delIDs) > 0 {
		if _, err := tx.Exec(ctx, `DELETE FROM sync_records WHERE tenant_id = $1 AND site_id = $2 AND member_id = ANY($3)`,
			tenant.ID, site.id, delIDs); err != nil {
			return fmt.Errorf("delete records: %w", err)
		}
	}
	versions, prevs, blobs := make([]int64, len(deltas)), make([]int64, len(deltas)), make([][]byte, len(deltas))
	for i, d := range deltas {
		if blobs[i], err = vsync.Marshal(d); err != nil {
			return fmt.Errorf("encode delta %d: %w", d.Version, err)
		}
		versions[i], prevs[i] = int64(d.Version), int64(d.Prev)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO sync_changes (tenant_id, site_id, version, prev, delta, created_at)
		SELECT $1, $2, unnest($3::bigint[]), unnest($4::bigint[]), unnest($5::bytea[]), $6`,
		tenant.ID, site.id, versions, prevs, blobs, now); err != nil {
		return fmt.Errorf("append changes: %w", err)
	}
	if _, err := tx.Exec(ctx, `UPDATE sync_sites SET version = $3, policy = $4 WHERE tenant_id = $1 AND site_id = $2`,
		tenant.ID, site.id, versions[len(versions)-1], policyBytes); err != nil {
		return fmt.Errorf("update site version: %w", err)
	}
	return nil
}

// splitDeltas turns a site's changes into consecutive deltas from the
// site's version, each within maxDeltaRecords and maxDeltaBytes; the first
// carries the policy when it changed (an empty one when it was removed).
func splitDeltas(slug string, site syncSite, changes []change, policyChanged bool, policy *vsync.OfflinePolicy, now time.Time) ([]*vsync.Delta, error) {
	h := vsync.Header{Tenant: slug, Site: strconv.FormatInt(site.id, 10), Time: vsync.TimestampOf(now)}
	version := uint64(site.version)
	next := func() *vsync.Delta {
		version++
		return &vsync.Delta{Header: h, Prev: version - 1, Version: version}
	}
	d := next()
	if policyChanged {
		d.Policy = cmp.Or(policy, &vsync.OfflinePolicy{})
	}
	deltas := []*vsync.Delta{d}
	size := 0
	for _, c := range changes {
		if n := len(d.Upserts) + len(d.Deletes); n > 0 && (n >= maxDeltaRecords || size+len(c.bytes) > maxDeltaBytes) {
			d, size = next(), 0
			deltas = append(deltas, d)
		}
		if c.record == nil {
			d.Deletes = append(d.Deletes, vsync.MemberRef(c.member))
		} else {
			d.Upserts = append(d.Upserts, *c.record)
			size += len(c.bytes)
		}
	}
	return deltas, nil
}

// Maintain queues a full recompute of every site whose local day changed
// since its last one, or whose records are of an older RecordFormat, and
// prunes published changes older than Retention. Several replicas may run it:
// a site's recompute is queued once.
func (s *SyncService) Maintain(ctx context.Context) error {
	now := s.db.now()
	tag, err := s.db.Pool.Exec(ctx, `WITH due AS (
			UPDATE sync_sites ss SET recomputed_on = ($1::timestamptz AT TIME ZONE s.timezone)::date, record_format = $2
			FROM sites s WHERE s.tenant_id = ss.tenant_id AND s.id = ss.site_id
			AND (ss.recomputed_on IS DISTINCT FROM ($1::timestamptz AT TIME ZONE s.timezone)::date OR ss.record_format <> $2)
			RETURNING ss.tenant_id, ss.site_id)
		INSERT INTO access_outbox (tenant_id, site_id, all_members) SELECT tenant_id, site_id, true FROM due`, now, RecordFormat)
	if err != nil {
		return fmt.Errorf("sync maintenance: schedule recomputes: %w", err)
	}
	if n := tag.RowsAffected(); n > 0 {
		s.db.Logger.InfoContext(ctx, "sync: full recompute queued", slog.Int64("sites", n))
	}
	retention := cmp.Or(s.Retention, DefaultSyncRetention)
	tag, err = s.db.Pool.Exec(ctx, `DELETE FROM sync_changes c USING sync_sites ss
		WHERE c.tenant_id = ss.tenant_id AND c.site_id = ss.site_id AND c.version <= ss.published_version AND c.created_at < $1`,
		now.Add(-retention))
	if err != nil {
		return fmt.Errorf("sync maintenance: prune changes: %w", err)
	}
	if n := tag.RowsAffected(); n > 0 {
		s.db.Logger.InfoContext(ctx, "sync: changes pruned", slog.Int64("changes", n))
	}
	return nil
}

// siteRef resolves a tenant slug and a site sync id (the decimal site id)
// to ids. Returns ENOTFOUND when the site is not the tenant's.
func siteRef(ctx context.Context, q queryer, slug, site string) (tenantID, siteID int64, err error) {
	siteID, err = strconv.ParseInt(site, 10, 64)
	if err != nil || siteID <= 0 || strconv.FormatInt(siteID, 10) != site {
		return 0, 0, cloud.NotFound("Site")
	}
	err = q.QueryRow(ctx, `SELECT t.id FROM tenants t JOIN sync_sites ss ON ss.tenant_id = t.id
		WHERE t.slug = $1 AND ss.site_id = $2`, slug, siteID).Scan(&tenantID)
	if err != nil {
		return 0, 0, notFound(err, "Site")
	}
	return tenantID, siteID, nil
}

// SiteVersion returns the latest version of a site's state: committed to
// the change log, perhaps still being published. Returns ENOTFOUND when the
// site is not the tenant's.
func (s *SyncService) SiteVersion(ctx context.Context, tenant, site string) (uint64, error) {
	tenantID, siteID, err := siteRef(ctx, s.db.Pool, tenant, site)
	if err != nil {
		return 0, err
	}
	var v int64
	if err := s.db.Pool.QueryRow(ctx, `SELECT version FROM sync_sites WHERE tenant_id = $1 AND site_id = $2`,
		tenantID, siteID).Scan(&v); err != nil {
		return 0, fmt.Errorf("site version: %w", err)
	}
	return uint64(v), nil
}

// Changes returns a site's deltas after version from, oldest first, up to
// the latest committed version: none when from is that version. ok is false
// when the edge needs a snapshot instead: the log no longer has the delta
// from from, from is ahead of the site (a database restored from a backup)
// or more than max deltas would be needed. Returns ENOTFOUND when the site
// is not the tenant's.
func (s *SyncService) Changes(ctx context.Context, tenant, site string, from uint64, max int) (deltas []*vsync.Delta, ok bool, err error) {
	tenantID, siteID, err := siteRef(ctx, s.db.Pool, tenant, site)
	if err != nil {
		return nil, false, err
	}
	tx, err := s.db.Pool.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly, IsoLevel: pgx.RepeatableRead})
	if err != nil {
		return nil, false, fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	var version int64
	if err := tx.QueryRow(ctx, `SELECT version FROM sync_sites WHERE tenant_id = $1 AND site_id = $2`, tenantID, siteID).Scan(&version); err != nil {
		return nil, false, fmt.Errorf("site version: %w", err)
	}
	switch cur := uint64(version); {
	case from == cur:
		return nil, true, nil
	case from > cur || cur-from > uint64(max):
		return nil, false, nil
	}
	rows, err := tx.Query(ctx, `SELECT delta FROM sync_changes WHERE tenant_id = $1 AND site_id = $2 AND version > $3 ORDER BY version`,
		tenantID, siteID, int64(from))
	if err != nil {
		return nil, false, fmt.Errorf("read changes: %w", err)
	}
	blobs, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
	if err != nil {
		return nil, false, fmt.Errorf("read changes: %w", err)
	}
	deltas = make([]*vsync.Delta, 0, len(blobs))
	prev := from
	for _, b := range blobs {
		d, err := unmarshalDelta(b)
		if err != nil {
			return nil, false, err
		}
		if d.Prev != prev {
			return nil, false, nil // pruned
		}
		deltas, prev = append(deltas, d), d.Version
	}
	if prev != uint64(version) {
		return nil, false, nil
	}
	return deltas, true, nil
}

// Snapshot sends a site's whole state at its latest committed version to
// edge, in chunks of at most chunkRecords records (and 512 KiB), chunk 0
// carrying the offline policy, each through send in order. It reads in one
// repeatable-read transaction, so every chunk is of the same version. It
// returns the snapshot's id and version; ENOTFOUND when the site is not the
// tenant's.
func (s *SyncService) Snapshot(ctx context.Context, tenant, site, edge string, chunkRecords int, send func(context.Context, *vsync.Snapshot) error) (id, version uint64, err error) {
	tenantID, siteID, err := siteRef(ctx, s.db.Pool, tenant, site)
	if err != nil {
		return 0, 0, err
	}
	chunkRecords = min(cmp.Or(chunkRecords, maxDeltaRecords), vsync.MaxRecords)
	var sid int64
	if err := s.db.Pool.QueryRow(ctx, `SELECT nextval('sync_snapshot_ids')`).Scan(&sid); err != nil {
		return 0, 0, fmt.Errorf("snapshot id: %w", err)
	}
	tx, err := s.db.Pool.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly, IsoLevel: pgx.RepeatableRead})
	if err != nil {
		return 0, 0, fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	var v int64
	var policyBytes []byte
	if err := tx.QueryRow(ctx, `SELECT version, policy FROM sync_sites WHERE tenant_id = $1 AND site_id = $2`, tenantID, siteID).
		Scan(&v, &policyBytes); err != nil {
		return 0, 0, fmt.Errorf("site version: %w", err)
	}
	// First pass: the chunk boundaries, since every chunk says how many
	// there are.
	rows, err := tx.Query(ctx, `SELECT length(record) FROM sync_records WHERE tenant_id = $1 AND site_id = $2 ORDER BY member_id`, tenantID, siteID)
	if err != nil {
		return 0, 0, fmt.Errorf("snapshot sizes: %w", err)
	}
	var sizes []int // records per chunk
	var n, size, length int
	if _, err := pgx.ForEachRow(rows, []any{&length}, func() error {
		if n > 0 && (n >= chunkRecords || size+length > maxDeltaBytes) {
			sizes, n, size = append(sizes, n), 0, 0
		}
		n, size = n+1, size+length
		return nil
	}); err != nil {
		return 0, 0, fmt.Errorf("snapshot sizes: %w", err)
	}
	sizes = append(sizes, n) // the last chunk, or the one empty chunk of an empty site
	if len(sizes) > vsync.MaxChunks {
		return 0, 0, fmt.Errorf("snapshot of %d chunks, max %d", len(sizes), vsync.MaxChunks)
	}
	h := vsync.Header{Tenant: tenant, Site: site, Edge: edge, Time: vsync.TimestampOf(s.db.now())}
	chunk := &vsync.Snapshot{Header: h, ID: uint64(sid), Version: uint64(v), Chunks: uint32(len(sizes))}
	if policyBytes != nil {
		chunk.Policy = new(vsync.OfflinePolicy)
		if err := cbor.Unmarshal(policyBytes, chunk.Policy); err != nil {
			return 0, 0, fmt.Errorf("stored offline policy: %w", err)
		}
	}
	rows, err = tx.Query(ctx, `SELECT record FROM sync_records WHERE tenant_id = $1 AND site_id = $2 ORDER BY member_id`, tenantID, siteID)
	if err != nil {
		return 0, 0, fmt.Errorf("snapshot records: %w", err)
	}
	var raw []byte
	flush := func() error {
		if err := send(ctx, chunk); err != nil {
			return err
		}
		chunk = &vsync.Snapshot{Header: h, ID: chunk.ID, Version: chunk.Version, Chunk: chunk.Chunk + 1, Chunks: chunk.Chunks,
			Records: make([]vsync.Record, 0, chunkRecords)}
		return nil
	}
	if _, err := pgx.ForEachRow(rows, []any{&raw}, func() error {
		var r vsync.Record
		if err := cbor.Unmarshal(raw, &r); err != nil {
			return fmt.Errorf("stored record: %w", err)
		}
		chunk.Records = append(chunk.Records, r)
		if len(chunk.Records) == sizes[chunk.Chunk] && int(chunk.Chunk) < len(sizes)-1 {
			return flush()
		}
		return nil
	}); err != nil {
		return 0, 0, fmt.Errorf("snapshot: %w", err)
	}
	if err := send(ctx, chunk); err != nil {
		return 0, 0, fmt.Errorf("snapshot: %w", err)
	}
	return uint64(sid), uint64(v), nil
}
