package edge

import (
	"context"
	"fmt"

	vsync "varco.dev/protocol/sync"
)

// Journal is the edge's passage journal: every decision and alarm, numbered
// with a gap-free sequence that survives restarts, kept until the cloud has
// acknowledged it.
type Journal interface {
	// Append assigns ev the next sequence number and stores it, stamped with
	// the run's boot id, in one write. When it returns without error the
	// event survives a crash of the process; whether it survives a power cut
	// depends on the FsyncPolicy. It returns the sequence number.
	Append(ctx context.Context, ev vsync.Event) (uint64, error)
	// ReadAfter returns up to limit events with sequence numbers above
	// after, oldest first.
	ReadAfter(ctx context.Context, after uint64, limit int) ([]Entry, error)
	// DeleteThrough deletes the events up to seq, which the cloud has
	// acknowledged. An acknowledgement below an earlier one is a no-op.
	DeleteThrough(ctx context.Context, seq uint64) error
	// LastSeq is the sequence number of the last event appended, 0 if none
	// ever was.
	LastSeq() uint64
	// Backlog is the number of events not yet deleted.
	Backlog() uint64
	// Boot is this run's boot id.
	Boot() vsync.BootID
}

// Entry is a journaled event and the boot id of the run that appended it.
type Entry struct {
	Boot vsync.BootID
	vsync.Event
}

// FsyncPolicy says when the journal forces its writes to stable storage.
// Every policy keeps what Append has returned across a crash or kill -9 of
// the daemon: the write is in the operating system's page cache by then. They
// differ on a power cut or kernel crash:
//
//   - FsyncAlways syncs before Append returns: a power cut loses nothing that
//     a reader got an answer for, and each passage waits for the disk (about
//     1–20 ms on an SD card or eMMC).
//   - FsyncBatch (the default) syncs at most every batch interval when there
//     were appends: a power cut loses at most the events of the last interval.
//   - FsyncNever leaves it to the kernel's writeback (about 30 s on Linux by
//     default): a power cut loses up to that much.
//
// An acknowledgement's deletions are never synced on their own: after a
// power cut the cloud may get some events again, and stores them once.
type FsyncPolicy uint8

// The policies.
const (
	FsyncBatch FsyncPolicy = iota
	FsyncAlways
	FsyncNever
)

var fsyncNames = [...]string{FsyncBatch: "batch", FsyncAlways: "always", FsyncNever: "never"}

func (p FsyncPolicy) String() string {
	if int(p) < len(fsyncNames) {
		return fsyncNames[p]
	}
	return fmt.Sprintf("fsync(%d)", uint8(p))
}

// ParseFsyncPolicy parses "always", "batch" or "never", the config's names.
func ParseFsyncPolicy(s string) (FsyncPolicy, error) {
	for p, name := range fsyncNames {
		if name == s {
			return FsyncPolicy(p), nil
		}
	}
	return 0, fmt.Errorf("unknown fsync policy %q (want always, batch or never)", s)
}
