package wiegand

import (
	"encoding/hex"
	"fmt"
	"strconv"
)

// Bounds of the canonical card key: the widest facility code (H10306, H10304:
// 16 bits) and the widest card number (H10302: 35 bits) of the formats above.
const (
	MaxKeyFacility = 1<<16 - 1
	MaxKeyNumber   = 1<<35 - 1
	MaxPINDigits   = 16
)

// Kind is what a Key identifies.
type Kind uint8

const (
	KindNone Kind = iota // the zero Key
	KindCard             // a decoded card: facility code and card number
	KindRaw              // a frame of unknown layout: bit count and bits
	KindPIN              // digits typed on a keypad
)

func (k Kind) String() string {
	switch k {
	case KindCard:
		return "card"
	case KindRaw:
		return "raw"
	case KindPIN:
		return "pin"
	}
	return ""
}

// Key is the canonical credential identifier: the same physical card read
// over OSDP RAW, OSDP FMT or Wiegand GPIO gives the same Key, and equal keys
// have equal text. It is a comparable value of fixed size (use it as a map key
// or compare with ==); only this package's constructors make non-zero keys,
// so every Key is canonical. The package documentation gives the rules.
type Key struct {
	kind Kind
	n    uint8  // raw: bit count; pin: digit count
	fc   uint16 // card: facility code
	cn   uint64 // card: card number
	b    [16]byte
}

// CardKey returns the key of facility code facility and card number number,
// whatever format they came in. ErrRange if facility > MaxKeyFacility or
// number > MaxKeyNumber.
func CardKey(facility uint32, number uint64) (Key, error) {
	if facility > MaxKeyFacility || number > MaxKeyNumber {
		return Key{}, fmt.Errorf("%w: card %d:%d", ErrRange, facility, number)
	}
	return Key{kind: KindCard, fc: uint16(facility), cn: number}, nil
}

// RawKey returns the key of a frame taken as opaque bits. KeyFromFrame uses
// it for lengths with no known format; call it directly only for a site whose
// cards of a known length use a proprietary layout. ErrLength for an empty
// frame.
func RawKey(f Frame) (Key, error) {
	if f.Len() == 0 {
		return Key{}, fmt.Errorf("%w: empty frame", ErrLength)
	}
	return Key{kind: KindRaw, n: f.n, b: f.bits}, nil
}

// PINKey returns the key of a keypad PIN: 1..MaxPINDigits ASCII digits,
// leading zeros significant ("0042" and "42" are different PINs). Anything
// else is ErrSyntax.
func PINKey(digits string) (Key, error) {
	if len(digits) == 0 || len(digits) > MaxPINDigits || !allDigits(digits) {
		return Key{}, fmt.Errorf("%w: PIN must be 1 to %d digits", ErrSyntax, MaxPINDigits)
	}
	k := Key{kind: KindPIN, n: uint8(len(digits))}
	copy(k.b[:], digits)
	return k, nil
}

// Key returns the card's canonical key: a card key from facility code and
// number, or a raw key for a Raw card. It is the zero Key when the card's
// values do not fit a key (only possible for a Card built by hand).
func (c Card) Key() Key {
	var k Key
	if c.Format == Raw {
		k, _ = RawKey(c.Frame)
	} else {
		k, _ = CardKey(c.Facility, c.Number)
	}
	return k
}

// KeyFromFrame decodes a frame (Decode, with the same hints) and returns its
// key: a card key for a known format, a raw key for any other length. Parity
// failures and empty frames are errors, never keys: a misread card must be
// read again, not looked up.
func KeyFromFrame(f Frame, hints ...Format) (Key, error) {
	format, fc, cn, err := decode(f, hints)
	if err != nil {
		return Key{}, err
	}
	if format == Raw {
		return RawKey(f)
	}
	return CardKey(fc, cn)
}

// maxFMT bounds the card data of an OSDP FMT reply that KeyFromFMT looks at.
const maxFMT = 64

// KeyFromFMT returns the key of the ASCII card data of an OSDP FMT
// (formatted card data) reply. Accepted, after trimming spaces, tabs, CR, LF
// and NUL at both ends:
//
//	"F:N" or "F-N"  facility code F, card number N
//	"N"             card number N with facility code 0
//
// F and N are decimal digits; leading zeros are allowed (readers pad) and
// dropped. The result is the card key a RAW or GPIO read of the same card
// gives when the reader prints the facility code and card number of the
// card's format; plain "N" matches only formats without facility code
// (H10302) or cards whose facility code is 0. Anything else, more than 64
// bytes or a field of more than 20 digits included, is ErrSyntax; numbers over
// the key bounds are ErrRange.
func KeyFromFMT(data []byte) (Key, error) {
	if len(data) > maxFMT {
		return Key{}, fmt.Errorf("%w: FMT card data of %d bytes", ErrSyntax, len(data))
	}
	s := trimFMT(data)
	fcText, cnText := "", s
	for i := 0; i < len(s); i++ {
		if s[i] == ':' || s[i] == '-' {
			fcText, cnText = s[:i], s[i+1:]
			if fcText == "" {
				return Key{}, fmt.Errorf("%w: FMT %q has no facility code", ErrSyntax, s)
			}
			break
		}
	}
	var fc uint64
	var ok bool
	if fcText != "" {
		if fc, ok = parseDigits(fcText, true); !ok {
			return Key{}, fmt.Errorf("%w: FMT %q", ErrSyntax, s)
		}
	}
	cn, ok := parseDigits(cnText, true)
	if !ok {
		return Key{}, fmt.Errorf("%w: FMT %q", ErrSyntax, s)
	}
	if fc > MaxKeyFacility {
		return Key{}, fmt.Errorf("%w: FMT facility code %d", ErrRange, fc)
	}
	return CardKey(uint32(fc), cn)
}

func trimFMT(b []byte) string {
	isSpace := func(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == 0 }
	for len(b) > 0 && isSpace(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return string(b)
}

// String returns the key's canonical text, "" for the zero Key:
//
//	card:F:N       card:123:45678
//	raw:B:HEX      raw:40:0123456789
//	pin:DIGITS     pin:0042
func (k Key) String() string {
	b, _ := k.AppendText(nil)
	return string(b)
}

// AppendText appends the canonical text to b (encoding.TextAppender); with a
// buffer of 40 bytes it does not allocate.
func (k Key) AppendText(b []byte) ([]byte, error) {
	switch k.kind {
	case KindCard:
		b = append(b, "card:"...)
		b = strconv.AppendUint(b, uint64(k.fc), 10)
		b = append(b, ':')
		b = strconv.AppendUint(b, k.cn, 10)
	case KindRaw:
		b = append(b, "raw:"...)
		b = strconv.AppendUint(b, uint64(k.n), 10)
		b = append(b, ':')
		b = hex.AppendEncode(b, k.b[:(int(k.n)+7)/8])
	case KindPIN:
		b = append(b, "pin:"...)
		b = append(b, k.b[:k.n]...)
	}
	return b, nil
}

// MarshalText returns the canonical text; the zero Key marshals as empty text.
func (k Key) MarshalText() ([]byte, error) { return k.AppendText(nil) }

// UnmarshalText parses canonical text with ParseKey; empty text gives the
// zero Key.
func (k *Key) UnmarshalText(text []byte) error {
	if len(text) == 0 {
		*k = Key{}
		return nil
	}
	p, err := ParseKey(string(text))
	if err != nil {
		return err
	}
	*k = p
	return nil
}

// IsZero reports whether k is the zero Key, which identifies nothing.
func (k Key) IsZero() bool { return k.kind == KindNone }

// Kind reports what the key identifies.
func (k Key) Kind() Kind { return k.kind }

// Card returns the facility code and card number of a card key; ok is false
// for other kinds.
func (k Key) Card() (facility uint32, number uint64, ok bool) {
	return uint32(k.fc), k.cn, k.kind == KindCard
}

// maxKeyText bounds the text ParseKey looks at; the longest canonical key,
// raw:128: and 32 hex digits, is 40 bytes.
const maxKeyText = 40

// ParseKey parses canonical key text and accepts nothing else: the kind in
// lower case, decimal numbers without sign or leading zeros and within the
// key bounds, raw bits as exactly ceil(B/8) bytes of lower-case hex with zero
// pad bits, PINs of 1..MaxPINDigits digits. Errors are ErrSyntax, or ErrRange
// for a number too large. ParseKey(k.String()) == k for every non-zero Key.
func ParseKey(s string) (Key, error) {
	bad := func() (Key, error) { return Key{}, fmt.Errorf("%w: key %.48q", ErrSyntax, s) }
	if len(s) > maxKeyText {
		return bad()
	}
	kind, rest, ok := cut(s)
	if !ok {
		return bad()
	}
	switch kind {
	case "card":
		fcText, cnText, ok := cut(rest)
		if !ok {
			return bad()
		}
		fc, ok1 := parseDigits(fcText, false)
		cn, ok2 := parseDigits(cnText, false)
		if !ok1 || !ok2 {
			return bad()
		}
		if fc > MaxKeyFacility {
			return Key{}, fmt.Errorf("%w: key facility code %d", ErrRange, fc)
		}
		return CardKey(uint32(fc), cn)
	case "raw":
		nText, hexText, ok := cut(rest)
		if !ok {
			return bad()
		}
		n, ok := parseDigits(nText, false)
		if !ok || n < 1 || n > MaxBits || len(hexText) != 2*((int(n)+7)/8) {
			return bad()
		}
		var data [MaxBits / 8]byte
		for i := 0; i < len(hexText); i += 2 {
			hi, ok1 := lowerHex(hexText[i])
			lo, ok2 := lowerHex(hexText[i+1])
			if !ok1 || !ok2 {
				return bad()
			}
			data[i/2] = hi<<4 | lo
		}
		f, err := FromBytes(int(n), data[:len(hexText)/2])
		if err != nil || f.bits != data { // pad bits must be zero
			return bad()
		}
		return RawKey(f)
	case "pin":
		k, err := PINKey(rest)
		if err != nil {
			return bad()
		}
		return k, nil
	}
	return bad()
}

// cut splits s at its first ':'.
func cut(s string) (before, after string, ok bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == ':' {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

// parseDigits parses 1..20 decimal digits into a uint64. Without
// leadingZeros, "0" is the only number that may start with '0'.
func parseDigits(s string, leadingZeros bool) (uint64, bool) {
	if len(s) == 0 || len(s) > 20 || !allDigits(s) {
		return 0, false
	}
	if !leadingZeros && len(s) > 1 && s[0] == '0' {
		return 0, false
	}
	v, err := strconv.ParseUint(s, 10, 64)
	return v, err == nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func lowerHex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}
