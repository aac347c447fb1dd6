// Package importer is the logic of `varco-edge import FILE`: it fills the
// edge's cache with the access records of a file, for a first installation
// before the edge has talked to the cloud, or a site run without it.
//
// The file is NDJSON (one record per line, see ParseLine for the shape) or
// the sync protocol's snapshot format (one or more vsync.Snapshot messages,
// each a complete CBOR envelope as vsync.Marshal writes it, one after the
// other, chunk 0's offline policy included); Import tells them apart by the
// first byte. Signatures are not checked: the operator chose the file. The import is a
// snapshot of the cache (edge.Cache.BeginSnapshot): the records are written
// beside the cache's current state, which the new one replaces at once when
// the whole file has been read. A bad line, or a chunk missing from a
// snapshot, stops the import with the line number or the chunk, and leaves
// the cache as it was: a cache that holds part of a file would deny members
// who should pass.
package importer

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/fxamacker/cbor/v2"

	"varco.dev/edge"
	vsync "varco.dev/protocol/sync"
)

// Options configure an import.
type Options struct {
	// TenantKey hashes the canonical credential ids of an NDJSON file
	// (vsync.CredentialHash); needed if the file has "id" credentials.
	TenantKey []byte
	// Version is the cache version after an NDJSON import (default 0, an
	// empty cache's, which makes the sync agent ask the cloud for everything
	// it has; set it to the version the file was exported at). A snapshot
	// file has its own; if Version is set it must match.
	Version uint64
	// Tenant and Site, if set, must be those of a snapshot file.
	Tenant, Site string
	// Progress is called every Every records (default 10000) and once at the
	// end with Done set.
	Progress func(Progress)
	Every    int
}

// Progress is how far an import is.
type Progress struct {
	Records int64 // records read
	Bytes   int64 // bytes read
	Total   int64 // size of the file, 0 if unknown
	Done    bool
}

// Stats describe a finished import.
type Stats struct {
	Format  string // "ndjson" or "snapshot"
	Records int64
	Version uint64
	Took    time.Duration
}

// batch is how many records go to the cache in one SnapshotWriter.Add.
const batch = 1024

// Import imports the file at path into c; see the package doc.
func Import(ctx context.Context, c edge.Cache, path string, opts Options) (Stats, error) {
	f, err := os.Open(path)
	if err != nil {
		return Stats{}, fmt.Errorf("import: %w", err)
	}
	defer f.Close()
	var size int64
	if fi, err := f.Stat(); err == nil {
		size = fi.Size()
	}
	st, err := ImportFrom(ctx, c, f, size, opts)
	if err != nil {
		return st, fmt.Errorf("import %s: %w", path, err)
	}
	return st, nil
}

// ImportFrom imports from r, which holds size bytes (0 if unknown).
func ImportFrom(ctx context.Context, c edge.Cache, r io.Reader, size int64, opts Options) (Stats, error) {
	start := time.Now()
	opts.Every = cmp.Or(opts.Every, 10000)
	cr := &countingReader{r: r}
	br := bufio.NewReaderSize(cr, 64<<10)
	im := &importer{c: c, opts: opts, in: cr, total: size,
		members: make(map[vsync.MemberRef]int32), creds: make(map[vsync.CredentialKey]vsync.MemberRef)}
	first, err := firstByte(br)
	switch {
	case errors.Is(err, io.EOF):
		err = errors.New("empty file")
	case err != nil:
	case first == '{':
		im.st.Format = "ndjson"
		err = im.ndjson(ctx, br)
	default:
		im.st.Format = "snapshot"
		err = im.snapshot(ctx, br)
	}
	if err == nil {
		err = im.commit(ctx)
	}
	if err != nil {
		if im.w != nil {
			_ = im.w.Abort()
		}
		return im.st, err
	}
	im.st.Took = time.Since(start)
	im.progress(true)
	return im.st, nil
}

type importer struct {
	c     edge.Cache
	opts  Options
	in    *countingReader
	total int64
	w     edge.SnapshotWriter
	buf   []vsync.Record
	st    Stats
	// Where each member and credential was seen, to report duplicates.
	members map[vsync.MemberRef]int32
	creds   map[vsync.CredentialKey]vsync.MemberRef
}

func (im *importer) begin(ctx context.Context, version uint64) error {
	w, err := im.c.BeginSnapshot(ctx, version)
	if err != nil {
		return err
	}
	im.w, im.st.Version = w, version
	return nil
}

// add queues a record read at line or chunk pos.
func (im *importer) add(ctx context.Context, r vsync.Record, pos int) error {
	if other, dup := im.members[r.Member]; dup {
		return fmt.Errorf("%s: member %d again (first on %s)", im.where(pos), r.Member, im.where(int(other)))
	}
	im.members[r.Member] = int32(pos)
	for _, c := range r.Credentials {
		if other, dup := im.creds[c.Key]; dup {
			return fmt.Errorf("%s: member %d: credential %s is also member %d's (%s)", im.where(pos), r.Member, c.Key, other,
				im.where(int(im.members[other])))
		}
		im.creds[c.Key] = r.Member
	}
	im.buf = append(im.buf, r)
	im.st.Records++
	if len(im.buf) == batch {
		if err := im.flush(ctx); err != nil {
			return err
		}
	}
	if im.st.Records%int64(im.opts.Every) == 0 {
		im.progress(false)
	}
	return nil
}

func (im *importer) where(pos int) string {
	if im.st.Format == "ndjson" {
		return fmt.Sprint("line ", pos)
	}
	return fmt.Sprint("chunk ", pos)
}

func (im *importer) flush(ctx context.Context) error {
	if len(im.buf) == 0 {
		return nil
	}
	err := im.w.Add(ctx, im.buf)
	im.buf = im.buf[:0]
	return err
}

func (im *importer) commit(ctx context.Context) error {
	if err := im.flush(ctx); err != nil {
		return err
	}
	im.members, im.creds = nil, nil // the cache needs the memory now
	return im.w.Commit(ctx)
}

func (im *importer) progress(done bool) {
	if im.opts.Progress != nil {
		im.opts.Progress(Progress{Records: im.st.Records, Bytes: im.in.n, Total: im.total, Done: done})
	}
}

// MaxLine is the longest NDJSON line accepted: a record at the protocol's
// limits, with every text escaped, is well below it.
const MaxLine = 1 << 20

// ndjson reads lines in batches and parses each batch on every core, then
// adds its records in line order.
func (im *importer) ndjson(ctx context.Context, r io.Reader) error {
	if err := im.begin(ctx, im.opts.Version); err != nil {
		return err
	}
	type parsed struct {
		line int
		text []byte
		rec  vsync.Record
		err  error
	}
	workers := runtime.GOMAXPROCS(0)
	lines := make([]parsed, 0, batch)
	parse := func() error {
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				for i := w; i < len(lines); i += workers {
					lines[i].rec, lines[i].err = ParseLine(lines[i].text, im.opts.TenantKey)
				}
			})
		}
		wg.Wait()
		for i := range lines {
			if l := &lines[i]; l.err != nil {
				return fmt.Errorf("line %d: %w", l.line, l.err)
			} else if err := im.add(ctx, l.rec, l.line); err != nil {
				return err
			}
		}
		lines = lines[:0]
		return ctx.Err()
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), MaxLine)
	line := 0
	for sc.Scan() {
		line++
		if b := bytes.TrimSpace(sc.Bytes()); len(b) > 0 {
			lines = append(lines, parsed{line: line, text: bytes.Clone(b)})
		}
		if len(lines) == cap(lines) {
			if err := parse(); err != nil {
				return err
			}
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return fmt.Errorf("line %d: longer than %d bytes", line+1, MaxLine)
		}
		return fmt.Errorf("line %d: %w", line+1, err)
	}
	return parse()
}

// snapshot reads a sequence of Snapshot messages: the chunks of one
// snapshot, in any order, duplicates ignored, all of them required.
func (im *importer) snapshot(ctx context.Context, r io.Reader) error {
	dec := cbor.NewDecoder(r)
	var first *vsync.Snapshot
	var seen []bool
	missing := 0
	for n := 1; ; n++ {
		var raw cbor.RawMessage
		if err := dec.Decode(&raw); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return fmt.Errorf("message %d: %w", n, err)
		}
		msg, err := vsync.Unmarshal(raw)
		if err != nil {
			return fmt.Errorf("message %d: %w", n, err)
		}
		s, ok := msg.(*vsync.Snapshot)
		if !ok {
			return fmt.Errorf("message %d: a %s, not a snapshot", n, msg.Kind())
		}
		if first == nil {
			switch {
			case im.opts.Version != 0 && s.Version != im.opts.Version:
				return fmt.Errorf("snapshot at version %d, not %d", s.Version, im.opts.Version)
			case im.opts.Tenant != "" && s.Tenant != im.opts.Tenant, im.opts.Site != "" && s.Site != im.opts.Site:
				return fmt.Errorf("snapshot of tenant %s site %s, not %s %s", s.Tenant, s.Site, im.opts.Tenant, im.opts.Site)
			}
			if err := im.begin(ctx, s.Version); err != nil {
				return err
			}
			first, seen, missing = s, make([]bool, s.Chunks), int(s.Chunks)
		} else if s.ID != first.ID || s.Version != first.Version || s.Chunks != first.Chunks || s.Tenant != first.Tenant || s.Site != first.Site {
			return fmt.Errorf("message %d: chunk of snapshot %d (version %d, %d chunks), not of %d (version %d, %d chunks)",
				n, s.ID, s.Version, s.Chunks, first.ID, first.Version, first.Chunks)
		}
		if seen[s.Chunk] {
			continue
		}
		seen[s.Chunk] = true
		missing--
		if s.Chunk == 0 {
			im.w.SetPolicy(s.Policy)
		}
		for _, rec := range s.Records {
			if err := im.add(ctx, rec, int(s.Chunk)); err != nil {
				return err
			}
		}
	}
	if first == nil {
		return errors.New("no snapshot in the file")
	}
	if missing > 0 {
		var list []uint32
		for i, ok := range seen {
			if !ok && len(list) < 10 {
				list = append(list, uint32(i))
			}
		}
		return fmt.Errorf("snapshot %d: %d of %d chunks missing (%v...)", first.ID, missing, first.Chunks, list)
	}
	return nil
}

func firstByte(br *bufio.Reader) (byte, error) {
	for {
		b, err := br.ReadByte()
		if err != nil {
			return 0, err
		}
		if b != ' ' && b != '\t' && b != '\r' && b != '\n' {
			return b, br.UnreadByte()
		}
	}
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
