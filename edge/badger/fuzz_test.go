package badger

import (
	"errors"
	"reflect"
	"testing"

	"varco.dev/edge"
	vsync "varco.dev/protocol/sync"
)

// seedRecords are records with every field used.
func seedRecords() []vsync.Record {
	return []vsync.Record{
		rec(1),
		rec(2, func(r *vsync.Record) {
			r.Credentials = append(r.Credentials, vsync.Credential{Key: cardKey(3), Valid: vsync.Window{From: 1, Until: 2}})
			r.Sites = []string{"7", "roma-1"}
			r.Suspended = true
			r.Actions = []vsync.Action{{ID: 7, Mode: vsync.AccessMessageBlock, Devices: vsync.AllDevices, Text: "Perché?", Priority: 3}}
			r.Notices = []vsync.Notice{{Text: "Ciao", Priority: 1, Valid: vsync.Window{Until: 99}}}
		}),
		{Member: 9},
	}
}

// FuzzDecodeRecord decodes arbitrary bytes as a stored record: an error
// wrapping edge.ErrCorrupt or a valid record, never a panic; a record that
// decodes encodes again to a record equal to it.
func FuzzDecodeRecord(f *testing.F) {
	for _, r := range seedRecords() {
		b, err := encodeRecord(&r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0xa2, 0x01, 0x02, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := new(vsync.Record)
		err := decodeRecord(b, r)
		if err != nil {
			if !errors.Is(err, edge.ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		again, err := encodeRecord(r)
		if err != nil {
			t.Fatal(err)
		}
		r2 := new(vsync.Record)
		if err := decodeRecord(again, r2); err != nil || !reflect.DeepEqual(r, r2) {
			t.Fatalf("re-encoded record differs: %v\n%+v\n%+v", err, r, r2)
		}
	})
}

// FuzzDecodeCompact decodes arbitrary bytes as an in-memory record: never a
// panic, never a read past the input; and the compact form of a valid record
// decodes to it.
func FuzzDecodeCompact(f *testing.F) {
	for _, r := range seedRecords() {
		f.Add(appendCompact(nil, &r), 0)
	}
	f.Fuzz(func(t *testing.T, b []byte, credIdx int) {
		var r vsync.Record
		n, err := decodeCompact(b, credIdx, cardKey(1), &r)
		if err == nil && (n < 0 || n > len(b)) {
			t.Fatalf("decoded %d bytes of %d", n, len(b))
		}
	})
}

func TestCompactRoundTrip(t *testing.T) {
	for _, r := range seedRecords() {
		b := appendCompact([]byte{0xee}, &r)[1:]
		for i, c := range r.Credentials {
			var got vsync.Record
			n, err := decodeCompact(append(b, 0xff), i, c.Key, &got)
			if err != nil || n != len(b) {
				t.Fatalf("member %d: decoded %d of %d bytes: %v", r.Member, n, len(b), err)
			}
			want := r
			want.Credentials = []vsync.Credential{c}
			if !reflect.DeepEqual(normal(got), normal(want)) {
				t.Errorf("round trip\n%+v\nwant\n%+v", got, want)
			}
		}
		if n := compactLen(b); n != len(b) {
			t.Errorf("compactLen %d, want %d", n, len(b))
		}
		for cut := range len(b) {
			if _, err := decodeCompact(b[:cut], 0, cardKey(1), new(vsync.Record)); err == nil {
				t.Errorf("member %d cut to %d of %d bytes: decoded", r.Member, cut, len(b))
			}
		}
	}
}

// normal makes empty slices nil, as the CBOR decoder leaves them.
func normal(r vsync.Record) vsync.Record {
	if len(r.Credentials) == 0 {
		r.Credentials = nil
	}
	if len(r.Valid) == 0 {
		r.Valid = nil
	}
	if len(r.Sites) == 0 {
		r.Sites = nil
	}
	if len(r.Actions) == 0 {
		r.Actions = nil
	}
	if len(r.Notices) == 0 {
		r.Notices = nil
	}
	return r
}

// TestDecodeRecordReuse decodes records into one Record, as the index build
// does: nothing of a record stays in the next.
func TestDecodeRecordReuse(t *testing.T) {
	seeds := seedRecords()
	var r vsync.Record
	for _, i := range []int{1, 0, 1, 2, 1} {
		b, _ := encodeRecord(&seeds[i])
		if err := decodeRecord(b, &r); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(normal(r), normal(seeds[i])) {
			t.Fatalf("record %d decoded after another:\n%+v\nwant\n%+v", i, r, seeds[i])
		}
	}
}
