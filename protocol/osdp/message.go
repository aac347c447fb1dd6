package osdp

import "fmt"

// Command codes (CP → PD). The package has a type for each code marked *;
// the others are listed for logs and for frames built by hand.
const (
	CmdPoll       = 0x60 // * osdp_POLL
	CmdID         = 0x61 // * osdp_ID
	CmdCap        = 0x62 // * osdp_CAP
	CmdLStat      = 0x64 // * osdp_LSTAT
	CmdIStat      = 0x65 // * osdp_ISTAT
	CmdOStat      = 0x66 // * osdp_OSTAT
	CmdRStat      = 0x67 // * osdp_RSTAT
	CmdOut        = 0x68 // * osdp_OUT
	CmdLED        = 0x69 // * osdp_LED
	CmdBuz        = 0x6A // * osdp_BUZ
	CmdText       = 0x6B // * osdp_TEXT
	CmdComSet     = 0x6E // * osdp_COMSET
	CmdKeySet     = 0x75 // osdp_KEYSET
	CmdChlng      = 0x76 // osdp_CHLNG
	CmdSCrypt     = 0x77 // osdp_SCRYPT
	CmdACURxSize  = 0x7B // * osdp_ACURXSIZE
	CmdMfg        = 0x80 // osdp_MFG
	CmdKeepActive = 0xA7 // * osdp_KEEPACTIVE
)

// Reply codes (PD → CP). The package has a type for each code marked *.
const (
	ReplyAck    = 0x40 // * osdp_ACK
	ReplyNak    = 0x41 // * osdp_NAK
	ReplyPDID   = 0x45 // * osdp_PDID
	ReplyPDCap  = 0x46 // * osdp_PDCAP
	ReplyLStatR = 0x48 // * osdp_LSTATR
	ReplyIStatR = 0x49 // * osdp_ISTATR
	ReplyOStatR = 0x4A // * osdp_OSTATR
	ReplyRStatR = 0x4B // * osdp_RSTATR
	ReplyRaw    = 0x50 // * osdp_RAW
	ReplyFmt    = 0x51 // * osdp_FMT
	ReplyKeypad = 0x53 // * osdp_KEYPAD
	ReplyCom    = 0x54 // * osdp_COM
	ReplyCCrypt = 0x76 // osdp_CCRYPT
	ReplyRMACI  = 0x78 // osdp_RMAC_I
	ReplyBusy   = 0x79 // * osdp_BUSY
	ReplyMfgRep = 0x90 // osdp_MFGREP
)

// Message is a typed command or reply: a code and the data block that goes
// with it. Every message type also has an UnmarshalData method, which
// decodes a data block into it with strict length checks.
type Message interface {
	// Code returns the command or reply code.
	Code() byte
	// AppendData appends the encoded data block to dst. It fails with
	// ErrInvalid when a field cannot be encoded (a text longer than 32
	// characters, card data that does not match its bit count, …).
	AppendData(dst []byte) ([]byte, error)
}

// Command is a message a CP sends to a PD.
type Command interface {
	Message
	command()
}

// Reply is a message a PD sends to a CP.
type Reply interface {
	Message
	reply()
}

// DecodeCommand decodes the data block of a command with the given code.
// Errors wrap ErrUnknownCode for a code the package has no type for (a PD
// answers NAK 3, see NakFor), ErrDataLength for a data block of the wrong
// length (NAK 2), and ErrInvalid for a value out of range. The message
// shares no memory with data.
func DecodeCommand(code byte, data []byte) (Command, error) {
	switch code {
	case CmdPoll:
		return asCommand[Poll](data)
	case CmdID:
		return asCommand[ID](data)
	case CmdCap:
		return asCommand[Cap](data)
	case CmdLStat:
		return asCommand[LStat](data)
	case CmdIStat:
		return asCommand[IStat](data)
	case CmdOStat:
		return asCommand[OStat](data)
	case CmdRStat:
		return asCommand[RStat](data)
	case CmdOut:
		return asCommand[Out](data)
	case CmdLED:
		return asCommand[LED](data)
	case CmdBuz:
		return asCommand[Buz](data)
	case CmdText:
		return asCommand[Text](data)
	case CmdComSet:
		return asCommand[ComSet](data)
	case CmdACURxSize:
		return asCommand[ACURxSize](data)
	case CmdKeepActive:
		return asCommand[KeepActive](data)
	}
	return nil, fmt.Errorf("%w: command %s", ErrUnknownCode, CodeName(code, false))
}

// DecodeReply decodes the data block of a reply with the given code. Errors
// wrap ErrUnknownCode, ErrDataLength or ErrInvalid, as for DecodeCommand.
// The message shares no memory with data.
func DecodeReply(code byte, data []byte) (Reply, error) {
	switch code {
	case ReplyAck:
		return asReply[Ack](data)
	case ReplyNak:
		return asReply[Nak](data)
	case ReplyPDID:
		return asReply[PDID](data)
	case ReplyPDCap:
		return asReply[PDCap](data)
	case ReplyLStatR:
		return asReply[LStatR](data)
	case ReplyIStatR:
		return asReply[IStatR](data)
	case ReplyOStatR:
		return asReply[OStatR](data)
	case ReplyRStatR:
		return asReply[RStatR](data)
	case ReplyRaw:
		return asReply[Raw](data)
	case ReplyFmt:
		return asReply[Fmt](data)
	case ReplyKeypad:
		return asReply[Keypad](data)
	case ReplyCom:
		return asReply[Com](data)
	case ReplyBusy:
		return asReply[Busy](data)
	}
	return nil, fmt.Errorf("%w: reply %s", ErrUnknownCode, CodeName(code, true))
}

// asCommand decodes data into a new T, returning nil on error so that no
// half-decoded message escapes.
func asCommand[T Command, PT unmarshaler[T]](data []byte) (Command, error) {
	var m T
	if err := PT(&m).UnmarshalData(data); err != nil {
		return nil, err
	}
	return m, nil
}

// asReply is asCommand for replies.
func asReply[T Reply, PT unmarshaler[T]](data []byte) (Reply, error) {
	var m T
	if err := PT(&m).UnmarshalData(data); err != nil {
		return nil, err
	}
	return m, nil
}

type unmarshaler[T any] interface {
	*T
	UnmarshalData([]byte) error
}

var commandNames = map[byte]string{
	CmdPoll: "osdp_POLL", CmdID: "osdp_ID", CmdCap: "osdp_CAP", 0x63: "osdp_DIAG",
	CmdLStat: "osdp_LSTAT", CmdIStat: "osdp_ISTAT", CmdOStat: "osdp_OSTAT", CmdRStat: "osdp_RSTAT",
	CmdOut: "osdp_OUT", CmdLED: "osdp_LED", CmdBuz: "osdp_BUZ", CmdText: "osdp_TEXT",
	0x6D: "osdp_TDSET", CmdComSet: "osdp_COMSET", 0x73: "osdp_BIOREAD", 0x74: "osdp_BIOMATCH",
	CmdKeySet: "osdp_KEYSET", CmdChlng: "osdp_CHLNG", CmdSCrypt: "osdp_SCRYPT", 0x7A: "osdp_ABORT",
	CmdACURxSize: "osdp_ACURXSIZE", 0x7C: "osdp_FILETRANSFER", CmdMfg: "osdp_MFG",
	0xA1: "osdp_XWR", CmdKeepActive: "osdp_KEEPACTIVE",
}

var replyNames = map[byte]string{
	ReplyAck: "osdp_ACK", ReplyNak: "osdp_NAK", ReplyPDID: "osdp_PDID", ReplyPDCap: "osdp_PDCAP",
	ReplyLStatR: "osdp_LSTATR", ReplyIStatR: "osdp_ISTATR", ReplyOStatR: "osdp_OSTATR",
	ReplyRStatR: "osdp_RSTATR", ReplyRaw: "osdp_RAW", ReplyFmt: "osdp_FMT", ReplyKeypad: "osdp_KEYPAD",
	ReplyCom: "osdp_COM", 0x57: "osdp_BIOREADR", 0x58: "osdp_BIOMATCHR", ReplyCCrypt: "osdp_CCRYPT",
	ReplyRMACI: "osdp_RMAC_I", ReplyBusy: "osdp_BUSY", 0x7A: "osdp_FTSTAT", ReplyMfgRep: "osdp_MFGREP",
	0xB1: "osdp_XRD",
}

// CodeName returns the specification's name for a command code (reply
// false) or reply code (reply true), such as "osdp_POLL", or the code in hex
// if it has none. Command and reply codes overlap (0x76 is osdp_CHLNG and
// osdp_CCRYPT), hence the direction.
func CodeName(code byte, reply bool) string {
	names := commandNames
	if reply {
		names = replyNames
	}
	if s, ok := names[code]; ok {
		return s
	}
	return fmt.Sprintf("0x%02X", code)
}
