package osdp

import (
	"bytes"
	"fmt"
)

// Framing bytes and limits.
const (
	MarkByte      = 0xFF // optional byte before SOM that marks the line before a frame
	SOM           = 0x53 // start of message
	BroadcastAddr = 0x7F // address every PD answers; a reply to it comes from 0xFF

	// SpecMaxFrameLen is the largest frame the specification allows
	// (length field, mark byte excluded); every device must tolerate it on
	// the line, while a PD only needs to accept what it declares in PDCAP
	// (at least 128 bytes).
	SpecMaxFrameLen = 1440
	// DefaultMaxFrameLen is a Decoder's default frame limit. It is the
	// specification's maximum, so that a decoder never rejects a valid frame
	// on size alone; 1440 bytes per serial port is nothing on a controller.
	// A simulated PD that declares a smaller receive buffer sets its own
	// limit and answers NAK 2 to longer frames (see FrameError).
	DefaultMaxFrameLen = SpecMaxFrameLen

	// MaxSCBData is the most data a security control block can carry: its
	// length byte counts itself and the type byte too.
	MaxSCBData = 0xFF - 2

	headerLen    = 5 // SOM, address, length (2), control
	macLen       = 4
	replyBit     = 0x80
	ctrlSeq      = 0x03
	ctrlCRC      = 0x04
	ctrlSCB      = 0x08
	ctrlReserved = 0xF0
)

// Frame is one OSDP message as it travels on the wire, minus the check
// characters, which are computed on encoding and verified on decoding.
//
// A Frame returned by a Decoder aliases the decoder's buffer (Data, SCB and
// SCB.Data) and stays valid only until the decoder moves on; use Clone to
// keep it.
type Frame struct {
	Addr  byte           // PD address: 0x00–0x7E, or BroadcastAddr; without the reply bit
	Reply bool           // set on replies (PD → CP): bit 7 of the address byte
	Seq   uint8          // sequence number, 0–3
	CRC   bool           // check with CRC-16 (2 bytes) instead of the 8-bit checksum
	Mark  bool           // a MarkByte precedes the frame
	SCB   *SecurityBlock // security control block, nil if absent
	Code  byte           // command or reply code
	Data  []byte         // data block; ciphertext when SCB.Type is SCS17 or SCS18
	// MAC is the secure channel message authentication code. It is on the
	// wire only when SCB.Type.HasMAC(), where it covers the encoded bytes
	// from SOM up to the MAC: a secure channel encodes with a zero MAC,
	// computes the MAC over those bytes and encodes again.
	MAC [4]byte
}

// SecurityBlock is a frame's security control block, which carries the
// secure channel state.
type SecurityBlock struct {
	Type SCBType
	Data []byte // at most MaxSCBData bytes
}

// SCBType is the type of a security control block ("SCS_xx" in the
// specification).
type SCBType byte

// Security block types.
const (
	SCS11 SCBType = 0x11 // CP → PD, osdp_CHLNG: begin the handshake
	SCS12 SCBType = 0x12 // PD → CP, osdp_CCRYPT
	SCS13 SCBType = 0x13 // CP → PD, osdp_SCRYPT
	SCS14 SCBType = 0x14 // PD → CP, osdp_RMAC_I
	SCS15 SCBType = 0x15 // CP → PD, secure channel, MAC, data in clear
	SCS16 SCBType = 0x16 // PD → CP, secure channel, MAC, data in clear
	SCS17 SCBType = 0x17 // CP → PD, secure channel, MAC, data encrypted
	SCS18 SCBType = 0x18 // PD → CP, secure channel, MAC, data encrypted
)

// HasMAC reports whether frames with this security block end with a MAC.
func (t SCBType) HasMAC() bool { return t >= SCS15 && t <= SCS18 }

// hasMAC reports whether f carries a MAC on the wire.
func (f *Frame) hasMAC() bool { return f.SCB != nil && f.SCB.Type.HasMAC() }

// Clone returns a copy of f that shares no memory with it, for keeping a
// frame that a Decoder returned.
func (f Frame) Clone() Frame {
	f.Data = bytes.Clone(f.Data)
	if f.SCB != nil {
		f.SCB = &SecurityBlock{Type: f.SCB.Type, Data: bytes.Clone(f.SCB.Data)}
	}
	return f
}

// String describes the frame for logs, e.g. "osdp_POLL to 0x65 seq 1 CRC".
func (f Frame) String() string {
	dir := "to"
	if f.Reply {
		dir = "from"
	}
	check := "checksum"
	if f.CRC {
		check = "CRC"
	}
	s := fmt.Sprintf("%s %s 0x%02X seq %d %s", CodeName(f.Code, f.Reply), dir, f.Addr, f.Seq, check)
	if f.SCB != nil {
		s += fmt.Sprintf(" SCS_%02X", byte(f.SCB.Type))
	}
	if len(f.Data) > 0 {
		s += fmt.Sprintf(" data % X", f.Data)
	}
	return s
}

// AppendFrame appends the encoded frame f to dst and returns the extended
// buffer. It does not allocate when dst has room for the frame. It fails,
// leaving dst as it was, when a field is out of range (ErrInvalid) or the
// frame would exceed the 16-bit length field (ErrFrameTooLong).
func AppendFrame(dst []byte, f *Frame) ([]byte, error) {
	orig := len(dst)
	dst, start, err := appendHead(dst, f, f.Reply, f.Code)
	if err != nil {
		return dst[:orig], err
	}
	dst = append(dst, f.Data...)
	return appendTail(dst, orig, start, f)
}

// AppendMessage appends to dst a frame that carries m. The header comes
// from f: address, sequence number, check mode, mark byte, security block
// and MAC. f.Code, f.Data and f.Reply are not used: the code and data are
// m's, and the reply bit is set when m is a Reply. Like AppendFrame it does
// not allocate when dst has room, and leaves dst as it was on error.
func AppendMessage(dst []byte, f *Frame, m Message) ([]byte, error) {
	if m == nil {
		return dst, fmt.Errorf("%w: nil message", ErrInvalid)
	}
	_, reply := m.(Reply)
	orig := len(dst)
	dst, start, err := appendHead(dst, f, reply, m.Code())
	if err != nil {
		return dst[:orig], err
	}
	if dst, err = m.AppendData(dst); err != nil {
		return dst[:orig], err
	}
	return appendTail(dst, orig, start, f)
}

// appendHead appends everything up to and including the code, with a zero
// length field, and returns where the SOM is.
func appendHead(dst []byte, f *Frame, reply bool, code byte) ([]byte, int, error) {
	switch {
	case f.Addr > BroadcastAddr:
		return dst, 0, fmt.Errorf("%w: address 0x%02X above 0x7F", ErrInvalid, f.Addr)
	case f.Seq > ctrlSeq:
		return dst, 0, fmt.Errorf("%w: sequence number %d above 3", ErrInvalid, f.Seq)
	case f.SCB != nil && len(f.SCB.Data) > MaxSCBData:
		return dst, 0, fmt.Errorf("%w: %d bytes of security block data, at most %d", ErrInvalid, len(f.SCB.Data), MaxSCBData)
	}
	if f.Mark {
		dst = append(dst, MarkByte)
	}
	start := len(dst)
	addr, ctrl := f.Addr, f.Seq
	if reply {
		addr |= replyBit
	}
	if f.CRC {
		ctrl |= ctrlCRC
	}
	if f.SCB != nil {
		ctrl |= ctrlSCB
	}
	dst = append(dst, SOM, addr, 0, 0, ctrl)
	if f.SCB != nil {
		dst = append(dst, byte(2+len(f.SCB.Data)), byte(f.SCB.Type))
		dst = append(dst, f.SCB.Data...)
	}
	return append(dst, code), start, nil
}

// appendTail appends the MAC and check characters and fills in the length.
func appendTail(dst []byte, orig, start int, f *Frame) ([]byte, error) {
	if f.hasMAC() {
		dst = append(dst, f.MAC[:]...)
	}
	n := len(dst) - start + 1
	if f.CRC {
		n++
	}
	if n > 0xFFFF {
		return dst[:orig], fmt.Errorf("%w: %d bytes do not fit the length field", ErrFrameTooLong, n)
	}
	dst[start+2], dst[start+3] = byte(n), byte(n>>8)
	if f.CRC {
		c := crc16(dst[start:])
		return append(dst, byte(c), byte(c>>8)), nil
	}
	return append(dst, checksum(dst[start:])), nil
}

// ParseFrame decodes b, which must hold exactly one frame, optionally
// preceded by one mark byte. The returned frame aliases b. Errors are
// *FrameError values (or ErrBadSOM) and say what was wrong with the frame.
// To cut frames out of a byte stream use a Decoder instead.
func ParseFrame(b []byte) (Frame, error) {
	var f Frame
	if len(b) > 0 && b[0] == MarkByte {
		f.Mark, b = true, b[1:]
	}
	if len(b) == 0 || b[0] != SOM {
		return Frame{}, ErrBadSOM
	}
	if len(b) < headerLen {
		return Frame{}, &FrameError{Err: ErrBadLength, Addr: at(b, 1)}
	}
	if n := int(b[2]) | int(b[3])<<8; n != len(b) {
		return Frame{}, &FrameError{Err: ErrBadLength, Addr: b[1], Len: n}
	}
	if err := checkHead(b[4], len(b)); err != nil {
		return Frame{}, &FrameError{Err: err, Addr: b[1], Len: len(b)}
	}
	var scb *SecurityBlock
	if b[4]&ctrlSCB != 0 {
		scb = new(SecurityBlock)
	}
	if err := parseFrame(b, &f, scb); err != nil {
		return Frame{}, err
	}
	return f, nil
}

func at(b []byte, i int) byte {
	if i < len(b) {
		return b[i]
	}
	return 0
}

// checkHead vets a frame's control byte and length field, the first five
// bytes, before the rest has arrived. Rejecting reserved bits and short
// lengths this early lets a decoder drop most false starts in line noise
// without waiting for a bogus length's worth of bytes.
func checkHead(ctrl byte, n int) error {
	if ctrl&ctrlReserved != 0 {
		return ErrBadControl
	}
	need := headerLen + 1 + 1 // header, code, checksum
	if ctrl&ctrlCRC != 0 {
		need++
	}
	if ctrl&ctrlSCB != 0 {
		need += 2
	}
	if n < need {
		return ErrBadLength
	}
	return nil
}

// parseFrame decodes the frame b, whose length field equals len(b) and
// whose head passed checkHead, into f, using scb for the security block.
// It verifies the check characters before trusting anything else, so an
// ErrBadCheck means the bytes are not a frame at all while any later error
// means a real frame is malformed.
func parseFrame(b []byte, f *Frame, scb *SecurityBlock) error {
	n, ctrl := len(b), b[4]
	if !checkOK(b) {
		return &FrameError{Err: ErrBadCheck, Addr: b[1], Len: n}
	}
	end := n - 1
	if ctrl&ctrlCRC != 0 {
		end = n - 2
	}

	pos := headerLen
	f.SCB = nil
	f.MAC = [4]byte{}
	if ctrl&ctrlSCB != 0 {
		l := int(b[pos])
		if l < 2 || pos+l >= end {
			return &FrameError{Err: ErrBadSCB, Addr: b[1], Len: n}
		}
		scb.Type, scb.Data = SCBType(b[pos+1]), nilIfEmpty(b[pos+2:pos+l])
		f.SCB = scb
		pos += l
		if scb.Type.HasMAC() {
			if end-macLen <= pos {
				return &FrameError{Err: ErrBadSCB, Addr: b[1], Len: n}
			}
			end -= macLen
			copy(f.MAC[:], b[end:])
		}
	}
	f.Addr, f.Reply = b[1]&^replyBit, b[1]&replyBit != 0
	f.Seq, f.CRC = ctrl&ctrlSeq, ctrl&ctrlCRC != 0
	f.Code, f.Data = b[pos], nilIfEmpty(b[pos+1:end])
	return nil
}

// checkOK verifies the check characters of the frame b, whose length field
// equals len(b) and whose head passed checkHead.
func checkOK(b []byte) bool {
	n := len(b)
	if b[4]&ctrlCRC != 0 {
		return crc16(b[:n-2]) == uint16(b[n-2])|uint16(b[n-1])<<8
	}
	return checksum(b[:n-1]) == b[n-1]
}

func nilIfEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}
