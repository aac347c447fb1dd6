package wiegand

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// MaxBits is the longest frame a Frame holds. It covers every Wiegand format
// in use (the longest common ones are 48 and 56 bits) and the OSDP RAW replies
// of the readers we support, with room to spare.
const MaxBits = 128

// Frame is one raw Wiegand frame: a bit count and the bits in the order they
// were sent (MSB first), left-aligned in 16 bytes. It is a fixed-size value:
// building one never allocates, and two frames are equal with == exactly when
// they hold the same bits (unused bits are always zero).
//
// The zero Frame is empty and ready for AppendBit.
type Frame struct {
	n    uint8
	bits [MaxBits / 8]byte
}

// FromBytes builds a frame from the shape of an OSDP RAW reply (osdp_RAW):
// a bit count and ceil(bits/8) bytes, first bit in the MSB of data[0]. Pad
// bits after the last data bit are ignored (set to zero), so a reader that
// leaves garbage there still yields the same frame. It returns ErrLength if
// bits is outside 1..MaxBits or len(data) is not ceil(bits/8).
func FromBytes(bits int, data []byte) (Frame, error) {
	var f Frame
	if bits < 1 || bits > MaxBits {
		return f, fmt.Errorf("%w: %d bits", ErrLength, bits)
	}
	if len(data) != (bits+7)/8 {
		return f, fmt.Errorf("%w: %d bits need %d bytes, got %d", ErrLength, bits, (bits+7)/8, len(data))
	}
	f.n = uint8(bits)
	copy(f.bits[:], data)
	if r := bits % 8; r != 0 {
		f.bits[len(data)-1] &= 0xFF << (8 - r)
	}
	return f, nil
}

// ParseBits builds a frame from a string of '0' and '1', first bit first, as
// written in format documentation ("10111011000000110010000110"). Any other
// character, an empty string or more than MaxBits characters is ErrSyntax.
func ParseBits(s string) (Frame, error) {
	var f Frame
	if len(s) == 0 || len(s) > MaxBits {
		return f, fmt.Errorf("%w: bit string of %d characters", ErrSyntax, len(s))
	}
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '0':
		case '1':
			f.bits[i/8] |= 0x80 >> (i % 8)
		default:
			return Frame{}, fmt.Errorf("%w: bit string has %q at %d", ErrSyntax, s[i], i)
		}
	}
	f.n = uint8(len(s))
	return f, nil
}

// AppendBit adds one bit at the end of the frame: what a GPIO decoder calls
// for each pulse (D0 → false, D1 → true). It never allocates. When the frame
// already holds MaxBits bits it returns ErrFull and leaves the frame as it
// was; the decoder should then drop the read.
func (f *Frame) AppendBit(one bool) error {
	if int(f.n) >= MaxBits {
		return ErrFull
	}
	if one {
		f.bits[f.n/8] |= 0x80 >> (f.n % 8)
	}
	f.n++
	return nil
}

// Len is the number of bits in the frame.
func (f Frame) Len() int { return int(f.n) }

// Bit reports bit i (0 = first sent). Out of range it reports false.
func (f Frame) Bit(i int) bool {
	if i < 0 || i >= int(f.n) {
		return false
	}
	return f.bits[i/8]&(0x80>>(i%8)) != 0
}

// Bytes returns the frame in the OSDP RAW shape: ceil(Len/8) bytes, first bit
// in the MSB of the first byte, pad bits zero. It is the inverse of FromBytes.
func (f Frame) Bytes() []byte {
	return append([]byte(nil), f.bits[:(int(f.n)+7)/8]...)
}

// String returns the bits as '0' and '1' characters, the form ParseBits reads.
func (f Frame) String() string {
	var b strings.Builder
	b.Grow(int(f.n))
	for i := 0; i < int(f.n); i++ {
		if f.Bit(i) {
			b.WriteByte('1')
		} else {
			b.WriteByte('0')
		}
	}
	return b.String()
}

// uint64 returns a frame of at most 64 bits as a number whose least
// significant bit is the last bit sent. Longer frames give their first 64 bits;
// callers check Len first.
func (f Frame) uint64() uint64 {
	if f.n == 0 {
		return 0
	}
	v := binary.BigEndian.Uint64(f.bits[:8])
	if f.n >= 64 {
		return v
	}
	return v >> (64 - f.n)
}

// frameOf is the inverse of uint64 for 1..64 bits.
func frameOf(bits int, v uint64) Frame {
	f := Frame{n: uint8(bits)}
	binary.BigEndian.PutUint64(f.bits[:8], v<<(64-bits))
	return f
}
