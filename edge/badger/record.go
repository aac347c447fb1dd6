package badger

import (
	"encoding/binary"
	"fmt"

	badgerdb "github.com/dgraph-io/badger/v4"
	"github.com/fxamacker/cbor/v2"

	"varco.dev/edge"
	vsync "varco.dev/protocol/sync"
)

// Keys. The cache keeps each member's record under its generation, so that
// a snapshot is written beside the live state and swapped by one write of the
// meta key:
//
//	"!meta"                              generation uint32 | version uint64, big endian
//	"!policy"                            CBOR of the vsync.OfflinePolicy at that version; absent: none
//	"!synced"                            unix milliseconds of the last moment in sync, uint64
//	'r' | generation uint32 | member uint64   CBOR of the vsync.Record
//
// The journal:
//
//	"!last"               sequence of the last event appended, uint64
//	"!acked"              sequence up to which events were deleted, uint64
//	'e' | seq uint64      CBOR of [boot, vsync.Event]
var (
	metaKey   = []byte("!meta")
	policyKey = []byte("!policy")
	syncedKey = []byte("!synced")
	lastKey   = []byte("!last")
	ackedKey  = []byte("!acked")
)

func genPrefix(gen uint32) []byte { return binary.BigEndian.AppendUint32([]byte{'r'}, gen) }

func recordKey(gen uint32, m vsync.MemberRef) []byte {
	return binary.BigEndian.AppendUint64(genPrefix(gen), uint64(m))
}

func eventKey(seq uint64) []byte { return binary.BigEndian.AppendUint64([]byte{'e'}, seq) }

func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func parseU64(b []byte) (uint64, error) {
	if len(b) != 8 {
		return 0, fmt.Errorf("%w: counter of %d bytes", edge.ErrCorrupt, len(b))
	}
	return binary.BigEndian.Uint64(b), nil
}

// The CBOR modes: the sync protocol's deterministic encoding, and a decoder
// with its limits, for bytes that a disk may have damaged.
var (
	encMode = mustEncMode()
	decMode = mustDecMode()
)

func mustEncMode() cbor.EncMode {
	em, err := cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		panic(err)
	}
	return em
}

func mustDecMode() cbor.DecMode {
	dm, err := cbor.DecOptions{
		DupMapKey:        cbor.DupMapKeyEnforcedAPF,
		MaxNestedLevels:  vsync.MaxDepth,
		MaxArrayElements: vsync.MaxArrayLen,
		MaxMapPairs:      vsync.MaxMapLen,
		IndefLength:      cbor.IndefLengthForbidden,
		TagsMd:           cbor.TagsForbidden,
		UTF8:             cbor.UTF8RejectInvalid,
	}.DecMode()
	if err != nil {
		panic(err)
	}
	return dm
}

// encodePolicy encodes p for policyKey; nil for no policy (delete the key).
func encodePolicy(p *vsync.OfflinePolicy) ([]byte, error) {
	if p == nil {
		return nil, nil
	}
	b, err := encMode.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("badger: encode offline policy: %w", err)
	}
	return b, nil
}

// decodePolicy decodes and validates a stored policy; failures wrap
// edge.ErrCorrupt.
func decodePolicy(b []byte) (*vsync.OfflinePolicy, error) {
	p := new(vsync.OfflinePolicy)
	if err := decMode.Unmarshal(b, p); err != nil {
		return nil, fmt.Errorf("%w: offline policy: %w", edge.ErrCorrupt, err)
	}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", edge.ErrCorrupt, err)
	}
	return p, nil
}

// setPolicy writes p, or deletes the stored policy if p is nil, in txn.
func setPolicy(txn *badgerdb.Txn, p *vsync.OfflinePolicy) error {
	b, err := encodePolicy(p)
	if err != nil {
		return err
	}
	if b == nil {
		return txn.Delete(policyKey)
	}
	return txn.Set(policyKey, b)
}

func encodeRecord(r *vsync.Record) ([]byte, error) {
	b, err := encMode.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("badger: encode member %d: %w", r.Member, err)
	}
	return b, nil
}

// decodeRecord decodes and validates a stored record into r, reusing its
// slices; every failure wraps edge.ErrCorrupt.
func decodeRecord(b []byte, r *vsync.Record) error {
	// The decoder reuses a slice's array when it is long enough, and leaves
	// the fields of its elements that the input lacks as they were.
	clear(r.Credentials[:cap(r.Credentials)])
	clear(r.Valid[:cap(r.Valid)])
	clear(r.Actions[:cap(r.Actions)])
	clear(r.Notices[:cap(r.Notices)])
	*r = vsync.Record{Credentials: r.Credentials[:0], Valid: r.Valid[:0], Actions: r.Actions[:0], Notices: r.Notices[:0]}
	if err := decMode.Unmarshal(b, r); err != nil {
		return fmt.Errorf("%w: record: %w", edge.ErrCorrupt, err)
	}
	if err := r.Validate(); err != nil {
		return fmt.Errorf("%w: %w", edge.ErrCorrupt, err)
	}
	return nil
}

// storedEvent is a journal entry as stored.
type storedEvent struct {
	_     struct{} `cbor:",toarray"`
	Boot  vsync.BootID
	Event vsync.Event
}

func decodeEvent(b []byte) (edge.Entry, error) {
	var s storedEvent
	if err := decMode.Unmarshal(b, &s); err != nil {
		return edge.Entry{}, fmt.Errorf("%w: event: %w", edge.ErrCorrupt, err)
	}
	return edge.Entry{Boot: s.Boot, Event: s.Event}, nil
}
