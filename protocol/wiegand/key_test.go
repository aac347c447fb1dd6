package wiegand

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// gpio feeds a bit string to the appender one pulse at a time, as the GPIO
// D0/D1 decoder does.
func gpio(t *testing.T, bits string) Frame {
	t.Helper()
	var f Frame
	for i := 0; i < len(bits); i++ {
		if err := f.AppendBit(bits[i] == '1'); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// keyer returns a helper that unwraps (Key, error) and fails t on error.
func keyer(t *testing.T) func(Key, error) Key {
	return func(k Key, err error) Key {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
}

// TestKeyEquivalence: the same card read over OSDP RAW, OSDP FMT and Wiegand
// GPIO gives one key.
func TestKeyEquivalence(t *testing.T) {
	cases := []struct {
		name string
		want string
		raw  []byte // OSDP RAW data bytes
		bits string // the same frame on the D0/D1 wires
		fmts []string
	}{
		{
			// pm3 H10301 FC 118 CN 1603 (golden[0]).
			name: "H10301", want: "card:118:1603",
			raw:  []byte{0xBB, 0x03, 0x21, 0x80}, // 10111011 00000011 00100001 10……
			bits: "10111011000000110010000110",
			fmts: []string{"118:1603", "118-1603", "0118:01603", " 118:1603\r\n", "118:1603\x00\x00"},
		},
		{
			// pm3 Corporate 1000 company 118 card 1603: another format, same key.
			name: "Corp1000", want: "card:118:1603",
			raw:  []byte{0xC1, 0xD8, 0x01, 0x90, 0xE0}, // 11000001 11011000 00000001 10010000 111…
			bits: "11000001110110000000000110010000111",
			fmts: []string{"118:1603"},
		},
		{
			// pm3 H10304 FC 1 CN 516907, raw 0x10001fc656.
			name: "H10304", want: "card:1:516907",
			raw:  []byte{0x80, 0x00, 0xFE, 0x32, 0xB0}, // 10000000 00000000 11111110 00110010 10110…
			bits: "1000000000000000111111100011001010110",
			fmts: []string{"1:516907", "00001-0516907"},
		},
		{
			// A 40-bit frame of no known format: a raw key.
			name: "raw40", want: "raw:40:0123456789",
			raw:  []byte{0x01, 0x23, 0x45, 0x67, 0x89},
			bits: "0000000100100011010001010110011110001001",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			must := keyer(t)
			fr, err := FromBytes(len(tc.bits), tc.raw)
			if err != nil {
				t.Fatal(err)
			}
			keys := map[string]Key{
				"RAW":  must(KeyFromFrame(fr)),
				"GPIO": must(KeyFromFrame(gpio(t, tc.bits))),
			}
			for _, s := range tc.fmts {
				keys["FMT "+s] = must(KeyFromFMT([]byte(s)))
			}
			for via, k := range keys {
				if k != keys["RAW"] || k.String() != tc.want {
					t.Errorf("via %s: key %q, want %q (equal to RAW)", via, k, tc.want)
				}
			}
		})
	}
	// The same card number in two formats is one credential.
	must := keyer(t)
	a, _ := Encode(H10301, 1, 100)
	b, _ := Encode(H10304, 1, 100)
	if ka, kb := must(KeyFromFrame(a)), must(KeyFromFrame(b)); ka != kb {
		t.Errorf("H10301 1:100 = %v, H10304 1:100 = %v", ka, kb)
	}
}

func TestPINNeverCard(t *testing.T) {
	must := keyer(t)
	pin := must(PINKey("12345"))
	for _, k := range []Key{
		must(CardKey(0, 12345)),
		must(CardKey(1, 2345)),
		must(KeyFromFMT([]byte("12345"))),
		must(ParseKey("card:0:12345")),
	} {
		if k == pin || k.String() == pin.String() {
			t.Errorf("PIN 12345 equals %v", k)
		}
	}
	if pin.String() != "pin:12345" || pin.Kind() != KindPIN {
		t.Errorf("PIN key = %q kind %v", pin, pin.Kind())
	}
	if a, b := must(PINKey("0042")), must(PINKey("42")); a == b {
		t.Error("PIN 0042 == PIN 42: leading zeros must count")
	}
	for _, s := range []string{"", "12a", "-1", "1 2", strings.Repeat("1", MaxPINDigits+1), "١٢"} {
		if _, err := PINKey(s); !errors.Is(err, ErrSyntax) {
			t.Errorf("PINKey(%q) err = %v, want ErrSyntax", s, err)
		}
	}
}

// validKeys are canonical texts; ParseKey must round-trip each exactly.
var validKeys = []string{
	"card:0:0",
	"card:118:1603",
	"card:65535:34359738367",
	"raw:1:80",
	"raw:26:bb032180",
	"raw:40:0123456789",
	"raw:128:" + strings.Repeat("ff", 16),
	"pin:0",
	"pin:0042",
	"pin:" + strings.Repeat("9", MaxPINDigits),
}

// invalidKeys are malformed or hostile; ParseKey must refuse each.
var invalidKeys = []struct {
	s    string
	want error
}{
	{"", ErrSyntax},
	{"card", ErrSyntax},
	{"card:", ErrSyntax},
	{"card:1", ErrSyntax},
	{"card:1:", ErrSyntax},
	{"card::1", ErrSyntax},
	{"card:01:2", ErrSyntax}, // leading zero
	{"card:1:02", ErrSyntax},
	{"card:00:0", ErrSyntax},
	{"card:-1:2", ErrSyntax},
	{"card:+1:2", ErrSyntax},
	{"card:1:2:3", ErrSyntax},
	{"card: 1:2", ErrSyntax},
	{"card:1:2 ", ErrSyntax},
	{"card:1:2\x00", ErrSyntax},
	{"card:1-2", ErrSyntax},
	{"card:0x1:2", ErrSyntax},
	{"card:1_0:2", ErrSyntax},
	{"CARD:1:2", ErrSyntax},
	{"Card:1:2", ErrSyntax},
	{"card:65536:1", ErrRange},
	{"card:1:34359738368", ErrRange},
	{"card:1:99999999999999999999", ErrSyntax}, // overflows uint64
	{"card:1:" + strings.Repeat("9", 40), ErrSyntax},
	{"raw:0:", ErrSyntax},
	{"raw:129:" + strings.Repeat("00", 17), ErrSyntax},
	{"raw:8:FF", ErrSyntax}, // upper case
	{"raw:8:f", ErrSyntax},
	{"raw:8:fff", ErrSyntax},
	{"raw:8:", ErrSyntax},
	{"raw:08:ff", ErrSyntax},
	{"raw:8:gg", ErrSyntax},
	{"raw:4:ff", ErrSyntax}, // pad bits set
	{"raw:26:bb032181", ErrSyntax},
	{"raw:8", ErrSyntax},
	{"raw:x:ff", ErrSyntax},
	{"pin:", ErrSyntax},
	{"pin:" + strings.Repeat("1", MaxPINDigits+1), ErrSyntax},
	{"pin:12a4", ErrSyntax},
	{"pin:-1", ErrSyntax},
	{"pin:１２", ErrSyntax}, // full-width digits
	{"pin:1:2", ErrSyntax},
	{"key:1", ErrSyntax},
	{":1:2", ErrSyntax},
	{strings.Repeat("card:1:2", 200), ErrSyntax},
}

func TestParseKey(t *testing.T) {
	for _, s := range validKeys {
		k, err := ParseKey(s)
		if err != nil {
			t.Errorf("ParseKey(%q): %v", s, err)
			continue
		}
		if k.String() != s || k.IsZero() {
			t.Errorf("ParseKey(%q).String() = %q", s, k)
		}
		text, _ := k.MarshalText()
		var back Key
		if err := back.UnmarshalText(text); err != nil || back != k {
			t.Errorf("text round trip of %q = %v, %v", s, back, err)
		}
	}
	for _, tc := range invalidKeys {
		k, err := ParseKey(tc.s)
		if !errors.Is(err, tc.want) || !k.IsZero() {
			t.Errorf("ParseKey(%.60q) = %v, %v; want %v", tc.s, k, err, tc.want)
		}
		var u Key
		if err := u.UnmarshalText([]byte(tc.s)); tc.s != "" && err == nil {
			t.Errorf("UnmarshalText(%.60q) accepted", tc.s)
		}
	}
}

// fmtCases are OSDP FMT card data texts and the key each gives ("" = error).
var fmtCases = []struct {
	in   string
	want string
	err  error
}{
	{"118:1603", "card:118:1603", nil},
	{"118-1603", "card:118:1603", nil},
	{"0118:0001603", "card:118:1603", nil},
	{"\t118:1603 \r\n", "card:118:1603", nil},
	{"\x00118:1603\x00", "card:118:1603", nil},
	{"1603", "card:0:1603", nil},
	{"0000001603", "card:0:1603", nil},
	{"0", "card:0:0", nil},
	{"65535:34359738367", "card:65535:34359738367", nil},
	{"", "", ErrSyntax},
	{"   ", "", ErrSyntax},
	{":", "", ErrSyntax},
	{"-", "", ErrSyntax},
	{"1:", "", ErrSyntax},
	{":1", "", ErrSyntax},
	{"-1", "", ErrSyntax},
	{"1:2:3", "", ErrSyntax},
	{"1-2-3", "", ErrSyntax},
	{"1:-2", "", ErrSyntax},
	{"1 :2", "", ErrSyntax},
	{"1: 2", "", ErrSyntax},
	{"1 2", "", ErrSyntax},
	{"a1:2", "", ErrSyntax},
	{"0x1F:2", "", ErrSyntax},
	{"1,2", "", ErrSyntax},
	{"1/2", "", ErrSyntax},
	{"1:2.0", "", ErrSyntax},
	{"+1:2", "", ErrSyntax},
	{"card:1:2", "", ErrSyntax},
	{"١٢", "", ErrSyntax},
	{"65536:1", "", ErrRange},
	{"1:34359738368", "", ErrRange},
	{"99999999999999999999:1", "", ErrSyntax},
	{strings.Repeat("0", 65), "", ErrSyntax},
}

func TestKeyFromFMT(t *testing.T) {
	for _, tc := range fmtCases {
		k, err := KeyFromFMT([]byte(tc.in))
		if tc.err != nil {
			if !errors.Is(err, tc.err) || !k.IsZero() {
				t.Errorf("KeyFromFMT(%q) = %v, %v; want %v", tc.in, k, err, tc.err)
			}
			continue
		}
		if err != nil || k.String() != tc.want || k.Kind() != KindCard {
			t.Errorf("KeyFromFMT(%q) = %q, %v; want %q", tc.in, k, err, tc.want)
		}
	}
}

func TestKeyValue(t *testing.T) {
	must := keyer(t)
	var zero Key
	if !zero.IsZero() || zero.String() != "" || zero.Kind() != KindNone || zero.Kind().String() != "" {
		t.Fatalf("zero key = %q kind %v", zero, zero.Kind())
	}
	if text, err := zero.MarshalText(); err != nil || len(text) != 0 {
		t.Fatalf("zero MarshalText = %q, %v", text, err)
	}
	k := must(CardKey(118, 1603))
	if err := k.UnmarshalText(nil); err != nil || !k.IsZero() {
		t.Fatalf("UnmarshalText(empty) = %v, %v", k, err)
	}

	// Keys are map keys and JSON strings.
	seen := map[Key]string{}
	for _, s := range validKeys {
		seen[must(ParseKey(s))] = s
	}
	if len(seen) != len(validKeys) {
		t.Fatalf("%d distinct keys from %d texts", len(seen), len(validKeys))
	}
	type row struct {
		Key Key `json:"key"`
	}
	j, err := json.Marshal(row{must(CardKey(118, 1603))})
	if err != nil || string(j) != `{"key":"card:118:1603"}` {
		t.Fatalf("json = %s, %v", j, err)
	}
	var r row
	if err := json.Unmarshal([]byte(`{"key":"pin:0042"}`), &r); err != nil || r.Key.String() != "pin:0042" {
		t.Fatalf("json unmarshal = %v, %v", r.Key, err)
	}
	if err := json.Unmarshal([]byte(`{"key":"pin:00 42"}`), &r); !errors.Is(err, ErrSyntax) {
		t.Fatalf("json unmarshal of a bad key: %v", err)
	}

	fc, cn, ok := must(CardKey(118, 1603)).Card()
	if !ok || fc != 118 || cn != 1603 {
		t.Fatalf("Card() = %d %d %v", fc, cn, ok)
	}
	if _, _, ok := must(PINKey("1")).Card(); ok {
		t.Fatal("a PIN key reports a card")
	}
	for kind, want := range map[Kind]string{KindCard: "card", KindRaw: "raw", KindPIN: "pin", Kind(9): ""} {
		if kind.String() != want {
			t.Errorf("Kind(%d) = %q, want %q", kind, kind, want)
		}
	}

	if _, err := CardKey(MaxKeyFacility+1, 0); !errors.Is(err, ErrRange) {
		t.Errorf("CardKey(facility too big) err = %v", err)
	}
	if _, err := CardKey(0, MaxKeyNumber+1); !errors.Is(err, ErrRange) {
		t.Errorf("CardKey(number too big) err = %v", err)
	}
	if _, err := RawKey(Frame{}); !errors.Is(err, ErrLength) {
		t.Errorf("RawKey(empty) err = %v", err)
	}
	if k := (Card{Format: H10301, Facility: MaxKeyFacility + 1}).Key(); !k.IsZero() {
		t.Errorf("out-of-range hand-made card has key %v", k)
	}
	if _, err := KeyFromFrame(Frame{}); !errors.Is(err, ErrLength) {
		t.Errorf("KeyFromFrame(empty) err = %v", err)
	}

	buf := make([]byte, 0, 40)
	raw := must(ParseKey("raw:128:" + strings.Repeat("ab", 16)))
	if n := testing.AllocsPerRun(100, func() { buf, _ = raw.AppendText(buf[:0]) }); n != 0 {
		t.Fatalf("AppendText allocates %v times", n)
	}
}
