package badger

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	badgerdb "github.com/dgraph-io/badger/v4"

	"varco.dev/edge"
	vsync "varco.dev/protocol/sync"
)

// CacheOptions configure OpenCache.
type CacheOptions struct {
	// Logger receives the cache's and Badger's log (default slog.Default()).
	Logger *slog.Logger
	// MinFree is the space the file system must keep available for the cache
	// to write (default 64 MiB); below it writes fail with edge.ErrDiskFull.
	MinFree uint64
}

// DefaultCacheMinFree is the default CacheOptions.MinFree.
const DefaultCacheMinFree = 64 << 20

// Cache is the decision cache: the site's access records in Badger, and an
// in-memory index in front of it that answers lookups. It implements
// edge.Cache. Lookups may run concurrently with each other and with one
// writer; writes (deltas, snapshots) are serialised.
type Cache struct {
	db    *badgerdb.DB
	log   *slog.Logger
	guard diskGuard

	mem atomic.Pointer[memState] // what lookups read

	wmu     sync.Mutex // serialises writers
	pending *snapshotWriter
	nextGen uint32
	closed  atomic.Bool

	conflicts atomic.Int64
	synced    atomic.Int64 // unix ms of the last moment in sync (syncedKey), 0: never
}

var _ edge.Cache = (*Cache)(nil)

// OpenCache opens or creates the cache in dir (the daemon uses
// <data_dir>/cache) and builds its in-memory index from the records of the
// current generation: about 2 s per million members on a 2-core amd64. A
// record that cannot be decoded is logged, counted (Stats.Corrupt) and left
// out; until a delta or snapshot replaces it, a credential that is not found
// is an error wrapping edge.ErrCorrupt, not an unknown credential. Leftovers
// of an unfinished snapshot are deleted.
func OpenCache(ctx context.Context, dir string, opts CacheOptions) (*Cache, error) {
	log := cmp.Or(opts.Logger, slog.Default())
	db, err := badgerdb.Open(cacheOptions(dir, log))
	if err != nil {
		return nil, fmt.Errorf("badger: open cache %s: %w", dir, err)
	}
	c := &Cache{db: db, log: log, guard: diskGuard{dir, cmp.Or(opts.MinFree, DefaultCacheMinFree)}}
	if err := c.load(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("badger: open cache %s: %w", dir, err)
	}
	return c, nil
}

func (c *Cache) load(ctx context.Context) error {
	var gen uint32
	var version uint64
	var policy, synced []byte
	err := c.db.View(func(txn *badgerdb.Txn) error {
		for _, k := range []struct {
			key []byte
			dst *[]byte
		}{{policyKey, &policy}, {syncedKey, &synced}} {
			item, err := txn.Get(k.key)
			if errors.Is(err, badgerdb.ErrKeyNotFound) {
				continue
			} else if err != nil {
				return err
			}
			if *k.dst, err = item.ValueCopy(nil); err != nil {
				return err
			}
		}
		item, err := txn.Get(metaKey)
		if errors.Is(err, badgerdb.ErrKeyNotFound) {
			return nil
		} else if err != nil {
			return err
		}
		return item.Value(func(v []byte) error {
			if len(v) != 12 {
				return fmt.Errorf("%w: meta of %d bytes", edge.ErrCorrupt, len(v))
			}
			gen, version = binary.BigEndian.Uint32(v), binary.BigEndian.Uint64(v[4:])
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("read meta: %w", err)
	}
	var p *vsync.OfflinePolicy
	if policy != nil {
		if p, err = decodePolicy(policy); err != nil {
			// Decisions go on as the cache says; a delta or snapshot with a
			// policy replaces it.
			c.log.Error("cache: unreadable offline policy left out", "err", err)
		}
	}
	if synced != nil {
		ms, err := parseU64(synced)
		if err != nil {
			c.log.Error("cache: unreadable last-in-sync time: the edge counts as never in sync", "err", err)
		}
		c.synced.Store(int64(ms))
	}
	if err := c.dropOtherGens(gen); err != nil {
		return err
	}
	c.nextGen = gen + 1
	s, err := c.build(ctx, gen, version)
	if err != nil {
		return err
	}
	s.policy.Store(p)
	c.mem.Store(s)
	return nil
}

// dropOtherGens deletes the records of every generation but keep: those of
// a snapshot that was never committed, or of one replaced just before a crash.
func (c *Cache) dropOtherGens(keep uint32) error {
	var gens [][]byte
	err := c.db.View(func(txn *badgerdb.Txn) error {
		it := txn.NewIterator(badgerdb.IteratorOptions{Prefix: []byte{'r'}})
		defer it.Close()
		for it.Rewind(); it.Valid(); {
			k := it.Item().Key()
			if len(k) < 5 {
				it.Next()
				continue
			}
			gen := binary.BigEndian.Uint32(k[1:5])
			if gen != keep {
				gens = append(gens, genPrefix(gen))
			}
			if gen == ^uint32(0) {
				break
			}
			it.Seek(genPrefix(gen + 1))
		}
		return nil
	})
	if err == nil && len(gens) > 0 {
		c.log.Info("cache: dropping records of unfinished snapshots", "generations", len(gens))
		err = c.db.DropPrefix(gens...)
	}
	if err != nil {
		return fmt.Errorf("drop old generations: %w", err)
	}
	return nil
}

// rawBatch is a batch of stored records on their way from Badger's
// iterator to the decoder: values back to back in vals, ends[i] the end of
// the i-th, and members the member each was stored under.
type rawBatch struct {
	vals    []byte
	ends    []int
	members []vsync.MemberRef
}

// build reads generation gen into a new in-memory index. One goroutine
// iterates Badger while this one decodes, so that both cores work at open.
func (c *Cache) build(ctx context.Context, gen uint32, version uint64) (*memState, error) {
	start := time.Now()
	var keys uint64 // Badger's count of the keys in its tables: a size hint
	for _, t := range c.db.Tables() {
		keys += uint64(t.KeyCount)
	}
	s := newMemState(gen, version, int(min(keys, 1<<26)))

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	full, free := make(chan *rawBatch, 2), make(chan *rawBatch, 3)
	for range cap(free) {
		free <- new(rawBatch)
	}
	var readErr error
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(full)
		readErr = c.db.View(func(txn *badgerdb.Txn) error {
			// Values are in the LSM tree (ValueThreshold): no value log to prefetch.
			it := txn.NewIterator(badgerdb.IteratorOptions{Prefix: genPrefix(gen)})
			defer it.Close()
			it.Rewind()
			for it.Valid() {
				var b *rawBatch
				select {
				case b = <-free:
				case <-ctx.Done():
					return ctx.Err()
				}
				b.vals, b.ends, b.members = b.vals[:0], b.ends[:0], b.members[:0]
				for ; it.Valid() && len(b.ends) < 512; it.Next() {
					var m vsync.MemberRef // 0 (never a member's) for a malformed key
					if k := it.Item().Key(); len(k) == 13 {
						m = vsync.MemberRef(binary.BigEndian.Uint64(k[5:]))
					}
					if err := it.Item().Value(func(v []byte) error { b.vals = append(b.vals, v...); return nil }); err != nil {
						return err
					}
					b.ends, b.members = append(b.ends, len(b.vals)), append(b.members, m)
				}
				select {
				case full <- b:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			return nil
		})
	})

	var putErr error
	var rec vsync.Record
	var scratch []byte
	var conflicts int
	for b := range full {
		for i, from := 0, 0; i < len(b.ends) && putErr == nil; i++ {
			err := decodeRecord(b.vals[from:b.ends[i]], &rec)
			if err == nil && rec.Member != b.members[i] {
				err = fmt.Errorf("%w: record of member %d under member %d's key", edge.ErrCorrupt, rec.Member, b.members[i])
			}
			from = b.ends[i]
			if err != nil {
				if s.corrupt[b.members[i]] = struct{}{}; len(s.corrupt) <= 10 {
					c.log.Error("cache: unreadable record left out", "member", b.members[i], "err", err)
				}
				continue
			}
			scratch = appendCompact(scratch[:0], &rec)
			var k int
			k, putErr = s.put(&rec, scratch)
			conflicts += k
		}
		if putErr != nil {
			cancel()
		}
		free <- b
	}
	wg.Wait()
	if err := cmp.Or(putErr, readErr); err != nil {
		return nil, fmt.Errorf("read generation %d: %w", gen, err)
	}
	s.idx.fit()
	c.conflicts.Add(int64(conflicts))
	c.log.Info("cache: index built", "version", version, "members", s.records, "credentials", s.idx.len(),
		"arena_mib", len(s.chunks)*chunkSize>>20, "unreadable", len(s.corrupt), "conflicts", conflicts, "took", time.Since(start))
	return s, nil
}

// Lookup fills into with the record holding key; see edge.Cache. It reads
// only memory, takes a read lock and does not allocate once into's slices
// have grown.
func (c *Cache) Lookup(key vsync.CredentialKey, into *vsync.Record) (bool, error) {
	if c.closed.Load() {
		return false, edge.ErrClosed
	}
	return c.mem.Load().lookup(key, into)
}

// Version returns the version of the state that lookups read.
func (c *Cache) Version() uint64 { return c.mem.Load().version.Load() }

// Policy returns the site's offline policy at Version; see edge.Cache.
func (c *Cache) Policy() *vsync.OfflinePolicy { return c.mem.Load().policy.Load() }

// Synced returns the last moment in sync that SetSynced stored, or the zero
// time.
func (c *Cache) Synced() time.Time {
	if ms := c.synced.Load(); ms != 0 {
		return time.UnixMilli(ms)
	}
	return time.Time{}
}

// SetSynced stores t as the last moment in sync. Like every write of the
// cache it is not synced to the disk: a power cut may take it back a few
// seconds, which only makes the edge look staler than it was.
func (c *Cache) SetSynced(ctx context.Context, t time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if c.closed.Load() {
		return edge.ErrClosed
	}
	if err := c.guard.check(); err != nil {
		return fmt.Errorf("badger: last in sync: %w", err)
	}
	ms := t.UnixMilli()
	if err := c.db.Update(func(txn *badgerdb.Txn) error { return txn.Set(syncedKey, u64(uint64(ms))) }); err != nil {
		return fmt.Errorf("badger: last in sync: %w", err)
	}
	c.synced.Store(ms)
	return nil
}

// ApplyDelta applies d; see edge.Cache. The records are validated first; a
// delta with an invalid record is refused whole.
func (c *Cache) ApplyDelta(ctx context.Context, d *vsync.Delta) (vsync.Step, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closed.Load() {
		return 0, edge.ErrClosed
	}
	s := c.mem.Load()
	have := s.version.Load()
	switch step := d.Step(have); step {
	case vsync.StepSkip:
		return step, nil
	case vsync.StepCatchUp:
		return step, &edge.GapError{Have: have, Prev: d.Prev, Version: d.Version}
	}
	if err := checkDelta(d); err != nil {
		return 0, fmt.Errorf("badger: delta %d→%d: %w", d.Prev, d.Version, err)
	}
	if err := c.guard.check(); err != nil {
		return 0, fmt.Errorf("badger: delta %d→%d: %w", d.Prev, d.Version, err)
	}

	// One transaction: the records, the deletions and the version. The old
	// records give the credentials to take out of the index.
	old := make(map[vsync.MemberRef][]vsync.CredentialKey, len(d.Upserts)+len(d.Deletes))
	txn := c.db.NewTransaction(true)
	defer txn.Discard()
	readOld := func(m vsync.MemberRef) error {
		item, err := txn.Get(recordKey(s.gen, m))
		if errors.Is(err, badgerdb.ErrKeyNotFound) {
			return nil
		} else if err != nil {
			return err
		}
		err = item.Value(func(v []byte) error {
			var r vsync.Record
			if err := decodeRecord(v, &r); err != nil {
				return err
			}
			for _, c := range r.Credentials {
				old[m] = append(old[m], c.Key)
			}
			return nil
		})
		if errors.Is(err, edge.ErrCorrupt) {
			c.log.Warn("cache: unreadable record replaced", "member", m, "err", err)
			return nil // it was not in the index either
		}
		return err
	}
	for i := range d.Upserts {
		r := &d.Upserts[i]
		if err := readOld(r.Member); err != nil {
			return 0, fmt.Errorf("badger: delta %d→%d: %w", d.Prev, d.Version, err)
		}
		v, err := encodeRecord(r)
		if err != nil {
			return 0, err
		}
		if err := txn.Set(recordKey(s.gen, r.Member), v); err != nil {
			return 0, fmt.Errorf("badger: delta %d→%d: %w", d.Prev, d.Version, err)
		}
	}
	for _, m := range d.Deletes {
		if err := readOld(m); err != nil {
			return 0, fmt.Errorf("badger: delta %d→%d: %w", d.Prev, d.Version, err)
		}
		if err := txn.Delete(recordKey(s.gen, m)); err != nil {
			return 0, fmt.Errorf("badger: delta %d→%d: %w", d.Prev, d.Version, err)
		}
	}
	if err := txn.Set(metaKey, meta(s.gen, d.Version)); err != nil {
		return 0, fmt.Errorf("badger: delta %d→%d: %w", d.Prev, d.Version, err)
	}
	if d.Policy != nil {
		if err := setPolicy(txn, d.Policy); err != nil {
			return 0, fmt.Errorf("badger: delta %d→%d: %w", d.Prev, d.Version, err)
		}
	}
	if err := txn.Commit(); err != nil {
		return 0, fmt.Errorf("badger: delta %d→%d: commit: %w", d.Prev, d.Version, err)
	}

	// The compact forms are made before taking the lock that lookups wait for.
	var compact []byte
	ends := make([]int, len(d.Upserts))
	for i := range d.Upserts {
		compact = appendCompact(compact, &d.Upserts[i])
		ends[i] = len(compact)
	}
	s.mu.Lock()
	for m, keys := range old {
		s.remove(m, keys)
	}
	for i := range d.Upserts {
		delete(s.corrupt, d.Upserts[i].Member)
	}
	for _, m := range d.Deletes {
		delete(s.corrupt, m)
	}
	var err error
	for i, from := 0, 0; i < len(d.Upserts) && err == nil; i++ {
		var k int
		k, err = s.put(&d.Upserts[i], compact[from:ends[i]])
		c.conflicts.Add(int64(k))
		from = ends[i]
	}
	s.version.Store(d.Version)
	if d.Policy != nil {
		s.policy.Store(d.Policy)
	}
	s.mu.Unlock()
	if err != nil {
		// Stored, but not all in memory: only a bigger arena would help.
		return 0, fmt.Errorf("badger: delta %d→%d: %w", d.Prev, d.Version, err)
	}
	if s.needsCompaction() {
		if err := c.rebuild(ctx); err != nil {
			c.log.Warn("cache: compaction of the in-memory index failed", "err", err)
		}
	}
	return vsync.StepApply, nil
}

// checkDelta checks d's records and that no member, and no credential, is
// in it twice (vsync.Delta.Validate does too, with the message's header).
func checkDelta(d *vsync.Delta) error {
	members := make(map[vsync.MemberRef]bool, len(d.Upserts)+len(d.Deletes))
	keys := make(map[vsync.CredentialKey]bool, len(d.Upserts))
	for i := range d.Upserts {
		r := &d.Upserts[i]
		if err := r.Validate(); err != nil {
			return fmt.Errorf("upserts[%d]: %w", i, err)
		}
		if members[r.Member] {
			return fmt.Errorf("%w: member %d twice", vsync.ErrInvalid, r.Member)
		}
		members[r.Member] = true
		for _, c := range r.Credentials {
			if keys[c.Key] {
				return fmt.Errorf("%w: credential %s twice", vsync.ErrInvalid, c.Key)
			}
			keys[c.Key] = true
		}
	}
	for _, m := range d.Deletes {
		if members[m] {
			return fmt.Errorf("%w: member %d twice", vsync.ErrInvalid, m)
		}
		members[m] = true
	}
	return nil
}

func meta(gen uint32, version uint64) []byte {
	return binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint32(nil, gen), version)
}

// Compact rebuilds the in-memory index from Badger, dropping the space of
// replaced records; ApplyDelta does it by itself when they take more than
// half of it. Lookups go on meanwhile on the old index.
func (c *Cache) Compact(ctx context.Context) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closed.Load() {
		return edge.ErrClosed
	}
	return c.rebuild(ctx)
}

func (c *Cache) rebuild(ctx context.Context) error {
	old := c.mem.Load()
	s, err := c.build(ctx, old.gen, old.version.Load())
	if err != nil {
		return fmt.Errorf("badger: compact: %w", err)
	}
	s.policy.Store(old.policy.Load())
	c.mem.Store(s)
	return nil
}

// CacheStats describe the cache.
type CacheStats struct {
	Version     uint64
	Members     int   // records that have a credential
	Credentials int   // keys in the index
	ArenaBytes  int64 // memory of the records' arena
	LiveBytes   int64 // of which records in use
	// Corrupt counts the stored records that could not be read, and that no
	// delta has replaced since. While there are any, a credential that is
	// not found is an error (edge.ErrCorrupt) rather than unknown, and the
	// cache should be resynchronised with a full snapshot.
	Corrupt int
	// Conflicts counts credentials that moved from one member to another
	// outside a single delta (last writer wins).
	Conflicts int64
}

// Stats returns the cache's figures.
func (c *Cache) Stats() CacheStats {
	s := c.mem.Load()
	s.mu.RLock()
	defer s.mu.RUnlock()
	return CacheStats{
		Version: s.version.Load(), Members: s.records, Credentials: s.idx.len(),
		ArenaBytes: int64(len(s.chunks)) * chunkSize, LiveBytes: s.live,
		Corrupt: len(s.corrupt), Conflicts: c.conflicts.Load(),
	}
}

// Close aborts an unfinished snapshot and closes Badger. Lookups after Close
// return edge.ErrClosed.
func (c *Cache) Close() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closed.Swap(true) {
		return nil
	}
	if c.pending != nil {
		c.pending.wb.Cancel()
		c.pending = nil // its generation is dropped at the next open
	}
	if err := c.db.Close(); err != nil {
		return fmt.Errorf("badger: close cache: %w", err)
	}
	return nil
}
