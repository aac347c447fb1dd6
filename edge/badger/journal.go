package badger

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	badgerdb "github.com/dgraph-io/badger/v4"
	"github.com/jonboulle/clockwork"

	"varco.dev/edge"
	vsync "varco.dev/protocol/sync"
)

// JournalOptions configure OpenJournal.
type JournalOptions struct {
	// Fsync is when appends are forced to disk (default edge.FsyncBatch).
	Fsync edge.FsyncPolicy
	// BatchInterval is the period of FsyncBatch (default 200 ms).
	BatchInterval time.Duration
	// Clock times FsyncBatch (default the system clock).
	Clock clockwork.Clock
	// Boot is this run's boot id (default a random one).
	Boot vsync.BootID
	// Logger receives the journal's and Badger's log (default slog.Default()).
	Logger *slog.Logger
	// MinFree is the space the file system must keep available for an append
	// (default 16 MiB, below the cache's: the cache stops writing first).
	MinFree uint64
}

// Defaults of JournalOptions.
const (
	DefaultBatchInterval  = 200 * time.Millisecond
	DefaultJournalMinFree = 16 << 20
	deleteBatch           = 4096 // keys deleted per write batch
)

// Journal is the passage journal, in its own Badger database so that the
// cache's bulk writes (snapshots, compactions) never stall an append, which
// the reader's answer waits for. It implements edge.Journal.
type Journal struct {
	db    *badgerdb.DB
	opts  JournalOptions
	log   *slog.Logger
	guard diskGuard

	life    sync.RWMutex // held (read) by every use of db, (write) by Close
	amu     sync.Mutex   // serialises appends: sequence numbers are written in order
	dmu     sync.Mutex   // serialises deletions
	smu     sync.Mutex   // serialises syncs
	last    atomic.Uint64
	acked   atomic.Uint64
	durable atomic.Uint64 // events up to it are synced to disk

	closed    atomic.Bool
	stop      context.CancelFunc
	done      chan struct{}
	afterSync func() // test hook: a batch sync ran
}

var _ edge.Journal = (*Journal)(nil)

// OpenJournal opens or creates the journal in dir (the daemon uses
// <data_dir>/journal) and, with FsyncBatch, starts the goroutine that syncs
// it; Close stops it.
func OpenJournal(ctx context.Context, dir string, opts JournalOptions) (*Journal, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if opts.Fsync > edge.FsyncNever {
		return nil, fmt.Errorf("badger: journal: unknown fsync policy %d", opts.Fsync)
	}
	opts.BatchInterval = cmp.Or(opts.BatchInterval, DefaultBatchInterval)
	opts.Clock = cmp.Or(opts.Clock, clockwork.NewRealClock())
	opts.Logger = cmp.Or(opts.Logger, slog.Default())
	opts.MinFree = cmp.Or(opts.MinFree, DefaultJournalMinFree)
	for opts.Boot == 0 {
		opts.Boot = vsync.BootID(rand.Uint64())
	}
	db, err := badgerdb.Open(journalOptions(dir, opts.Logger, opts.Fsync))
	if err != nil {
		return nil, fmt.Errorf("badger: open journal %s: %w", dir, err)
	}
	j := &Journal{db: db, opts: opts, log: opts.Logger, guard: diskGuard{dir, opts.MinFree}, done: make(chan struct{})}
	if err := j.load(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("badger: open journal %s: %w", dir, err)
	}
	j.log.Info("journal: open", "boot", uint64(opts.Boot), "last_seq", j.last.Load(), "backlog", j.Backlog(), "fsync", opts.Fsync.String())
	if opts.Fsync != edge.FsyncBatch {
		close(j.done)
		j.stop = func() {}
		return j, nil
	}
	loopCtx, stop := context.WithCancel(context.Background())
	j.stop = stop
	ticker := opts.Clock.NewTicker(opts.BatchInterval)
	go j.syncLoop(loopCtx, ticker)
	return j, nil
}

// load reads the counters and deletes events left below the acknowledged
// mark by a crash during DeleteThrough.
func (j *Journal) load(ctx context.Context) error {
	var stale [][]byte
	err := j.db.View(func(txn *badgerdb.Txn) error {
		for _, c := range []struct {
			key []byte
			v   *atomic.Uint64
		}{{lastKey, &j.last}, {ackedKey, &j.acked}} {
			item, err := txn.Get(c.key)
			if errors.Is(err, badgerdb.ErrKeyNotFound) {
				continue
			} else if err != nil {
				return err
			}
			if err := item.Value(func(v []byte) error {
				n, err := parseU64(v)
				c.v.Store(n)
				return err
			}); err != nil {
				return err
			}
		}
		it := txn.NewIterator(badgerdb.IteratorOptions{Prefix: []byte{'e'}})
		defer it.Close()
		end := eventKey(j.acked.Load() + 1)
		for it.Rewind(); it.Valid() && string(it.Item().Key()) < string(end); it.Next() {
			stale = append(stale, it.Item().KeyCopy(nil))
		}
		return nil
	})
	if err != nil {
		return err
	}
	if j.acked.Load() > j.last.Load() {
		return fmt.Errorf("%w: acknowledged %d beyond last %d", edge.ErrCorrupt, j.acked.Load(), j.last.Load())
	}
	// What a killed process left in the page cache is on disk after this.
	if err := j.db.Sync(); err != nil {
		return err
	}
	j.durable.Store(j.last.Load())
	return j.deleteKeys(ctx, stale)
}

func (j *Journal) syncLoop(ctx context.Context, ticker clockwork.Ticker) {
	defer close(j.done)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.Chan():
			if _, err := j.sync(); err != nil {
				j.log.Error("journal: sync failed", "err", err)
			}
			if j.afterSync != nil {
				j.afterSync()
			}
		}
	}
}

// sync makes every event appended so far durable, if it is not yet, and
// returns the last sequence number that is.
func (j *Journal) sync() (uint64, error) {
	j.smu.Lock()
	defer j.smu.Unlock()
	last := j.last.Load() // written before it was stored, so the sync covers it
	if last <= j.durable.Load() {
		return last, nil
	}
	if err := j.db.Sync(); err != nil {
		return j.durable.Load(), fmt.Errorf("badger: journal sync: %w", err)
	}
	j.durable.Store(last)
	return last, nil
}

// Append stores ev with the next sequence number; see edge.Journal.
func (j *Journal) Append(ctx context.Context, ev vsync.Event) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if err := j.guard.check(); err != nil {
		return 0, fmt.Errorf("badger: journal append: %w", err)
	}
	j.life.RLock()
	defer j.life.RUnlock()
	j.amu.Lock()
	defer j.amu.Unlock()
	if j.closed.Load() {
		return 0, edge.ErrClosed
	}
	seq := j.last.Load() + 1
	ev.Seq = seq
	v, err := encMode.Marshal(storedEvent{Boot: j.opts.Boot, Event: ev})
	if err != nil {
		return 0, fmt.Errorf("badger: journal append: %w", err)
	}
	err = j.db.Update(func(txn *badgerdb.Txn) error {
		if err := txn.Set(eventKey(seq), v); err != nil {
			return err
		}
		return txn.Set(lastKey, u64(seq))
	})
	if err != nil {
		return 0, fmt.Errorf("badger: journal append %d: %w", seq, err)
	}
	j.last.Store(seq)
	if j.opts.Fsync == edge.FsyncAlways {
		j.durable.Store(seq) // Badger synced it (SyncWrites)
	}
	return seq, nil
}

// ReadAfter returns up to limit events after sequence after, oldest first.
// It returns only events that are on disk, syncing the journal first if it
// has to: the cloud never gets an event that a power cut could then take from
// the journal, so a sequence number that the cloud holds is never given to
// another event. A stored event that cannot be decoded ends the read with an
// error wrapping edge.ErrCorrupt and naming its sequence number, after the
// events before it.
func (j *Journal) ReadAfter(ctx context.Context, after uint64, limit int) ([]edge.Entry, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	j.life.RLock()
	defer j.life.RUnlock()
	if j.closed.Load() {
		return nil, edge.ErrClosed
	}
	last, err := j.sync()
	if err != nil {
		return nil, err
	}
	after = max(after, j.acked.Load())
	n := min(uint64(max(limit, 0)), last-min(after, last))
	if n == 0 {
		return nil, nil
	}
	out := make([]edge.Entry, 0, n)
	err = j.db.View(func(txn *badgerdb.Txn) error {
		it := txn.NewIterator(badgerdb.IteratorOptions{Prefix: []byte{'e'}, PrefetchValues: true, PrefetchSize: 64})
		defer it.Close()
		for it.Seek(eventKey(after + 1)); it.Valid() && uint64(len(out)) < n; it.Next() {
			item := it.Item()
			err := item.Value(func(v []byte) error {
				e, err := decodeEvent(v)
				out = append(out, e)
				return err
			})
			if err != nil {
				out = out[:len(out)-1]
				return fmt.Errorf("event %x: %w", item.Key()[1:], err)
			}
		}
		return nil
	})
	if err != nil {
		return out, fmt.Errorf("badger: journal read after %d: %w", after, err)
	}
	return out, nil
}

// DeleteThrough deletes the events up to seq; see edge.Journal. A seq beyond
// LastSeq (the cloud acknowledges a journal this disk no longer has) deletes
// every event. It records the mark first and then deletes, in batches, so
// that appends never wait for it and a crash leaves only events below the
// mark, which the next open deletes.
func (j *Journal) DeleteThrough(ctx context.Context, seq uint64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	j.life.RLock()
	defer j.life.RUnlock()
	j.dmu.Lock()
	defer j.dmu.Unlock()
	if j.closed.Load() {
		return edge.ErrClosed
	}
	if last := j.last.Load(); seq > last {
		j.log.Warn("journal: acknowledgement beyond the last event", "ack", seq, "last_seq", last)
		seq = last
	}
	from := j.acked.Load() + 1
	if seq < from {
		return nil
	}
	if err := j.db.Update(func(txn *badgerdb.Txn) error { return txn.Set(ackedKey, u64(seq)) }); err != nil {
		return fmt.Errorf("badger: journal delete through %d: %w", seq, err)
	}
	j.acked.Store(seq)
	keys := make([][]byte, 0, min(seq-from+1, deleteBatch))
	for s := from; s <= seq; s++ {
		if keys = append(keys, eventKey(s)); len(keys) == cap(keys) || s == seq {
			if err := j.deleteKeys(ctx, keys); err != nil {
				return fmt.Errorf("badger: journal delete through %d: %w", seq, err)
			}
			keys = keys[:0]
		}
	}
	return nil
}

func (j *Journal) deleteKeys(ctx context.Context, keys [][]byte) error {
	if len(keys) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	wb := j.db.NewWriteBatch()
	defer wb.Cancel()
	for _, k := range keys {
		if err := wb.Delete(k); err != nil {
			return err
		}
	}
	return wb.Flush()
}

// LastSeq is the sequence of the last event appended.
func (j *Journal) LastSeq() uint64 { return j.last.Load() }

// Backlog is the number of events appended and not yet deleted.
func (j *Journal) Backlog() uint64 { return j.last.Load() - j.acked.Load() }

// Boot is this run's boot id.
func (j *Journal) Boot() vsync.BootID { return j.opts.Boot }

// Sync forces every event appended so far to disk.
func (j *Journal) Sync() error {
	j.life.RLock()
	defer j.life.RUnlock()
	if j.closed.Load() {
		return edge.ErrClosed
	}
	_, err := j.sync()
	return err
}

// Unsynced is the number of events appended and not yet known to be on
// disk: what a power cut could take now.
func (j *Journal) Unsynced() uint64 { return j.last.Load() - min(j.durable.Load(), j.last.Load()) }

// Close stops the sync goroutine and closes Badger, which writes what it
// holds in memory to disk.
func (j *Journal) Close() error {
	if j.closed.Load() {
		return nil
	}
	j.stop() // the sync loop ends before Badger closes
	<-j.done
	j.life.Lock()
	defer j.life.Unlock()
	if j.closed.Swap(true) {
		return nil
	}
	if err := j.db.Close(); err != nil {
		return fmt.Errorf("badger: close journal: %w", err)
	}
	return nil
}
