// Package badger keeps varco-edge's two stores on disk with Badger v4
// (github.com/dgraph-io/badger/v4): the decision Cache of the site's access
// records and the passage Journal. They are two databases, <data_dir>/cache
// and <data_dir>/journal, so that the cache's bulk writes (a snapshot of a
// million records, its compactions) never stall a journal append, which a
// reader's answer waits for; and so that a cache that must be thrown away
// (it can always be fetched again) never takes the journal with it.
//
// # Cache
//
// Badger holds each member's vsync.Record, CBOR-encoded as on the wire, under
// 'r' | generation | member, and the key "!meta" holds the current
// generation and the cache version; "!policy" the site's offline policy at
// that version, "!synced" the last moment the sync agent knew the cache in
// sync. A delta's upserts, deletions, new version and policy are one Badger
// transaction; a snapshot's policy is written with its "!meta". A snapshot (or an import) is written
// with a WriteBatch into the next generation, beside the live one, which keeps
// answering and taking deltas; Commit then points "!meta" at the new
// generation and its version in one write and drops the old one. A crash
// before that leaves the old state, and the next open deletes the unfinished
// generation.
//
// Lookups never touch Badger. Two Badger Gets and a CBOR decode per badge
// measured 15 µs at the median and over 100 µs at p99 with a million members
// on the 2-core benchmark machine, against a goal of 10 µs at p99. So the
// cache keeps an in-memory index in front of Badger, built from the current
// generation at open (about 2 s per million members there, on two
// goroutines): an open-addressing table from credential key to a record in an
// append-only arena that holds each record in a compact binary form without
// its keys. A lookup is a hash probe and a decode that reuses the caller's
// Record and points its strings into the arena: no allocation, about 1 µs.
// Badger stays the durable cache the daemon restarts from. It holds no
// credential index of its own: the in-memory one is rebuilt from the records
// at every open anyway, and a stored index would add 16 random, incompressible
// bytes per credential to the disk and two writes per credential to every
// delta. Deltas change the index in place under a lock that lookups share;
// snapshots and compactions of the arena build a new index and swap it in
// atomically, so a lookup sees the old state or the new one, never a mix.
//
// A record that cannot be decoded at open is logged, counted
// (CacheStats.Corrupt, a hint to ask the cloud for a full snapshot) and left
// out. Its credentials are then in no index, so until a delta or a snapshot
// replaces it, a credential that is not found is an error wrapping
// edge.ErrCorrupt rather than an unknown one; so is a lookup that finds
// damaged bytes in memory. The daemon decides edge.Fault for those (reason
// reader-fault, "Please try again"). Nothing panics.
//
// # Journal
//
// Events are stored under 'e' | sequence, CBOR [boot id, vsync.Event], and
// "!last" holds the last sequence number: Append writes both in one
// transaction, so the sequence has no gap whatever happens. DeleteThrough
// writes the acknowledged mark "!acked" first, then deletes in batches; the
// next open finishes a deletion that a crash interrupted. ReadAfter returns
// only events already on disk (it syncs first if needed): the cloud never
// holds an event that a power cut could take back, so no sequence number is
// ever given to two events.
//
// What Append's return guarantees: Badger copies the transaction into its
// write-ahead log, a file mapped MAP_SHARED, before Update returns. Those
// pages belong to the kernel's page cache from then on, so a kill -9 of the
// daemon (or a panic) loses nothing that Append returned, whatever the fsync
// policy (TestJournalKill9 kills a process appending from four goroutines,
// three times, and finds every acknowledged event and no gap). A power cut or
// kernel crash loses what is not yet synced: see edge.FsyncPolicy. With
// FsyncAlways the journal has SyncWrites and every append is msync'ed before
// Append returns; FsyncBatch syncs every BatchInterval from a goroutine the
// Journal owns; FsyncNever leaves it to the kernel (and to ReadAfter).
//
// # Full disk
//
// Badger writes through memory maps of files it extends sparsely: on a full
// file system such a write gets SIGBUS and kills the process instead of
// failing. So every write first checks the space left (statfs) and fails
// with edge.ErrDiskFull below CacheOptions.MinFree (64 MiB) or
// JournalOptions.MinFree (16 MiB): the cache stops taking deltas before the
// journal stops taking passages.
//
// # Options
//
// Tuned for a controller with little memory, a slow SD card or eMMC, 2 cores
// and maybe a 32-bit ARM CPU, for a million members. The cache:
//
//	MemTableSize 8 MiB        the largest delta (1 MiB message, 4096 records) must fit the 15% of it
//	                          that Badger allows a transaction; Badger's 64 MiB default would cost
//	                          ~80 MiB of skiplist arena per memtable
//	NumMemtables 2            one being written, one being flushed (default 5)
//	NumLevelZeroTables 3/8    few level-0 tables: less disk after a burst, writes stall at 8
//	ValueThreshold 64 KiB     every record (at most ~20 KiB at the protocol's limits) stays in the
//	                          LSM tree: no value log to garbage-collect, one read per record
//	ValueLogFileSize 16 MiB   Badger maps a value log file at twice its size: the default 1 GiB
//	                          would take 2 GiB of a 32-bit process's 3 GiB address space
//	Compression ZSTD level 1  32 MB on disk for 1M members against 40 MB with Snappy and 83 MB
//	                          raw, and as much less page cache; decompression only at open
//	                          and for deltas, never for a decision
//	BlockCacheSize 4 MiB      Badger requires one with compression; lookups do not read Badger
//	IndexCacheSize 0          table indexes and bloom filters stay in memory: ~1 MiB for 1M
//	NumVersionsToKeep 1       a cache keeps no history
//	DetectConflicts false     one writer at a time (a mutex): no conflict tracking to pay for
//	NumCompactors 2           one per core (Badger refuses 1)
//	MetricsEnabled false      the daemon exports its own metrics
//	CompactL0OnClose true     a clean stop leaves no level-0 table to compact during the next open
//	SyncWrites false          the cache is a copy of the cloud's state: a power cut can take it
//	                          back to an earlier version (each delta is atomic with its version,
//	                          Badger replays whole transactions), from which it catches up
//
// The journal: MemTableSize 4 MiB (50000 events), NumMemtables 2, small
// tables (1 MiB) and levels (4 MiB), ValueThreshold 4 KiB (events are ~80
// bytes), ValueLogFileSize 4 MiB, no compression and no block cache (little
// data, read once), SyncWrites with FsyncAlways. Badger's log goes to slog,
// its routine Info lines at Debug.
//
// # Memory
//
// With a million members (one card each, 100k blocked) the index takes about
// 56 MiB (arena 31 MiB, table 25 MiB) and Badger about 15 MiB, most of it a
// memtable arena that is never touched when idle. Building the index makes
// garbage, and with Go's default GOGC a process's heap may grow to twice what
// it holds: run the daemon with a soft memory limit (GOMEMLIMIT=96MiB or
// debug.SetMemoryLimit), which keeps its RSS at about 120 MB, of which ~40 MB
// are clean file pages of the tables read at open. A snapshot or a compaction
// of the arena builds a second index beside the first: for a few seconds the
// heap holds both.
package badger
