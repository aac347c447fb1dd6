package sync

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
)

// enc encodes v deterministically, for building test inputs by hand.
func enc(t testing.TB, v any) []byte {
	t.Helper()
	b, err := encMode.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// rawMap builds a CBOR map from already encoded keys and values, in the given
// order and with repeats allowed: what no well-behaved encoder writes.
func rawMap(items ...[]byte) []byte {
	n := len(items) / 2
	var b []byte
	if n < 24 {
		b = []byte{0xa0 | byte(n)}
	} else {
		b = []byte{0xb8, byte(n)}
	}
	for _, it := range items {
		b = append(b, it...)
	}
	return b
}

// envelopeMap is a valid delta envelope as a map with integer keys, which a
// test changes before encoding it.
func envelopeMap(t testing.TB, payload []byte) map[int]any {
	return map[int]any{1: 1, 2: int(KindDelta), 3: "fitclub", 4: "7", 7: int64(t0), 8: payload}
}

// deltaPayload is a minimal valid delta payload around body.
func deltaPayload(t testing.TB, body any) []byte {
	return enc(t, []any{int(KindDelta), body})
}

func validDeltaBody() map[int]any {
	return map[int]any{1: 2, 2: 1, 4: []any{7}}
}

func readGolden(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name+".cbor"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRoundTrip(t *testing.T) {
	for _, tc := range goldenCases {
		t.Run(tc.name, func(t *testing.T) {
			b, err := Marshal(tc.msg)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Unmarshal(b)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.msg) {
				t.Fatalf("round trip =\n%#v\nwant\n%#v", got, tc.msg)
			}
			b2, err := Marshal(got)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(b, b2) {
				t.Fatal("re-marshal differs")
			}
			env, err := UnmarshalEnvelope(b)
			if err != nil {
				t.Fatal(err)
			}
			h := tc.msg.header()
			if env.Version != ProtocolVersion || env.Kind != tc.msg.Kind() || env.Tenant != h.Tenant ||
				env.Site != h.Site || env.Edge != h.Edge || env.Seq != h.Seq || env.Time != h.Time {
				t.Errorf("envelope %+v does not carry header %+v", env, h)
			}
		})
	}
}

// TestForwardCompatible decodes messages of a "version 2" sender, written by
// hand with integer keys that version 1 does not know, at every level: the
// envelope, the body, a record, a credential, an event.
func TestForwardCompatible(t *testing.T) {
	k := key("card:123:45678")
	delta := enc(t, []any{int(KindDelta), map[int]any{
		1: 102, 2: 101,
		3: []any{map[int]any{
			1:  1001,
			2:  []any{map[int]any{1: k[:], 9: "a new credential field"}},
			3:  []any{map[int]any{}},
			5:  int(DeviceSetOf(DeviceEntrance)),
			40: map[int]any{1: "nested", 2: []any{1, 2.5, nil, true, []byte{1}}},
		}},
		99:  "a new body field",
		100: []any{map[int]any{1: []any{}}},
	}})
	env := envelopeMap(t, delta)
	env[1] = 2               // a newer sender
	env[11] = "a new header" // unknown to v1; not covered by v1 signatures
	got, err := Unmarshal(enc(t, env))
	if err != nil {
		t.Fatalf("Unmarshal: %v", err)
	}
	want := &Delta{
		Header:  Header{Tenant: "fitclub", Site: "7", Time: t0},
		Version: 102, Prev: 101,
		Upserts: []Record{{Member: 1001, Credentials: []Credential{{Key: k}}, Valid: []Window{{}}, Devices: DeviceSetOf(DeviceEntrance)}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got\n%#v\nwant\n%#v", got, want)
	}

	events := enc(t, []any{int(KindEvents), map[int]any{
		1: 5,
		2: []any{map[int]any{1: 1, 2: int64(t0), 3: int(EventReaderOnline), 4: "in-1", 20: map[int]any{1: "temperature", 2: 21}}},
		3: "a new batch field",
	}})
	env = map[int]any{1: 7, 2: int(KindEvents), 3: "fitclub", 4: "7", 5: "gate-1", 7: int64(t0), 8: events}
	got, err = Unmarshal(enc(t, env))
	if err != nil {
		t.Fatalf("Unmarshal events: %v", err)
	}
	wantEv := &Events{
		Header: Header{Tenant: "fitclub", Site: "7", Edge: "gate-1", Time: t0},
		Boot:   5,
		Events: []Event{{Seq: 1, Time: t0, Kind: EventReaderOnline, Reader: "in-1"}},
	}
	if !reflect.DeepEqual(got, wantEv) {
		t.Fatalf("got\n%#v\nwant\n%#v", got, wantEv)
	}
}

func TestMalformed(t *testing.T) {
	golden := readGolden(t, "delta")
	valid := deltaPayload(t, validDeltaBody())
	withEnv := func(change func(m map[int]any)) []byte {
		m := envelopeMap(t, valid)
		change(m)
		return enc(t, m)
	}
	withBody := func(change func(m map[int]any)) []byte {
		body := validDeltaBody()
		change(body)
		return enc(t, envelopeMap(t, deltaPayload(t, body)))
	}
	withPayload := func(p []byte) []byte { return enc(t, envelopeMap(t, p)) }
	// Sanity: the base inputs are accepted.
	for _, b := range [][]byte{withEnv(func(map[int]any) {}), withBody(func(map[int]any) {})} {
		if _, err := Unmarshal(b); err != nil {
			t.Fatalf("base input rejected: %v", err)
		}
	}
	// The keys and values of a valid envelope, encoded, for raw maps.
	e := func(v any) []byte { return enc(t, v) }
	envItems := [][]byte{e(1), e(1), e(2), e(1), e(3), e("fitclub"), e(4), e("7"), e(7), e(int64(t0)), e(8), e(valid)}
	nested := func(open byte, n int, leaf byte) []byte {
		return append(bytes.Repeat([]byte{open}, n), leaf)
	}

	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, ErrMalformed},
		{"not CBOR", []byte{0xff}, ErrMalformed},
		{"trailing byte", append(bytes.Clone(golden), 0), ErrMalformed},
		{"trailing item", append(bytes.Clone(golden), golden...), ErrMalformed},
		{"payload trailing byte", withPayload(append(bytes.Clone(valid), 0)), ErrMalformed},
		{"envelope is an array", e([]any{1, 1, "fitclub"}), ErrMalformed},
		{"envelope is a string", e("varco"), ErrMalformed},
		{"version is text", withEnv(func(m map[int]any) { m[1] = "1" }), ErrMalformed},
		{"tenant is an integer", withEnv(func(m map[int]any) { m[3] = 7 }), ErrMalformed},
		{"time is a float", withEnv(func(m map[int]any) { m[7] = 1.5 }), ErrMalformed},
		{"seq is negative", withEnv(func(m map[int]any) { m[6] = -1 }), ErrMalformed},
		{"kind overflows", withEnv(func(m map[int]any) { m[2] = 257 }), ErrMalformed},
		{"payload is a map", withEnv(func(m map[int]any) { m[8] = map[int]any{1: 1} }), ErrMalformed},
		{"member is text", withBody(func(m map[int]any) { m[3] = []any{map[int]any{1: "1001"}} }), ErrMalformed},
		{"upserts is a map", withBody(func(m map[int]any) { m[3] = map[int]any{1: 1} }), ErrMalformed},
		{"credential key of 15 bytes", withBody(func(m map[int]any) {
			m[3] = []any{map[int]any{1: 5, 2: []any{map[int]any{1: make([]byte, 15)}}}}
		}), ErrMalformed},
		{"credential key of 17 bytes", withBody(func(m map[int]any) {
			m[3] = []any{map[int]any{1: 5, 2: []any{map[int]any{1: make([]byte, 17)}}}}
		}), ErrMalformed},
		{"credential key is text", withBody(func(m map[int]any) {
			m[3] = []any{map[int]any{1: 5, 2: []any{map[int]any{1: strings.Repeat("ab", 16)}}}}
		}), ErrMalformed},
		{"device set overflows", withBody(func(m map[int]any) { m[3] = []any{map[int]any{1: 5, 5: uint64(1) << 40}} }), ErrMalformed},
		{"invalid UTF-8 tenant", withEnv(func(m map[int]any) { m[3] = "fit\xffclub" }), ErrMalformed},
		{"invalid UTF-8 text", withBody(func(m map[int]any) {
			m[3] = []any{map[int]any{1: 5, 8: []any{map[int]any{1: "ciao\xc3"}}}}
		}), ErrMalformed},
		{"tag", withEnv(func(m map[int]any) { m[7] = rawTag(1, e(int64(t0))) }), ErrMalformed},
		{"indefinite array", withPayload([]byte{0x9f, 0x01, 0xa0, 0xff}), ErrMalformed},
		{"indefinite text", []byte{0xa1, 0x03, 0x7f, 0x61, 'a', 0xff}, ErrMalformed},
		{"duplicate envelope key", rawMap(append(envItems, e(3), e("other"))...), ErrMalformed},
		{"duplicate envelope key, same value", rawMap(append(envItems, e(4), e("7"))...), ErrMalformed},
		{"duplicate body key", withPayload(append([]byte{0x82, 0x01}, rawMap(e(1), e(2), e(2), e(1), e(1), e(3))...)), ErrMalformed},
		{"duplicate record key", withPayload(append([]byte{0x82, 0x01, 0xa3, 0x01, 0x02, 0x02, 0x01, 0x03, 0x81},
			rawMap(e(1), e(5), e(6), e(true), e(1), e(6))...)), ErrMalformed},
		{"huge array length", withPayload([]byte{0x82, 0x01, 0xa3, 0x01, 0x02, 0x02, 0x01, 0x04, 0x9b, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff}), ErrMalformed},
		{"huge array length, 64 bits", withPayload([]byte{0x82, 0x01, 0xa3, 0x01, 0x02, 0x02, 0x01, 0x04, 0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}), ErrMalformed},
		{"huge map length", withPayload([]byte{0x82, 0x01, 0xbb, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}), ErrMalformed},
		{"huge byte string length", append(append([]byte{0xa6}, bytes.Join(envItems[:10], nil)...), 0x08, 0x5b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff), ErrMalformed},
		{"huge text string length", []byte{0xa1, 0x03, 0x7b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, ErrMalformed},
		{"array longer than MaxArrayLen", withBody(func(m map[int]any) { m[4] = make([]any, MaxArrayLen+1) }), ErrMalformed},
		{"nested arrays in envelope", nested(0x81, 10000, 0x00), ErrMalformed},
		{"nested arrays in payload", withPayload(append([]byte{0x82, 0x01, 0xa1, 0x04}, nested(0x81, 10000, 0x00)...)), ErrMalformed},
		{"nested maps in payload", withPayload(append([]byte{0x82, 0x01}, append(bytes.Repeat([]byte{0xa1, 0x01}, 100), 0x00)...)), ErrMalformed},
		// [kind, {99: [[...[0]...]]}]: 2 levels, then the arrays.
		{"unknown field nested past MaxDepth", withBody(func(m map[int]any) { m[99] = rawCBOR(nested(0x81, MaxDepth-1, 0x00)) }), ErrMalformed},
		{"payload of another kind", withPayload(enc(t, []any{int(KindAck), map[int]any{1: 1, 2: 2}})), ErrMalformed},
		{"envelope of another kind", withEnv(func(m map[int]any) { m[2] = int(KindAck); m[5] = "gate-1" }), ErrMalformed},
		{"payload without kind", withPayload(enc(t, []any{validDeltaBody()})), ErrMalformed},
		{"payload with an extra element", withPayload(enc(t, []any{1, validDeltaBody(), 3})), ErrMalformed},
		{"too large", make([]byte, MaxMessageSize+1), ErrTooLarge},
		{"unknown kind", withEnv(func(m map[int]any) { m[2] = 99 }), ErrInvalid},
		{"kind 0", withEnv(func(m map[int]any) { m[2] = 0 }), ErrInvalid},
		{"version 0", withEnv(func(m map[int]any) { m[1] = 0 }), ErrInvalid},
		{"no payload", withEnv(func(m map[int]any) { delete(m, 8) }), ErrInvalid},
		{"no tenant", withEnv(func(m map[int]any) { delete(m, 3) }), ErrInvalid},
		{"signature of 10 bytes", withEnv(func(m map[int]any) { m[9] = "k"; m[10] = make([]byte, 10) }), ErrInvalid},
		{"signature without key id", withEnv(func(m map[int]any) { m[10] = make([]byte, 64) }), ErrInvalid},
		{"hostile tenant", withEnv(func(m map[int]any) { m[3] = "+" }), ErrInvalid},
		{"hostile site", withEnv(func(m map[int]any) { m[4] = "7/#" }), ErrInvalid},
		{"hostile edge", withEnv(func(m map[int]any) { m[5] = "gate\x00" }), ErrInvalid},
		{"null body", withPayload(enc(t, []any{1, nil})), ErrInvalid},
		{"delta goes backwards", withBody(func(m map[int]any) { m[1], m[2] = 1, 2 }), ErrInvalid},
	}
	atLimit := withBody(func(m map[int]any) { m[99] = rawCBOR(nested(0x81, MaxDepth-2, 0x00)) })
	if _, err := Unmarshal(atLimit); err != nil {
		t.Errorf("unknown field nested to MaxDepth rejected: %v", err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			msg, err := Unmarshal(tc.in)
			if err == nil {
				t.Fatalf("accepted: %#v", msg)
			}
			if msg != nil {
				t.Errorf("returned a message with error %v", err)
			}
			if !errors.Is(err, tc.want) {
				t.Errorf("error %q does not wrap %q", err, tc.want)
			}
			t.Log(err)
		})
	}
}

// rawTag wraps encoded content in CBOR tag n (< 24).
func rawTag(n byte, content []byte) rawCBOR {
	return rawCBOR(append([]byte{0xc0 | n}, content...))
}

// rawCBOR is embedded as is by the encoder.
type rawCBOR []byte

func (r rawCBOR) MarshalCBOR() ([]byte, error) { return r, nil }

// TestTruncated decodes every proper prefix of every golden file.
func TestTruncated(t *testing.T) {
	for _, tc := range goldenCases {
		b := readGolden(t, tc.name)
		for n := range len(b) {
			if msg, err := Unmarshal(b[:n]); err == nil {
				t.Fatalf("%s cut to %d of %d bytes: accepted %#v", tc.name, n, len(b), msg)
			} else if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrInvalid) {
				t.Fatalf("%s cut to %d: error %v is neither malformed nor invalid", tc.name, n, err)
			}
		}
	}
}

// allocated returns the bytes that f allocates.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestDecodeMemoryBound checks what hostile input can make the decoder
// allocate. A length prefix costs nothing until the bytes are there; the
// worst case is a message of MaxMessageSize made of the smallest items that
// decode into the largest structs: empty maps in action lists, each 1 byte
// on the wire and an Action in memory.
func TestDecodeMemoryBound(t *testing.T) {
	hugeArray := enc(t, envelopeMap(t, []byte{0x82, 0x01, 0xa1, 0x04, 0x9b, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff}))
	if n := allocated(func() { _, _ = Unmarshal(hugeArray) }); n > 64<<10 {
		t.Errorf("a 4G-element array prefix allocated %d bytes", n)
	}

	perRecord := append([]byte{0xa1, 0x07, 0x99, MaxArrayLen >> 8, MaxArrayLen & 0xff}, bytes.Repeat([]byte{0xa0}, MaxArrayLen)...)
	records := (MaxMessageSize - 64) / len(perRecord)
	body := []byte{0x82, 0x01, 0xa3, 0x01, 0x02, 0x02, 0x01, 0x03, 0x99, byte(records >> 8), byte(records)}
	for range records {
		body = append(body, perRecord...)
	}
	env := envelopeMap(t, nil)
	env[8] = body
	worst := enc(t, env)
	if len(worst) > MaxMessageSize {
		t.Fatalf("test input of %d bytes", len(worst))
	}
	var err error
	n := allocated(func() { _, err = Unmarshal(worst) })
	if err == nil {
		t.Fatal("actions with id 0 accepted")
	}
	t.Logf("%d-byte worst case: %d actions, %.1f MiB allocated (%.0f bytes per input byte): %v",
		len(worst), records*MaxArrayLen, float64(n)/(1<<20), float64(n)/float64(len(worst)), err)
	if n > 64<<20 {
		t.Errorf("allocated %d bytes for a %d-byte message", n, len(worst))
	}
}

func TestSignature(t *testing.T) {
	pub := testSigner.Public().(ed25519.PublicKey)
	msg := goldenCases[0].msg
	env, err := Seal(msg)
	if err != nil {
		t.Fatal(err)
	}
	if err := env.Verify(pub); !errors.Is(err, ErrSignature) {
		t.Errorf("Verify of unsigned envelope: %v", err)
	}
	unsigned, _ := env.SignedBytes()
	if err := env.Sign("cloud-1", testSigner); err != nil {
		t.Fatal(err)
	}
	signed, _ := env.SignedBytes()
	if bytes.Equal(unsigned, signed) {
		t.Error("SignedBytes does not cover the key id")
	}
	if !bytes.HasPrefix(signed, []byte(signContext)) {
		t.Error("SignedBytes lacks the context prefix")
	}
	b, err := env.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, err := UnmarshalEnvelope(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := got.Verify(pub); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	again, _ := got.SignedBytes()
	if !bytes.Equal(again, signed) {
		t.Error("SignedBytes of the received envelope differ from the sender's")
	}

	// The same envelope in another valid encoding (keys out of order, a
	// non-shortest integer) still verifies: the signature is over the
	// deterministic re-encoding, and the payload's bytes as they are.
	e := func(v any) []byte { return enc(t, v) }
	shuffled := rawMap(e(10), e(got.Sig), e(8), e(got.Payload), e(9), e(got.KeyID), e(7), e(got.Time), e(6),
		[]byte{0x1b, 0, 0, 0, 0, 0, 0, 0, byte(got.Seq)}, e(4), e(got.Site), e(3), e(got.Tenant), e(2), e(got.Kind), e(1), e(got.Version))
	reordered, err := UnmarshalEnvelope(shuffled)
	if err != nil {
		t.Fatal(err)
	}
	if err := reordered.Verify(pub); err != nil {
		t.Errorf("Verify of re-ordered encoding: %v", err)
	}

	tamper := map[string]func(e *Envelope){
		"tenant": func(e *Envelope) { e.Tenant = "other" },
		"kind":   func(e *Envelope) { e.Kind = KindAck },
		"seq":    func(e *Envelope) { e.Seq++ },
		"time":   func(e *Envelope) { e.Time++ },
		"key id": func(e *Envelope) { e.KeyID = "cloud-2" },
		"payload": func(e *Envelope) {
			e.Payload = append(bytes.Clone(e.Payload[:len(e.Payload)-1]), e.Payload[len(e.Payload)-1]^1)
		},
		"sig": func(e *Envelope) { e.Sig = append(bytes.Clone(e.Sig[:1]), e.Sig[1:]...); e.Sig[0] ^= 1 },
	}
	for name, f := range tamper {
		c := *got
		f(&c)
		if err := c.Verify(pub); !errors.Is(err, ErrSignature) {
			t.Errorf("tampered %s: Verify = %v", name, err)
		}
	}
	other := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{8}, 32)).Public().(ed25519.PublicKey)
	if err := got.Verify(other); !errors.Is(err, ErrSignature) {
		t.Errorf("Verify with another key: %v", err)
	}
	if err := got.Verify(pub[:31]); !errors.Is(err, ErrSignature) {
		t.Errorf("Verify with a short key: %v", err)
	}
	if err := env.Sign("cloud-1", testSigner[:10]); err == nil {
		t.Error("Sign with a short key succeeded")
	}
	if err := env.Sign("Cloud/1", testSigner); !errors.Is(err, ErrID) {
		t.Errorf("Sign with a bad key id: %v", err)
	}
}

func TestMarshalRejects(t *testing.T) {
	if _, err := Marshal(&Delta{Header: Header{Tenant: "fitclub", Site: "7"}, Version: 1, Prev: 1}); !errors.Is(err, ErrInvalid) {
		t.Errorf("Marshal of an invalid delta: %v", err)
	}
	// A message past MaxMessageSize: the cloud must split it.
	big := &Snapshot{Header: Header{Tenant: "fitclub", Site: "7", Edge: "gate-1"}, ID: 1, Chunks: 1}
	text := strings.Repeat("x", MaxTextLen)
	for i := range MaxRecords {
		big.Records = append(big.Records, Record{Member: MemberRef(i + 1), Notices: []Notice{{Text: text}}})
	}
	if _, err := Marshal(big); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Marshal of a %d-record snapshot: %v", len(big.Records), err)
	}
}
