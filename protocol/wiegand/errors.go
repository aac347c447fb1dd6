package wiegand

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error this package returns matches exactly one of
// them with errors.Is, so callers can map it to a log reason or a counter
// without parsing text.
var (
	// ErrLength: a bit count outside 1..MaxBits, a byte slice that does not
	// hold exactly that many bits, or a frame whose length does not match
	// the format it is decoded as.
	ErrLength = errors.New("wiegand: bad bit count")
	// ErrFull is returned by Frame.AppendBit when the frame already holds
	// MaxBits bits.
	ErrFull = errors.New("wiegand: frame full")
	// ErrParity: a parity bit does not match its data. The error is a
	// ParityError that names the bit.
	ErrParity = errors.New("wiegand: parity error")
	// ErrRange: a facility code or card number does not fit the format or
	// the canonical key.
	ErrRange = errors.New("wiegand: value out of range")
	// ErrFormat: an unknown Format, or one that cannot be encoded (Raw).
	ErrFormat = errors.New("wiegand: unknown format")
	// ErrSyntax: malformed text given to ParseBits, ParseKey, ParseFormat,
	// KeyFromFMT or PINKey.
	ErrSyntax = errors.New("wiegand: malformed input")
)

// ParityError reports the parity bit that failed, as a value that carries
// it (errors.As). It matches ErrParity with errors.Is.
//
// Parity bits are checked in the order the format computes them, so a
// flipped parity bit is reported as itself even where a later parity (the
// Corporate 1000 whole-frame bit) covers it too.
type ParityError struct {
	Format Format
	Bit    int  // position of the parity bit in the frame, 0 = first bit sent
	Odd    bool // true for an odd parity bit, false for even
}

func (e ParityError) Error() string {
	kind := "even"
	if e.Odd {
		kind = "odd"
	}
	return fmt.Sprintf("wiegand: %v parity error: %s parity bit %d", e.Format, kind, e.Bit)
}

// Is makes errors.Is(err, ErrParity) true for every ParityError.
func (e ParityError) Is(target error) bool { return target == ErrParity }
