package badger

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"unsafe"

	"varco.dev/edge"
	vsync "varco.dev/protocol/sync"
)

// The arena holds the records in a compact binary form (see appendCompact)
// in chunks of chunkSize bytes. A ref names a record and one of its
// credentials: the record's offset in the arena times 16 plus the index of
// the credential, so the arena can grow to maxArena bytes.
const (
	chunkBits = 16
	chunkSize = 1 << chunkBits
	credBits  = 4 // vsync.MaxCredentials = 16
	maxArena  = 1 << (32 - credBits)
)

type ref uint32

func (r ref) offset() int  { return int(r >> credBits) }
func (r ref) credIdx() int { return int(r & (1<<credBits - 1)) }

// memState is the cache's in-memory index: every record that has a
// credential, in the arena, and a map from credential key to ref. It is built
// from one generation of the Badger keyspace, changed in place by deltas
// under mu, and replaced as a whole (a snapshot, a compaction).
//
// The arena is append-only: bytes once written are never changed, so the
// strings that lookups return point into it (unsafe.String) and stay valid
// for as long as they are referenced, whatever happens to the state.
type memState struct {
	gen     uint32
	version atomic.Uint64
	policy  atomic.Pointer[vsync.OfflinePolicy] // the site's offline policy at version; nil: none

	mu      sync.RWMutex
	idx     *credIndex
	chunks  [][]byte
	used    int   // bytes used in the last chunk
	live    int64 // bytes of the records in the index
	dead    int64 // bytes of records replaced or deleted since the build
	records int
	// corrupt are the members whose stored record could not be read (0 for
	// a malformed key), until a delta or snapshot replaces it. Their
	// credentials are not in the index, so while there are any, a credential
	// that is not found may be one of theirs.
	corrupt map[vsync.MemberRef]struct{}
}

func newMemState(gen uint32, version uint64, sizeHint int) *memState {
	s := &memState{gen: gen, idx: newCredIndex(sizeHint), corrupt: map[vsync.MemberRef]struct{}{}}
	s.version.Store(version)
	return s
}

var errArenaFull = errors.New("badger: in-memory index full (256 MiB of records)")

// put adds rec, whose compact form is b (appendCompact), to the arena and
// its credentials to the index; a credential that was another member's is
// taken over (the cloud moved it) and counted in conflicts. Records without
// credentials cannot be looked up and are not kept. The caller holds mu.
func (s *memState) put(rec *vsync.Record, b []byte) (conflicts int, _ error) {
	if len(rec.Credentials) == 0 {
		return 0, nil
	}
	if len(b) > chunkSize {
		return 0, fmt.Errorf("badger: member %d: record of %d bytes", rec.Member, len(b))
	}
	if len(s.chunks) == 0 || s.used+len(b) > chunkSize {
		if (len(s.chunks)+1)*chunkSize > maxArena {
			return 0, errArenaFull
		}
		s.chunks = append(s.chunks, make([]byte, chunkSize))
		s.used = 0
	}
	off := (len(s.chunks)-1)*chunkSize + s.used
	s.used += copy(s.chunks[len(s.chunks)-1][s.used:], b)
	for i, c := range rec.Credentials {
		if old, ok := s.idx.get(c.Key); ok && s.memberAt(old) != rec.Member {
			conflicts++
		}
		s.idx.set(c.Key, ref(off<<credBits|i))
	}
	s.live += int64(len(b))
	s.records++
	return conflicts, nil
}

// remove takes member's credentials keys out of the index, those that are
// still member's, and counts its record as dead. The caller holds mu.
func (s *memState) remove(member vsync.MemberRef, keys []vsync.CredentialKey) {
	found := false
	for _, k := range keys {
		r, ok := s.idx.get(k)
		if !ok || s.memberAt(r) != member {
			continue
		}
		s.idx.delete(k)
		if !found {
			found = true
			n := compactLen(s.at(r.offset()))
			s.live -= int64(n)
			s.dead += int64(n)
			s.records--
		}
	}
}

func (s *memState) at(off int) []byte {
	return s.chunks[off>>chunkBits][off&(chunkSize-1):]
}

func (s *memState) memberAt(r ref) vsync.MemberRef {
	m, _ := binary.Uvarint(s.at(r.offset()))
	return vsync.MemberRef(m)
}

// lookup fills into with the record of key.
func (s *memState) lookup(key vsync.CredentialKey, into *vsync.Record) (bool, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	r, ok := s.idx.get(key)
	if !ok {
		if n := len(s.corrupt); n > 0 {
			return false, fmt.Errorf("%w: credential %s not found, and %d stored records are unreadable", edge.ErrCorrupt, key, n)
		}
		return false, nil
	}
	if _, err := decodeCompact(s.at(r.offset()), r.credIdx(), key, into); err != nil {
		return false, fmt.Errorf("badger: credential %s: %w", key, err)
	}
	return true, nil
}

// needsCompaction reports whether replaced records take more of the arena
// than live ones, and enough of it to be worth a rebuild.
func (s *memState) needsCompaction() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.dead > s.live && s.dead > 8<<20
}

// appendCompact appends the compact form of r to b. It is what the arena
// holds: uvarints, bytes and length-prefixed strings, without the credential
// keys, which are the index's keys.
//
//	member uvarint, flags byte (1: suspended), devices uvarint
//	n byte, n × credential window (from uvarint, until uvarint)
//	n byte, n × validity window
//	n byte, n × site string
//	n byte, n × action (id uvarint, mode byte, devices uvarint, priority byte, text string)
//	n byte, n × notice (priority byte, window, text string)
func appendCompact(b []byte, r *vsync.Record) []byte {
	b = binary.AppendUvarint(b, uint64(r.Member))
	var flags byte
	if r.Suspended {
		flags |= 1
	}
	b = append(b, flags)
	b = binary.AppendUvarint(b, uint64(r.Devices))
	b = append(b, byte(len(r.Credentials)))
	for _, c := range r.Credentials {
		b = appendWindow(b, c.Valid)
	}
	b = append(b, byte(len(r.Valid)))
	for _, w := range r.Valid {
		b = appendWindow(b, w)
	}
	b = append(b, byte(len(r.Sites)))
	for _, s := range r.Sites {
		b = appendString(b, s)
	}
	b = append(b, byte(len(r.Actions)))
	for _, a := range r.Actions {
		b = binary.AppendUvarint(b, a.ID)
		b = append(b, byte(a.Mode))
		b = binary.AppendUvarint(b, uint64(a.Devices))
		b = append(b, a.Priority)
		b = appendString(b, a.Text)
	}
	b = append(b, byte(len(r.Notices)))
	for _, n := range r.Notices {
		b = append(b, n.Priority)
		b = appendWindow(b, n.Valid)
		b = appendString(b, n.Text)
	}
	return b
}

func appendWindow(b []byte, w vsync.Window) []byte {
	return binary.AppendUvarint(binary.AppendUvarint(b, uint64(w.From)), uint64(w.Until))
}

func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

// decoder reads the compact form; it never reads out of bounds, and a bad
// length or a truncation sets bad.
type decoder struct {
	b   []byte
	i   int
	bad bool
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b[d.i:])
	if n <= 0 {
		d.bad, d.i = true, len(d.b)
		return 0
	}
	d.i += n
	return v
}

func (d *decoder) byte() byte {
	if d.i >= len(d.b) {
		d.bad = true
		return 0
	}
	d.i++
	return d.b[d.i-1]
}

// count reads a count of items of at least one byte each.
func (d *decoder) count() int {
	n := int(d.byte())
	if n > len(d.b)-d.i {
		d.bad, d.i = true, len(d.b)
		return 0
	}
	return n
}

func (d *decoder) window() vsync.Window {
	return vsync.Window{From: vsync.Timestamp(d.uvarint()), Until: vsync.Timestamp(d.uvarint())}
}

// str returns the next string without copying: it shares the bytes, which
// the arena never changes.
func (d *decoder) str() string {
	n := d.uvarint()
	if n > uint64(len(d.b)-d.i) {
		d.bad, d.i = true, len(d.b)
		return ""
	}
	s := unsafe.String(unsafe.SliceData(d.b[d.i:]), int(n))
	d.i += int(n)
	return s
}

var errCompact = fmt.Errorf("%w: bad in-memory record", edge.ErrCorrupt)

// decodeCompact decodes the record at the start of b into into, reusing its
// slices. Of the credentials it keeps only the credIdx-th, with key key
// (credIdx -1: none). It returns the record's length in bytes.
func decodeCompact(b []byte, credIdx int, key vsync.CredentialKey, into *vsync.Record) (int, error) {
	d := decoder{b: b}
	into.Member = vsync.MemberRef(d.uvarint())
	into.Suspended = d.byte()&1 != 0
	into.Devices = vsync.DeviceSet(d.uvarint())
	into.Credentials = into.Credentials[:0]
	for i, n := 0, d.count(); i < n; i++ {
		if w := d.window(); i == credIdx {
			into.Credentials = append(into.Credentials, vsync.Credential{Key: key, Valid: w})
		}
	}
	into.Valid = into.Valid[:0]
	for n := d.count(); n > 0; n-- {
		into.Valid = append(into.Valid, d.window())
	}
	into.Sites = into.Sites[:0]
	for n := d.count(); n > 0; n-- {
		into.Sites = append(into.Sites, d.str())
	}
	into.Actions = into.Actions[:0]
	for n := d.count(); n > 0; n-- {
		into.Actions = append(into.Actions, vsync.Action{ID: d.uvarint(), Mode: vsync.AccessMode(d.byte()),
			Devices: vsync.DeviceSet(d.uvarint()), Priority: d.byte(), Text: d.str()})
	}
	into.Notices = into.Notices[:0]
	for n := d.count(); n > 0; n-- {
		into.Notices = append(into.Notices, vsync.Notice{Priority: d.byte(), Valid: d.window(), Text: d.str()})
	}
	if d.bad {
		return 0, errCompact
	}
	return d.i, nil
}

// compactLen returns the length of the record at the start of b.
func compactLen(b []byte) int {
	var r vsync.Record
	n, _ := decodeCompact(b, -1, vsync.CredentialKey{}, &r)
	return n
}
