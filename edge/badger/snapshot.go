package badger

import (
	"context"
	"errors"
	"fmt"

	badgerdb "github.com/dgraph-io/badger/v4"

	"varco.dev/edge"
	vsync "varco.dev/protocol/sync"
)

var errAborted = errors.New("badger: snapshot aborted (another began, or the cache closed)")

// snapshotWriter writes a snapshot into a new generation of the keyspace with
// a Badger WriteBatch; the live generation keeps answering lookups and
// taking deltas until Commit.
type snapshotWriter struct {
	c       *Cache
	gen     uint32
	version uint64
	policy  *vsync.OfflinePolicy
	wb      *badgerdb.WriteBatch
	done    bool
}

// BeginSnapshot starts a snapshot at version; see edge.Cache. The caller
// decides whether the snapshot is worth taking: the cache replaces its state
// with it whatever its version.
func (c *Cache) BeginSnapshot(ctx context.Context, version uint64) (edge.SnapshotWriter, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closed.Load() {
		return nil, edge.ErrClosed
	}
	if p := c.pending; p != nil {
		c.log.Warn("cache: unfinished snapshot dropped for a new one", "version", p.version)
		if err := c.dropPending(); err != nil {
			return nil, err
		}
	}
	w := &snapshotWriter{c: c, gen: c.nextGen, version: version, wb: c.db.NewWriteBatch()}
	c.nextGen++
	c.pending = w
	return w, nil
}

// dropPending cancels the pending snapshot and deletes what it wrote. The
// caller holds wmu.
func (c *Cache) dropPending() error {
	p := c.pending
	c.pending = nil
	p.wb.Cancel()
	if err := c.db.DropPrefix(genPrefix(p.gen)); err != nil {
		return fmt.Errorf("badger: drop snapshot %d: %w", p.version, err)
	}
	return nil
}

// Add validates and writes records; the first invalid one fails the call.
func (w *snapshotWriter) Add(ctx context.Context, records []vsync.Record) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if w.done || w.c.closed.Load() {
		return errAborted
	}
	if err := w.c.guard.check(); err != nil {
		return fmt.Errorf("badger: snapshot: %w", err)
	}
	for i := range records {
		r := &records[i]
		if err := r.Validate(); err != nil {
			return fmt.Errorf("badger: snapshot: %w", err)
		}
		v, err := encodeRecord(r)
		if err != nil {
			return err
		}
		if err := w.wb.Set(recordKey(w.gen, r.Member), v); err != nil {
			return fmt.Errorf("badger: snapshot: write: %w", err)
		}
	}
	return nil
}

// SetPolicy sets the offline policy that Commit makes the cache's.
func (w *snapshotWriter) SetPolicy(p *vsync.OfflinePolicy) { w.policy = p }

// Commit flushes the snapshot, builds its in-memory index, then in one
// Badger write points the cache at the new generation with its version and
// policy, swaps
// the index that lookups read, and deletes the old generation. Lookups see the
// old state until the swap and the new one after: never a mix.
func (w *snapshotWriter) Commit(ctx context.Context) error {
	if w.done {
		return errAborted
	}
	if err := w.wb.Flush(); err != nil {
		_ = w.Abort()
		return fmt.Errorf("badger: snapshot: flush: %w", err)
	}
	c := w.c
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.pending != w || c.closed.Load() {
		return errAborted
	}
	fail := func(err error) error {
		if derr := c.dropPending(); derr != nil {
			c.log.Warn("cache: dropping a failed snapshot", "err", derr)
		}
		w.done = true
		return fmt.Errorf("badger: snapshot %d: %w", w.version, err)
	}
	if err := c.guard.check(); err != nil {
		return fail(err)
	}
	s, err := c.build(ctx, w.gen, w.version)
	if err != nil {
		return fail(err)
	}
	s.policy.Store(w.policy)
	err = c.db.Update(func(txn *badgerdb.Txn) error {
		if err := txn.Set(metaKey, meta(w.gen, w.version)); err != nil {
			return err
		}
		return setPolicy(txn, w.policy)
	})
	if err != nil {
		return fail(err)
	}
	old := c.mem.Swap(s)
	c.pending, w.done = nil, true
	if err := c.db.DropPrefix(genPrefix(old.gen)); err != nil {
		c.log.Warn("cache: old generation not deleted; it will be at the next open", "err", err)
	}
	c.log.Info("cache: snapshot committed", "version", w.version, "members", s.records)
	return nil
}

// Abort drops the snapshot; it is a no-op after Commit.
func (w *snapshotWriter) Abort() error {
	w.c.wmu.Lock()
	defer w.c.wmu.Unlock()
	if w.done || w.c.pending != w {
		w.done = true
		return nil
	}
	w.done = true
	if w.c.closed.Load() {
		return nil
	}
	return w.c.dropPending()
}
