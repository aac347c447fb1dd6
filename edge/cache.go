package edge

import (
	"context"
	"errors"
	"fmt"
	"time"

	vsync "varco.dev/protocol/sync"
)

// Errors of the stores, wrapped with context by their implementations: test
// for them with errors.Is.
var (
	// ErrGap: a delta does not follow the cache version (see GapError).
	ErrGap = errors.New("delta does not follow the cache version")
	// ErrCorrupt: a stored record or event cannot be decoded.
	ErrCorrupt = errors.New("corrupt data")
	// ErrDiskFull: the store refused a write because its file system is
	// (nearly) full.
	ErrDiskFull = errors.New("disk full")
	// ErrClosed: the store is closed.
	ErrClosed = errors.New("store closed")
)

// GapError is the error of a delta that can be neither applied nor skipped:
// its Prev is not the cache version Have (vsync.StepCatchUp). The sync agent
// answers with a CatchUp from Have.
type GapError struct {
	Have, Prev, Version uint64
}

func (e *GapError) Error() string {
	return fmt.Sprintf("delta %d→%d does not follow cache version %d", e.Prev, e.Version, e.Have)
}

// Is makes errors.Is(err, ErrGap) true.
func (e *GapError) Is(target error) bool { return target == ErrGap }

// Cache is the edge's copy of its site's access records, keyed by
// credential, at a version of the site's state (see vsync.Delta), with the
// site's offline policy at that version and the last moment the sync agent
// knew the cache to be in sync with the cloud.
type Cache interface {
	// Lookup fills into with the record that holds credential key and
	// reports whether there is one. It reuses into's slices, so a caller
	// that keeps one Record per goroutine looks up without allocating; the
	// strings it sets are immutable and stay valid after later calls. Only
	// the credential looked up is in into.Credentials. An error (ErrCorrupt,
	// ErrClosed) means the cache could not say: decide with Fault.
	Lookup(key vsync.CredentialKey, into *vsync.Record) (bool, error)
	// Version is the site version the cache holds, 0 for an empty cache.
	Version() uint64
	// Policy is the site's offline policy at Version, nil if it has none.
	// It does not allocate; the policy returned is never changed.
	Policy() *vsync.OfflinePolicy
	// ApplyDelta applies d if d.Prev is the cache version (StepApply),
	// ignores it if it is not newer than the cache (StepSkip), and returns
	// StepCatchUp and a *GapError otherwise. Upserts, deletions, the new
	// version and d.Policy (if set: nil leaves the policy as it was) are
	// written in one transaction.
	ApplyDelta(ctx context.Context, d *vsync.Delta) (vsync.Step, error)
	// BeginSnapshot starts writing a complete new state at version beside
	// the live one, which keeps answering until Commit swaps them at once.
	// A snapshot already begun and not committed is aborted.
	BeginSnapshot(ctx context.Context, version uint64) (SnapshotWriter, error)
	// Synced is the last moment the cache was known to be in sync with the
	// cloud, as SetSynced stored it; the zero time if it never was.
	Synced() time.Time
	// SetSynced stores t as the last moment in sync, durably enough that a
	// restart does not count the edge's staleness from the restart.
	SetSynced(ctx context.Context, t time.Time) error
}

// SnapshotWriter writes a new state of the cache beside the live one.
type SnapshotWriter interface {
	// Add adds records; adding a member again replaces it.
	Add(ctx context.Context, records []vsync.Record) error
	// SetPolicy sets the site's offline policy of the new state (a
	// snapshot's chunk 0 carries it); nil, the default, is no policy.
	SetPolicy(p *vsync.OfflinePolicy)
	// Commit makes the new state, its version and its policy the cache's in
	// one step.
	Commit(ctx context.Context) error
	// Abort drops the new state. It is a no-op after Commit.
	Abort() error
}

// DecideCached looks in.Credential up in c and decides. scratch is the
// caller's Record, reused across calls (one per goroutine); the decision's
// strings stay valid after scratch is reused. If the lookup fails, it
// returns Fault and the error, for the log.
func DecideCached(c Cache, scratch *vsync.Record, in Input) (Decision, error) {
	found, err := c.Lookup(in.Credential, scratch)
	switch {
	case err != nil:
		return Fault(in), err
	case !found:
		return Decide(nil, in), nil
	}
	return Decide(scratch, in), nil
}
