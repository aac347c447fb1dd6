package osdp

import (
	"errors"
	"fmt"
)

// NakCode is the error code of an osdp_NAK reply: why a PD refused a
// command. It implements error, so a PD's handlers can return one and a CP
// can report the one it received; test for a particular code with
// [errors.Is] or a plain comparison.
type NakCode byte

// NAK error codes, from the specification's osdp_NAK table (the same list is
// in libosdp's osdp.h and the SIA conformance tool's iec-nak.h).
const (
	NakCheck               NakCode = 1 // message check character(s) error: bad checksum or CRC
	NakCommandLength       NakCode = 2 // command length error
	NakUnknownCommand      NakCode = 3 // unknown command code: not implemented by the PD
	NakSequence            NakCode = 4 // unexpected sequence number in the header
	NakUnsupportedSecurity NakCode = 5 // the PD does not support the security block received
	NakEncryptionRequired  NakCode = 6 // encrypted communication required: security conditions not met
	NakBioType             NakCode = 7 // BIO_TYPE not supported
	NakBioFormat           NakCode = 8 // BIO_FORMAT not supported
	NakUnableToProcess     NakCode = 9 // unable to process the command record
)

var nakText = [...]string{
	NakCheck:               "bad checksum or CRC",
	NakCommandLength:       "command length error",
	NakUnknownCommand:      "unknown command",
	NakSequence:            "sequence number error",
	NakUnsupportedSecurity: "unsupported security block",
	NakEncryptionRequired:  "encrypted communication required",
	NakBioType:             "biometric type not supported",
	NakBioFormat:           "biometric format not supported",
	NakUnableToProcess:     "unable to process command",
}

func (c NakCode) Error() string {
	if int(c) < len(nakText) && nakText[c] != "" {
		return fmt.Sprintf("osdp: NAK %d: %s", byte(c), nakText[c])
	}
	return fmt.Sprintf("osdp: NAK %d", byte(c))
}

// NakFor returns the NAK code a PD answers when handling a command failed
// with err: the code itself if err wraps a NakCode, NakCheck for a bad check
// character, NakCommandLength for a wrong length, NakUnknownCommand for an
// unknown code, NakUnsupportedSecurity for a malformed security block, and
// NakUnableToProcess for anything else. It returns 0 for a nil error.
func NakFor(err error) NakCode {
	var code NakCode
	switch {
	case err == nil:
		return 0
	case errors.As(err, &code):
		return code
	case errors.Is(err, ErrBadCheck):
		return NakCheck
	case errors.Is(err, ErrDataLength), errors.Is(err, ErrFrameTooLong), errors.Is(err, ErrBadLength):
		return NakCommandLength
	case errors.Is(err, ErrUnknownCode):
		return NakUnknownCommand
	case errors.Is(err, ErrBadSCB):
		return NakUnsupportedSecurity
	}
	return NakUnableToProcess
}
