package wiegand

import (
	"errors"
	"math/rand/v2"
	"testing"
)

var formats = []Format{H10301, H10306, Corp1000, H10304, H10302}

// TestRoundTripCards: for random values of every format, Encode then Decode
// gives the values back, every single-bit corruption is caught, and the key
// survives its text form.
func TestRoundTripCards(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, format := range formats {
		for range 2000 {
			fc := uint32(rng.Uint64N(uint64(format.MaxFacility()) + 1))
			cn := rng.Uint64N(format.MaxNumber() + 1)
			f, err := Encode(format, fc, cn)
			if err != nil {
				t.Fatalf("Encode(%v, %d, %d): %v", format, fc, cn, err)
			}
			c, err := Decode(f, format)
			if err != nil || c.Format != format || c.Facility != fc || c.Number != cn {
				t.Fatalf("Decode(Encode(%v, %d, %d)) = %v, %v", format, fc, cn, c, err)
			}
			k := c.Key()
			if back, err := ParseKey(k.String()); err != nil || back != k {
				t.Fatalf("ParseKey(%q) = %v, %v", k, back, err)
			}
			i := rng.IntN(f.Len())
			if _, err := Decode(flip(f, i), format); !errors.Is(err, ErrParity) {
				t.Fatalf("%v %d:%d with bit %d flipped: err = %v", format, fc, cn, i, err)
			}
		}
	}
}

// TestRoundTripFrames: random frames survive every representation (OSDP RAW
// bytes, bit string, GPIO pulses, raw key text).
func TestRoundTripFrames(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for range 5000 {
		n := 1 + rng.IntN(MaxBits)
		data := make([]byte, (n+7)/8)
		for i := range data {
			data[i] = byte(rng.Uint32())
		}
		f, err := FromBytes(n, data)
		if err != nil {
			t.Fatal(err)
		}
		g, err := FromBytes(n, f.Bytes())
		if err != nil || g != f {
			t.Fatalf("FromBytes(Bytes()) = %s, %v; want %s", g, err, f)
		}
		if p, err := ParseBits(f.String()); err != nil || p != f {
			t.Fatalf("ParseBits(String()) = %s, %v; want %s", p, err, f)
		}
		var a Frame
		for i := 0; i < n; i++ {
			_ = a.AppendBit(f.Bit(i))
		}
		if a != f {
			t.Fatalf("appended %s, want %s", a, f)
		}
		k, err := RawKey(f)
		if err != nil {
			t.Fatal(err)
		}
		if back, err := ParseKey(k.String()); err != nil || back != k {
			t.Fatalf("ParseKey(%q) = %v, %v", k, back, err)
		}
	}
}

func FuzzDecode(f *testing.F) {
	for _, tc := range golden {
		fr, _ := ParseBits(tc.bits)
		f.Add(uint8(fr.Len()), fr.Bytes())
	}
	f.Add(uint8(40), []byte{0x01, 0x23, 0x45, 0x67, 0x89})
	f.Add(uint8(0), []byte{})
	f.Add(uint8(200), []byte{0xFF})
	f.Fuzz(func(t *testing.T, n uint8, data []byte) {
		fr, err := FromBytes(int(n), data)
		if err != nil {
			if !errors.Is(err, ErrLength) {
				t.Fatalf("FromBytes error %v is not ErrLength", err)
			}
			return
		}
		for _, hints := range [][]Format{nil, {H10302}} {
			c, err := Decode(fr, hints...)
			if err != nil {
				if !errors.Is(err, ErrParity) {
					t.Fatalf("Decode(%s) error %v is not ErrParity", fr, err)
				}
				if _, kerr := KeyFromFrame(fr, hints...); kerr == nil {
					t.Fatalf("KeyFromFrame(%s) gave a key for a misread", fr)
				}
				continue
			}
			if c.Frame != fr {
				t.Fatalf("Decode changed the frame")
			}
			if c.Format != Raw {
				back, err := Encode(c.Format, c.Facility, c.Number)
				if err != nil || back != fr {
					t.Fatalf("Encode(Decode(%s)) = %s, %v", fr, back, err)
				}
			}
			k, err := KeyFromFrame(fr, hints...)
			if err != nil || k != c.Key() || k.IsZero() {
				t.Fatalf("KeyFromFrame(%s) = %v, %v; want %v", fr, k, err, c.Key())
			}
			if back, err := ParseKey(k.String()); err != nil || back != k {
				t.Fatalf("ParseKey(%q) = %v, %v", k, back, err)
			}
		}
	})
}

func FuzzParseKey(f *testing.F) {
	for _, s := range validKeys {
		f.Add(s)
	}
	for _, tc := range invalidKeys {
		f.Add(tc.s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseKey(s)
		if err != nil {
			if !errors.Is(err, ErrSyntax) && !errors.Is(err, ErrRange) {
				t.Fatalf("ParseKey(%q) error %v is neither ErrSyntax nor ErrRange", s, err)
			}
			if !k.IsZero() {
				t.Fatalf("ParseKey(%q) failed with a key", s)
			}
			return
		}
		if k.IsZero() || k.String() != s { // only canonical text parses
			t.Fatalf("ParseKey(%q) = %q", s, k)
		}
	})
}

func FuzzFromFMT(f *testing.F) {
	for _, tc := range fmtCases {
		f.Add([]byte(tc.in))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		k, err := KeyFromFMT(data)
		if err != nil {
			if !errors.Is(err, ErrSyntax) && !errors.Is(err, ErrRange) {
				t.Fatalf("KeyFromFMT(%q) error %v is neither ErrSyntax nor ErrRange", data, err)
			}
			return
		}
		if k.Kind() != KindCard {
			t.Fatalf("KeyFromFMT(%q) = %v, not a card key", data, k)
		}
		if back, err := ParseKey(k.String()); err != nil || back != k {
			t.Fatalf("ParseKey(%q) = %v, %v", k, back, err)
		}
		fc, cn, _ := k.Card()
		if again, err := KeyFromFMT([]byte(k.String()[len("card:"):])); err != nil || again != k {
			t.Fatalf("FMT %d:%d = %v, %v; want %v", fc, cn, again, err, k)
		}
	})
}

func BenchmarkDecode26(b *testing.B) {
	f, _ := ParseBits(golden[0].bits)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(f); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkKeyFromRAW is the edge's path for an OSDP RAW reply: bytes to
// frame to key.
func BenchmarkKeyFromRAW(b *testing.B) {
	data := []byte{0xBB, 0x03, 0x21, 0x80} // pm3 H10301 118/1603
	b.ReportAllocs()
	for b.Loop() {
		f, err := FromBytes(26, data)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := KeyFromFrame(f); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkKeyAppendText is the key's text written into a reused buffer, as
// a cache lookup does.
func BenchmarkKeyAppendText(b *testing.B) {
	k, _ := CardKey(118, 1603)
	buf := make([]byte, 0, 40)
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = k.AppendText(buf[:0])
	}
}
