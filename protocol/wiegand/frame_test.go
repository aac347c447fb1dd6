package wiegand

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestFromBytes(t *testing.T) {
	// The pm3 H10301 vector in the OSDP RAW shape, pad bits set to garbage:
	// 10111011 00000011 00100001 10|111111 → BB 03 21 BF.
	f, err := FromBytes(26, []byte{0xBB, 0x03, 0x21, 0xBF})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := f.String(), golden[0].bits; got != want {
		t.Fatalf("bits = %s, want %s", got, want)
	}
	if got := f.Bytes(); !bytes.Equal(got, []byte{0xBB, 0x03, 0x21, 0x80}) {
		t.Fatalf("Bytes() = % X, want pad bits cleared: BB 03 21 80", got)
	}
	clean, _ := FromBytes(26, []byte{0xBB, 0x03, 0x21, 0x80})
	if clean != f {
		t.Fatal("pad bits change the frame")
	}

	bad := []struct {
		bits int
		data []byte
	}{
		{0, nil},
		{-1, nil},
		{MaxBits + 1, make([]byte, 17)},
		{26, []byte{0xBB, 0x03, 0x21}}, // a byte short
		{26, []byte{0xBB, 0x03, 0x21, 0x80, 0x00}}, // a byte too many
		{8, nil},
	}
	for _, tc := range bad {
		if _, err := FromBytes(tc.bits, tc.data); !errors.Is(err, ErrLength) {
			t.Errorf("FromBytes(%d, % X) err = %v, want ErrLength", tc.bits, tc.data, err)
		}
	}
}

func TestParseBits(t *testing.T) {
	for _, s := range []string{"0", "1", "10", strings.Repeat("1", MaxBits), golden[0].bits} {
		f, err := ParseBits(s)
		if err != nil || f.String() != s || f.Len() != len(s) {
			t.Errorf("ParseBits(%q) = %s, %v", s, f, err)
		}
	}
	for _, s := range []string{"", "2", "10 1", "0b101", "1\n", strings.Repeat("0", MaxBits+1), "1١"} {
		if _, err := ParseBits(s); !errors.Is(err, ErrSyntax) {
			t.Errorf("ParseBits(%q) err = %v, want ErrSyntax", s, err)
		}
	}
}

// TestAppendBit is the GPIO path: the appender takes MaxBits bits, then
// refuses without changing the frame.
func TestAppendBit(t *testing.T) {
	var f Frame
	for i := 0; i < MaxBits; i++ {
		if err := f.AppendBit(i%3 == 0); err != nil {
			t.Fatalf("bit %d: %v", i, err)
		}
	}
	full := f
	if err := f.AppendBit(true); !errors.Is(err, ErrFull) {
		t.Fatalf("AppendBit on a full frame: %v, want ErrFull", err)
	}
	if f != full || f.Len() != MaxBits {
		t.Fatal("a refused AppendBit changed the frame")
	}
	for i := 0; i < MaxBits; i++ {
		if f.Bit(i) != (i%3 == 0) {
			t.Fatalf("bit %d = %v", i, f.Bit(i))
		}
	}
	if f.Bit(-1) || f.Bit(MaxBits) || (Frame{}).Bit(0) {
		t.Fatal("Bit out of range is not false")
	}
	allocs := testing.AllocsPerRun(100, func() {
		var g Frame
		for i := 0; i < 26; i++ {
			_ = g.AppendBit(i&1 == 1)
		}
	})
	if allocs != 0 {
		t.Fatalf("AppendBit allocates %v times", allocs)
	}
}

func TestFrameEmpty(t *testing.T) {
	var f Frame
	if f.Len() != 0 || f.String() != "" || len(f.Bytes()) != 0 || f.uint64() != 0 {
		t.Fatalf("zero frame = %d %q % X", f.Len(), f, f.Bytes())
	}
}
