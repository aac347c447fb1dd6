package wiegand

import (
	"fmt"
	"math/bits"
	"strings"
)

// Format is a Wiegand card data layout. The zero value is Raw.
type Format uint8

// The formats this package decodes and encodes. Positions below count from
// 0 = the first bit sent; "even over 1–12" means the parity bit makes the
// number of ones in itself and bits 1–12 even.
const (
	// Raw is a frame of a length with no known layout: its bits are the
	// credential.
	Raw Format = iota
	// H10301 is the HID 26-bit open format: even parity (bit 0) over 1–12,
	// facility code 8 bits (1–8), card number 16 bits (9–24), odd parity
	// (bit 25) over 13–24.
	H10301
	// H10306 is the 34-bit format with a 16-bit facility code (1–16) and a
	// 16-bit card number (17–32): even parity (bit 0) over 1–16, odd parity
	// (bit 33) over 17–32. Honeywell N10002 has the same layout. Readers that
	// print the 32 data bits as one card number (some "Wiegand 34" settings)
	// show FC<<16|CN of this decode.
	H10306
	// Corp1000 is HID Corporate 1000 35-bit: company ID 12 bits (2–13),
	// card number 20 bits (14–33) and three parity bits: bit 1 even over
	// 2,3, 5,6, 8,9 … 32,33; bit 34 odd over 1,2, 4,5, 7,8 … 31,32; bit 0 odd
	// over the whole frame (computed last). The company ID is the key's
	// facility code.
	Corp1000
	// H10304 is HID 37-bit with facility code: facility 16 bits (1–16),
	// card number 19 bits (17–35), even parity (bit 0) over 1–18, odd parity
	// (bit 36) over 18–35. Bit 18 is covered by both parities.
	H10304
	// H10302 is HID 37-bit without facility code: card number 35 bits
	// (1–35), parity exactly as H10304. Parity cannot tell the two apart,
	// so a 37-bit frame decodes as H10304 unless H10302 is passed as a hint.
	H10302
)

// layout describes one format: where its fields are and how its parity bits
// are computed, in the order they must be computed (a parity that covers
// another parity bit comes after it).
type layout struct {
	name   string
	bits   int
	fcPos  int // first bit of the facility code
	fcLen  int // 0: the format has none
	cnPos  int
	cnLen  int
	parity []parity
}

type parity struct {
	pos  int
	odd  bool
	mask uint64 // covered bits, in uint64 space (bit 0 = last bit sent)
}

var layouts = [...]layout{
	Raw: {name: "raw"},
	H10301: {name: "H10301", bits: 26, fcPos: 1, fcLen: 8, cnPos: 9, cnLen: 16, parity: []parity{
		{pos: 0, mask: span(26, 1, 12)},
		{pos: 25, odd: true, mask: span(26, 13, 24)},
	}},
	H10306: {name: "H10306", bits: 34, fcPos: 1, fcLen: 16, cnPos: 17, cnLen: 16, parity: []parity{
		{pos: 0, mask: span(34, 1, 16)},
		{pos: 33, odd: true, mask: span(34, 17, 32)},
	}},
	Corp1000: {name: "Corp1000", bits: 35, fcPos: 2, fcLen: 12, cnPos: 14, cnLen: 20, parity: []parity{
		{pos: 1, mask: every(35, 2, 33, func(p int) bool { return p%3 != 1 })},
		{pos: 34, odd: true, mask: every(35, 1, 32, func(p int) bool { return p%3 != 0 })},
		{pos: 0, odd: true, mask: span(35, 1, 34)},
	}},
	H10304: {name: "H10304", bits: 37, fcPos: 1, fcLen: 16, cnPos: 17, cnLen: 19, parity: []parity{
		{pos: 0, mask: span(37, 1, 18)},
		{pos: 36, odd: true, mask: span(37, 18, 35)},
	}},
	H10302: {name: "H10302", bits: 37, cnPos: 1, cnLen: 35, parity: []parity{
		{pos: 0, mask: span(37, 1, 18)},
		{pos: 36, odd: true, mask: span(37, 18, 35)},
	}},
}

// defaultFormat maps a frame length to the format Decode uses without a hint.
func defaultFormat(bits int) Format {
	switch bits {
	case 26:
		return H10301
	case 34:
		return H10306
	case 35:
		return Corp1000
	case 37:
		return H10304
	}
	return Raw
}

// span returns the mask of positions from..to (inclusive) of an n-bit frame.
func span(n, from, to int) uint64 {
	return every(n, from, to, func(int) bool { return true })
}

func every(n, from, to int, keep func(pos int) bool) uint64 {
	var m uint64
	for p := from; p <= to; p++ {
		if keep(p) {
			m |= 1 << (n - 1 - p)
		}
	}
	return m
}

func (f Format) layout() (*layout, bool) {
	if int(f) >= len(layouts) {
		return nil, false
	}
	return &layouts[f], true
}

// String returns the format's name: "raw", "H10301", "H10306", "Corp1000",
// "H10304" or "H10302".
func (f Format) String() string {
	if l, ok := f.layout(); ok {
		return l.name
	}
	return fmt.Sprintf("Format(%d)", uint8(f))
}

// Bits is the frame length of the format, 0 for Raw and unknown formats.
func (f Format) Bits() int {
	if l, ok := f.layout(); ok {
		return l.bits
	}
	return 0
}

// MaxFacility and MaxNumber are the largest facility code and card number the
// format holds (MaxFacility is 0 for a format without one).
func (f Format) MaxFacility() uint32 {
	if l, ok := f.layout(); ok {
		return uint32(1)<<l.fcLen - 1
	}
	return 0
}

// MaxNumber: see MaxFacility.
func (f Format) MaxNumber() uint64 {
	if l, ok := f.layout(); ok && l.cnLen > 0 {
		return uint64(1)<<l.cnLen - 1
	}
	return 0
}

// ParseFormat reads a format name as String writes it, ignoring case (for
// configuration files).
func ParseFormat(s string) (Format, error) {
	for f := range layouts {
		if strings.EqualFold(s, layouts[f].name) {
			return Format(f), nil
		}
	}
	return Raw, fmt.Errorf("%w: format %q", ErrSyntax, s)
}

// Card is a decoded credential.
type Card struct {
	Format   Format
	Facility uint32 // facility code (company ID for Corp1000); 0 when the format has none
	Number   uint64 // card number
	Frame    Frame  // the bits it was decoded from; a Raw card is only these
}

func (c Card) String() string {
	if c.Format == Raw {
		return fmt.Sprintf("raw %d bits %s", c.Frame.Len(), c.Frame)
	}
	return fmt.Sprintf("%v %d:%d", c.Format, c.Facility, c.Number)
}

// Decode reads a frame by its length: 26 bits as H10301, 34 as H10306, 35 as
// Corp1000, 37 as H10304; any other length (1..MaxBits) is a Raw card with no
// error. A hint whose Bits equals the frame length is used instead of the
// default (the first one that matches): pass H10302 for a site whose 37-bit
// cards have no facility code. A parity failure returns a ParityError; an
// empty frame returns ErrLength.
func Decode(f Frame, hints ...Format) (Card, error) {
	format, fc, cn, err := decode(f, hints)
	if err != nil {
		return Card{}, err
	}
	return Card{Format: format, Facility: fc, Number: cn, Frame: f}, nil
}

// decode is Decode without building a Card, for KeyFromFrame.
func decode(f Frame, hints []Format) (Format, uint32, uint64, error) {
	format := defaultFormat(f.Len())
	for _, h := range hints {
		if h != Raw && h.Bits() == f.Len() {
			format = h
			break
		}
	}
	if format == Raw {
		if f.Len() == 0 {
			return Raw, 0, 0, fmt.Errorf("%w: empty frame", ErrLength)
		}
		return Raw, 0, 0, nil
	}
	return decodeAs(f, format)
}

func decodeAs(f Frame, format Format) (Format, uint32, uint64, error) {
	l, ok := format.layout()
	if !ok {
		return Raw, 0, 0, fmt.Errorf("%w: %v", ErrFormat, format)
	}
	if f.Len() != l.bits {
		return Raw, 0, 0, fmt.Errorf("%w: %v needs %d bits, got %d", ErrLength, format, l.bits, f.Len())
	}
	v := f.uint64()
	for _, p := range l.parity {
		ones := bits.OnesCount64(v&p.mask) + int(v>>(l.bits-1-p.pos)&1)
		if (ones%2 == 1) != p.odd {
			return Raw, 0, 0, ParityError{Format: format, Bit: p.pos, Odd: p.odd}
		}
	}
	return format, uint32(field(v, l.bits, l.fcPos, l.fcLen)), field(v, l.bits, l.cnPos, l.cnLen), nil
}

// field extracts length bits starting at position pos of an n-bit frame.
func field(v uint64, n, pos, length int) uint64 {
	if length == 0 {
		return 0
	}
	return v >> (n - pos - length) & (uint64(1)<<length - 1)
}

// Encode builds the frame of a card: fields in place, parity computed. It
// returns ErrRange when the facility code or card number does not fit the
// format (a non-zero facility for H10302 included) and ErrFormat for Raw or
// an unknown format.
func Encode(format Format, facility uint32, number uint64) (Frame, error) {
	l, ok := format.layout()
	if !ok || format == Raw {
		return Frame{}, fmt.Errorf("%w: cannot encode %v", ErrFormat, format)
	}
	if facility > format.MaxFacility() {
		return Frame{}, fmt.Errorf("%w: %v facility code %d > %d", ErrRange, format, facility, format.MaxFacility())
	}
	if number > format.MaxNumber() {
		return Frame{}, fmt.Errorf("%w: %v card number %d > %d", ErrRange, format, number, format.MaxNumber())
	}
	var v uint64
	if l.fcLen > 0 {
		v |= uint64(facility) << (l.bits - l.fcPos - l.fcLen)
	}
	v |= number << (l.bits - l.cnPos - l.cnLen)
	for _, p := range l.parity {
		if (bits.OnesCount64(v&p.mask)%2 == 1) != p.odd {
			v |= 1 << (l.bits - 1 - p.pos)
		}
	}
	return frameOf(l.bits, v), nil
}
