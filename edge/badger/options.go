package badger

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	badgerdb "github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
	"golang.org/x/sys/unix"

	"varco.dev/edge"
)

// cacheOptions are the Badger options of the cache; the package doc says why.
func cacheOptions(dir string, log *slog.Logger) badgerdb.Options {
	return badgerdb.DefaultOptions(dir).
		WithLogger(logger{log.With("db", "cache")}).
		WithMemTableSize(8 << 20).
		WithNumMemtables(2).
		WithNumLevelZeroTables(3).
		WithNumLevelZeroTablesStall(8).
		WithBaseTableSize(2 << 20).
		WithValueThreshold(64 << 10).
		WithValueLogFileSize(16 << 20).
		WithCompression(options.ZSTD).
		WithZSTDCompressionLevel(1).
		WithBlockCacheSize(4 << 20).
		WithIndexCacheSize(0).
		WithNumVersionsToKeep(1).
		WithDetectConflicts(false).
		WithNumCompactors(2).
		WithNumGoroutines(2).
		WithMetricsEnabled(false).
		WithCompactL0OnClose(true).
		WithSyncWrites(false)
}

// journalOptions are the Badger options of the journal.
func journalOptions(dir string, log *slog.Logger, fsync edge.FsyncPolicy) badgerdb.Options {
	return badgerdb.DefaultOptions(dir).
		WithLogger(logger{log.With("db", "journal")}).
		WithMemTableSize(4 << 20).
		WithNumMemtables(2).
		WithNumLevelZeroTables(2).
		WithNumLevelZeroTablesStall(8).
		WithBaseTableSize(1 << 20).
		WithBaseLevelSize(4 << 20).
		WithValueThreshold(4 << 10).
		WithValueLogFileSize(4 << 20).
		WithCompression(options.None).
		WithBlockCacheSize(0).
		WithIndexCacheSize(0).
		WithNumVersionsToKeep(1).
		WithDetectConflicts(false).
		WithNumCompactors(2).
		WithNumGoroutines(1).
		WithMetricsEnabled(false).
		WithSyncWrites(fsync == edge.FsyncAlways)
}

// logger routes Badger's log into slog. Badger's Info lines (tables opened,
// compactions, replays) are routine on a controller and go to Debug.
type logger struct{ l *slog.Logger }

func (l logger) Errorf(f string, a ...any)   { l.log(slog.LevelError, f, a) }
func (l logger) Warningf(f string, a ...any) { l.log(slog.LevelWarn, f, a) }
func (l logger) Infof(f string, a ...any)    { l.log(slog.LevelDebug, f, a) }
func (l logger) Debugf(f string, a ...any)   { l.log(slog.LevelDebug-4, f, a) }

func (l logger) log(level slog.Level, f string, a []any) {
	ctx := context.Background()
	if l.l.Enabled(ctx, level) {
		l.l.Log(ctx, level, "badger: "+strings.TrimSpace(fmt.Sprintf(f, a...)))
	}
}

// diskGuard refuses writes when the file system of dir has less than min
// bytes available. Badger writes its logs and tables through memory maps of
// files it extends sparsely: on a full disk such a write gets SIGBUS and
// kills the process instead of returning ENOSPC. Checking the free space
// before each write turns that into an error wrapping edge.ErrDiskFull.
type diskGuard struct {
	dir string
	min uint64
}

func (g diskGuard) check() error {
	if g.min == 0 {
		return nil
	}
	var st unix.Statfs_t
	if err := unix.Statfs(g.dir, &st); err != nil {
		return nil // cannot tell: let Badger try
	}
	if free := uint64(st.Bavail) * uint64(st.Bsize); free < g.min {
		return fmt.Errorf("%w: %s has %d KiB available, less than the %d KiB kept free", edge.ErrDiskFull, g.dir, free>>10, g.min>>10)
	}
	return nil
}
