package osdp

import (
	"errors"
	"fmt"
)

// Errors reported by this package. They are wrapped with context (the
// frame's address and length, or the message and the data length), so test
// for them with [errors.Is].
var (
	// ErrBadSOM: the bytes given to ParseFrame do not start with a
	// start-of-message byte (after an optional mark byte).
	ErrBadSOM = errors.New("osdp: no start of message")
	// ErrBadLength: the frame's length field does not fit its control byte
	// or the bytes given.
	ErrBadLength = errors.New("osdp: bad frame length")
	// ErrFrameTooLong: the frame's length field exceeds the decoder's limit
	// (a PD answers NAK 2 to such a frame addressed to it), or an encoded
	// frame would not fit the 16-bit length field.
	ErrFrameTooLong = errors.New("osdp: frame longer than the limit")
	// ErrBadControl: reserved bits 4–7 of the control byte are set.
	ErrBadControl = errors.New("osdp: reserved control bits set")
	// ErrBadCheck: the CRC-16 or checksum does not match.
	ErrBadCheck = errors.New("osdp: bad CRC or checksum")
	// ErrBadSCB: the security control block is malformed, or there is no
	// room for the MAC its type requires.
	ErrBadSCB = errors.New("osdp: malformed security block")
	// ErrDirection: a reply reached a decoder that accepts commands only,
	// or a command reached one that accepts replies only.
	ErrDirection = errors.New("osdp: frame in the wrong direction")

	// ErrDataLength: a message's data block has the wrong length for its
	// code. A PD answers NAK 2.
	ErrDataLength = errors.New("osdp: wrong data length")
	// ErrUnknownCode: DecodeCommand or DecodeReply has no type for the
	// code. A PD answers NAK 3.
	ErrUnknownCode = errors.New("osdp: unknown code")
	// ErrInvalid: a field holds a value the encoding cannot carry, such as
	// a sequence number above 3 or a text longer than 32 characters.
	ErrInvalid = errors.New("osdp: invalid value")
)

// FrameError describes a frame that was rejected. It carries the address
// byte and length field as received, so that a PD can tell whether the
// frame was meant for it (and answer, say, NAK 2 to an overlong one) even
// though the frame itself could not be used.
type FrameError struct {
	Err  error // ErrBadLength, ErrFrameTooLong, ErrBadControl, ErrBadCheck, ErrBadSCB or ErrDirection
	Addr byte  // address byte as received, reply bit included
	Len  int   // length field as received; 0 if the header was cut short
}

func (e *FrameError) Error() string {
	return fmt.Sprintf("%v (address byte 0x%02X, length %d)", e.Err, e.Addr, e.Len)
}

func (e *FrameError) Unwrap() error { return e.Err }

// lenError reports a data block of the wrong length for a message.
func lenError(code byte, reply bool, got int, want string) error {
	return fmt.Errorf("%w: %s has %d data bytes, want %s", ErrDataLength, CodeName(code, reply), got, want)
}

// invalidError reports a field that cannot be encoded or decoded.
func invalidError(code byte, reply bool, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrInvalid, CodeName(code, reply), fmt.Sprintf(format, args...))
}
