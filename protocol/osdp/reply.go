package osdp

import "slices"

// Ack (osdp_ACK): the command was carried out and the PD has nothing to
// report.
type Ack struct{}

// Busy (osdp_BUSY): the PD cannot take the command now. The CP may send it
// again, with the same sequence number.
type Busy struct{}

// Nak (osdp_NAK): the PD refused the command.
type Nak struct {
	Reason NakCode
	Data   []byte // details some reasons carry; usually empty
}

// PDID (osdp_PDID) identifies a PD, in answer to ID.
type PDID struct {
	Vendor        [3]byte // IEEE OUI of the vendor, in wire order
	Model         byte
	Version       byte   // hardware version
	Serial        uint32 // little-endian on the wire
	FirmwareMajor byte
	FirmwareMinor byte
	FirmwareBuild byte
}

// PDCap (osdp_PDCAP) lists a PD's capabilities, in answer to Cap.
type PDCap []Capability

// Capability is one entry of PDCap. What Compliance and Number mean depends
// on the function; see the FunctionCode constants.
type Capability struct {
	Function   FunctionCode
	Compliance byte
	Number     byte
}

// FunctionCode names a PD capability.
type FunctionCode byte

// Capability function codes, with the meaning of their compliance level and
// number of items (from the specification's capabilities table, as libosdp
// doc/protocol/pd-capabilities.rst reproduces it).
const (
	CapContactStatus     FunctionCode = 1  // inputs: compliance 1–4 (unsupervised … supervised with custom EOL), number of inputs
	CapOutputControl     FunctionCode = 2  // outputs: compliance 1–4 (direct … timed and configurable), number of outputs
	CapCardDataFormat    FunctionCode = 3  // compliance 1 bits, 2 BCD, 3 either; number unused
	CapLEDControl        FunctionCode = 4  // compliance 1 on/off, 2 timed, 3 bi-colour, 4 tri-colour; number of LEDs per reader
	CapAudibleOutput     FunctionCode = 5  // compliance 1 on/off, 2 timed; number of buzzers per reader
	CapTextOutput        FunctionCode = 6  // compliance 0 none, 1 one row, 2 two rows, 3 four rows (of 16 characters); number of displays per reader
	CapTimeKeeping       FunctionCode = 7  // compliance 0 none, 1 osdp_TDSET, 2 keeps time
	CapCheckCharacter    FunctionCode = 8  // compliance 0 checksum only, 1 CRC-16 too
	CapCommSecurity      FunctionCode = 9  // compliance bit 0 AES-128; number bit 0 default key (SCBK-D)
	CapReceiveBufferSize FunctionCode = 10 // compliance LSB and number MSB of the PD's receive buffer size
	CapCombinedMsgSize   FunctionCode = 11 // compliance LSB and number MSB of the largest multi-part message
	CapSmartCard         FunctionCode = 12 // compliance bit 0 transparent mode, bit 1 extended packet mode
	CapReaders           FunctionCode = 13 // number of attached readers
	CapBiometrics        FunctionCode = 14 // compliance 0 none, 1–2 fingerprint templates, 3 iris
	CapSecurePINEntry    FunctionCode = 15 // compliance 1 supported
	CapOSDPVersion       FunctionCode = 16 // compliance 0 unspecified, 1 IEC 60839-11-5, 2 SIA OSDP 2.2
)

// Lookup returns the first capability with the given function.
func (p PDCap) Lookup(fn FunctionCode) (Capability, bool) {
	for _, c := range p {
		if c.Function == fn {
			return c, true
		}
	}
	return Capability{}, false
}

// TextDisplay returns the size of the reader displays the PD declares. The
// specification encodes it in the compliance level of CapTextOutput: 1 is
// one row of 16 characters, 2 two rows, 3 four rows; 0 is no display, and
// 4 and above are not defined, so they report ok false too. The number of
// displays per reader is that capability's Number; with none, ok is false.
func (p PDCap) TextDisplay() (rows, cols int, ok bool) {
	c, found := p.Lookup(CapTextOutput)
	if !found || c.Number == 0 {
		return 0, 0, false
	}
	switch c.Compliance {
	case 1:
		return 1, 16, true
	case 2:
		return 2, 16, true
	case 3:
		return 4, 16, true
	}
	return 0, 0, false
}

// ReceiveBufferSize returns the longest frame the PD declares it can
// receive. Without this capability a CP must assume 128 bytes.
func (p PDCap) ReceiveBufferSize() (int, bool) {
	c, ok := p.Lookup(CapReceiveBufferSize)
	return int(c.Compliance) | int(c.Number)<<8, ok
}

// LStatR (osdp_LSTATR) reports the PD's own tamper and power status.
type LStatR struct {
	Tamper       bool // the enclosure is open
	PowerFailure bool // the power supply failed
}

// IStatR (osdp_ISTATR) reports the PD's inputs: one byte per input, 0
// inactive and 1 active, as many as CapContactStatus declares.
type IStatR []byte

// OStatR (osdp_OSTATR) reports the PD's outputs: one byte per output, 0
// inactive and 1 active, as many as CapOutputControl declares.
type OStatR []byte

// RStatR (osdp_RSTATR) reports the tamper status of the readers attached to
// the PD: one byte per reader, 0 normal, 1 not connected, 2 tamper.
type RStatR []byte

// Raw (osdp_RAW) reports a card read as a raw bit array.
type Raw struct {
	Reader byte      // reader number, from 0
	Format RawFormat // how to read the bits
	Bits   uint16    // number of bits
	Data   []byte    // the bits, most significant first: exactly (Bits+7)/8 bytes
}

// RawFormat is the format code of a Raw card read.
type RawFormat byte

// Raw formats.
const (
	RawUnspecified RawFormat = 0 // a raw bit array, format not specified
	RawWiegand     RawFormat = 1 // a Wiegand bit stream, parity bits included
)

// Fmt (osdp_FMT) reports a card read as characters. It was deprecated in
// OSDP 2.2.2 in favour of Raw; it is here to read older PDs.
type Fmt struct {
	Reader    byte   // reader number, from 0
	Direction byte   // 0 forward read, 1 reverse read
	Chars     string // the card data; at most 255 characters
}

// Keypad (osdp_KEYPAD) reports keys pressed on a reader's keypad.
type Keypad struct {
	Reader byte   // reader number, from 0
	Keys   string // one byte per key, at most 255
}

// Com (osdp_COM) reports the PD's communication settings, in answer to
// ComSet: the new ones it is about to switch to.
type Com struct {
	Addr byte
	Baud uint32
}

func (Ack) Code() byte    { return ReplyAck }
func (Busy) Code() byte   { return ReplyBusy }
func (Nak) Code() byte    { return ReplyNak }
func (PDID) Code() byte   { return ReplyPDID }
func (PDCap) Code() byte  { return ReplyPDCap }
func (LStatR) Code() byte { return ReplyLStatR }
func (IStatR) Code() byte { return ReplyIStatR }
func (OStatR) Code() byte { return ReplyOStatR }
func (RStatR) Code() byte { return ReplyRStatR }
func (Raw) Code() byte    { return ReplyRaw }
func (Fmt) Code() byte    { return ReplyFmt }
func (Keypad) Code() byte { return ReplyKeypad }
func (Com) Code() byte    { return ReplyCom }

func (Ack) reply()    {}
func (Busy) reply()   {}
func (Nak) reply()    {}
func (PDID) reply()   {}
func (PDCap) reply()  {}
func (LStatR) reply() {}
func (IStatR) reply() {}
func (OStatR) reply() {}
func (RStatR) reply() {}
func (Raw) reply()    {}
func (Fmt) reply()    {}
func (Keypad) reply() {}
func (Com) reply()    {}

func (Ack) AppendData(dst []byte) ([]byte, error)  { return dst, nil }
func (Busy) AppendData(dst []byte) ([]byte, error) { return dst, nil }

func (m Nak) AppendData(dst []byte) ([]byte, error) {
	return append(append(dst, byte(m.Reason)), m.Data...), nil
}

func (m PDID) AppendData(dst []byte) ([]byte, error) {
	dst = append(dst, m.Vendor[:]...)
	dst = append(dst, m.Model, m.Version, byte(m.Serial), byte(m.Serial>>8), byte(m.Serial>>16), byte(m.Serial>>24))
	return append(dst, m.FirmwareMajor, m.FirmwareMinor, m.FirmwareBuild), nil
}

func (m PDCap) AppendData(dst []byte) ([]byte, error) {
	for _, c := range m {
		dst = append(dst, byte(c.Function), c.Compliance, c.Number)
	}
	return dst, nil
}

func (m LStatR) AppendData(dst []byte) ([]byte, error) {
	return append(dst, b2u(m.Tamper), b2u(m.PowerFailure)), nil
}

func (m IStatR) AppendData(dst []byte) ([]byte, error) { return appendStatus(dst, ReplyIStatR, m) }
func (m OStatR) AppendData(dst []byte) ([]byte, error) { return appendStatus(dst, ReplyOStatR, m) }
func (m RStatR) AppendData(dst []byte) ([]byte, error) { return appendStatus(dst, ReplyRStatR, m) }

func appendStatus(dst []byte, code byte, m []byte) ([]byte, error) {
	if len(m) == 0 {
		return dst, invalidError(code, true, "no status entries")
	}
	return append(dst, m...), nil
}

func (m Raw) AppendData(dst []byte) ([]byte, error) {
	if want := (int(m.Bits) + 7) / 8; len(m.Data) != want {
		return dst, invalidError(ReplyRaw, true, "%d data bytes for %d bits, want %d", len(m.Data), m.Bits, want)
	}
	dst = append(dst, m.Reader, byte(m.Format), byte(m.Bits), byte(m.Bits>>8))
	return append(dst, m.Data...), nil
}

func (m Fmt) AppendData(dst []byte) ([]byte, error) {
	if len(m.Chars) > 0xFF {
		return dst, invalidError(ReplyFmt, true, "%d characters, at most 255", len(m.Chars))
	}
	return append(append(dst, m.Reader, m.Direction, byte(len(m.Chars))), m.Chars...), nil
}

func (m Keypad) AppendData(dst []byte) ([]byte, error) {
	if len(m.Keys) > 0xFF {
		return dst, invalidError(ReplyKeypad, true, "%d keys, at most 255", len(m.Keys))
	}
	return append(append(dst, m.Reader, byte(len(m.Keys))), m.Keys...), nil
}

func (m Com) AppendData(dst []byte) ([]byte, error) {
	return append(dst, m.Addr, byte(m.Baud), byte(m.Baud>>8), byte(m.Baud>>16), byte(m.Baud>>24)), nil
}

// UnmarshalData decodes an osdp_ACK data block, which is empty.
func (m *Ack) UnmarshalData(data []byte) error { return wantLen(ReplyAck, true, data, 0) }

// UnmarshalData decodes an osdp_BUSY data block, which is empty.
func (m *Busy) UnmarshalData(data []byte) error { return wantLen(ReplyBusy, true, data, 0) }

// UnmarshalData decodes an osdp_NAK data block: the reason, then any
// details.
func (m *Nak) UnmarshalData(data []byte) error {
	if len(data) == 0 {
		return lenError(ReplyNak, true, 0, "at least 1")
	}
	m.Reason, m.Data = NakCode(data[0]), clone(m.Data, data[1:])
	return nil
}

// UnmarshalData decodes an osdp_PDID data block, exactly 12 bytes.
func (m *PDID) UnmarshalData(data []byte) error {
	if err := wantLen(ReplyPDID, true, data, 12); err != nil {
		return err
	}
	*m = PDID{
		Vendor: [3]byte(data[0:3]), Model: data[3], Version: data[4], Serial: le32(data[5:]),
		FirmwareMajor: data[9], FirmwareMinor: data[10], FirmwareBuild: data[11],
	}
	return nil
}

// UnmarshalData decodes an osdp_PDCAP data block: 3 bytes per capability.
func (m *PDCap) UnmarshalData(data []byte) error {
	if len(data)%3 != 0 {
		return lenError(ReplyPDCap, true, len(data), "a multiple of 3")
	}
	*m = (*m)[:0]
	for b := range slices.Chunk(data, 3) {
		*m = append(*m, Capability{Function: FunctionCode(b[0]), Compliance: b[1], Number: b[2]})
	}
	if len(*m) == 0 {
		*m = nil
	}
	return nil
}

// UnmarshalData decodes an osdp_LSTATR data block: tamper, then power, each
// 0 (normal) or 1.
func (m *LStatR) UnmarshalData(data []byte) error {
	if err := wantLen(ReplyLStatR, true, data, 2); err != nil {
		return err
	}
	if data[0] > 1 || data[1] > 1 {
		return invalidError(ReplyLStatR, true, "status % X, want 0 or 1", data)
	}
	*m = LStatR{Tamper: data[0] == 1, PowerFailure: data[1] == 1}
	return nil
}

// UnmarshalData decodes an osdp_ISTATR data block: one byte per input.
func (m *IStatR) UnmarshalData(data []byte) error {
	return unmarshalStatus((*[]byte)(m), ReplyIStatR, data)
}

// UnmarshalData decodes an osdp_OSTATR data block: one byte per output.
func (m *OStatR) UnmarshalData(data []byte) error {
	return unmarshalStatus((*[]byte)(m), ReplyOStatR, data)
}

// UnmarshalData decodes an osdp_RSTATR data block: one byte per reader.
func (m *RStatR) UnmarshalData(data []byte) error {
	return unmarshalStatus((*[]byte)(m), ReplyRStatR, data)
}

func unmarshalStatus(m *[]byte, code byte, data []byte) error {
	if len(data) == 0 {
		return lenError(code, true, 0, "at least 1")
	}
	*m = clone(*m, data)
	return nil
}

// UnmarshalData decodes an osdp_RAW data block: reader, format, bit count
// (2 bytes, little-endian), then exactly (bits+7)/8 bytes of card data.
func (m *Raw) UnmarshalData(data []byte) error {
	if len(data) < 4 || len(data) != 4+(int(le16(data[2:]))+7)/8 {
		return lenError(ReplyRaw, true, len(data), "4 plus the bit count (bytes 3–4) rounded up to bytes")
	}
	m.Reader, m.Format, m.Bits, m.Data = data[0], RawFormat(data[1]), le16(data[2:]), clone(m.Data, data[4:])
	return nil
}

// UnmarshalData decodes an osdp_FMT data block: reader, read direction,
// length, then exactly that many characters.
func (m *Fmt) UnmarshalData(data []byte) error {
	if len(data) < 3 || len(data) != 3+int(data[2]) {
		return lenError(ReplyFmt, true, len(data), "3 plus the length in byte 3")
	}
	*m = Fmt{Reader: data[0], Direction: data[1], Chars: string(data[3:])}
	return nil
}

// UnmarshalData decodes an osdp_KEYPAD data block: reader, count, then
// exactly that many keys.
func (m *Keypad) UnmarshalData(data []byte) error {
	if len(data) < 2 || len(data) != 2+int(data[1]) {
		return lenError(ReplyKeypad, true, len(data), "2 plus the count in byte 2")
	}
	*m = Keypad{Reader: data[0], Keys: string(data[2:])}
	return nil
}

// UnmarshalData decodes an osdp_COM data block.
func (m *Com) UnmarshalData(data []byte) error {
	if err := wantLen(ReplyCom, true, data, 5); err != nil {
		return err
	}
	*m = Com{Addr: data[0], Baud: le32(data[1:])}
	return nil
}

func b2u(b bool) byte {
	if b {
		return 1
	}
	return 0
}

// clone copies src into dst's memory, so that a message never aliases the
// frame it came from; nil for an empty src keeps decoded values comparable.
func clone(dst, src []byte) []byte {
	if len(src) == 0 {
		return nil
	}
	return append(dst[:0], src...)
}
