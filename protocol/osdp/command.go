package osdp

import (
	"fmt"
	"slices"
	"strconv"
)

// Poll (osdp_POLL) asks a PD for news. It answers Ack, or with one queued
// event: Raw, Keypad, LStatR, IStatR, OStatR or RStatR.
type Poll struct{}

// ID (osdp_ID) asks for the PD's identification; it answers PDID.
type ID struct {
	ReplyType byte // 0: the standard PD ID block, the only one defined
}

// Cap (osdp_CAP) asks for the PD's capabilities; it answers PDCap.
type Cap struct {
	ReplyType byte // 0: the standard capabilities report, the only one defined
}

// LStat (osdp_LSTAT) asks for the PD's tamper and power status; it answers
// LStatR.
type LStat struct{}

// IStat (osdp_ISTAT) asks for the status of the PD's inputs; it answers
// IStatR.
type IStat struct{}

// OStat (osdp_OSTAT) asks for the status of the PD's outputs; it answers
// OStatR.
type OStat struct{}

// RStat (osdp_RSTAT) asks for the tamper status of the readers attached to
// the PD; it answers RStatR.
type RStat struct{}

// Out (osdp_OUT) drives the PD's outputs, such as the turnstile relay: one
// record per output. The PD answers Ack or OStatR.
type Out []OutputControl

// OutputControl is one record of an Out command.
type OutputControl struct {
	Output  byte       // output number, from 0
	Control OutputCode // what to do
	Timer   uint16     // duration of a temporary state, in units of 100 ms
}

// OutputCode says what an OutputControl does.
type OutputCode byte

// Output control codes.
const (
	OutputNop           OutputCode = 0 // leave the output alone
	OutputOff           OutputCode = 1 // permanent state off, abort a timed operation
	OutputOn            OutputCode = 2 // permanent state on, abort a timed operation
	OutputOffAfterTimer OutputCode = 3 // permanent state off, let a timed operation finish
	OutputOnAfterTimer  OutputCode = 4 // permanent state on, let a timed operation finish
	OutputTemporaryOn   OutputCode = 5 // on for Timer, then back to the permanent state
	OutputTemporaryOff  OutputCode = 6 // off for Timer, then back to the permanent state
)

const (
	outputRecordLen = 4
	ledRecordLen    = 14
	textHeaderLen   = 6
)

// LED (osdp_LED) sets reader LEDs: one record per LED. The PD answers Ack.
type LED []LEDRecord

// LEDRecord controls one LED: a temporary pattern that runs for a while,
// then the permanent pattern it returns to.
type LEDRecord struct {
	Reader    byte // reader number, from 0
	LED       byte // LED number, from 0
	Temporary LEDTemporary
	Permanent LEDPermanent
}

// LEDTemporary is the temporary part of an LEDRecord.
type LEDTemporary struct {
	Control  byte   // LEDTempNop, LEDTempCancel or LEDTempSet
	OnTime   byte   // on phase of the flash, in units of 100 ms
	OffTime  byte   // off phase of the flash, in units of 100 ms
	OnColor  Color  // colour during the on phase
	OffColor Color  // colour during the off phase
	Timer    uint16 // how long the temporary pattern lasts, in units of 100 ms
}

// LEDPermanent is the permanent part of an LEDRecord.
type LEDPermanent struct {
	Control  byte  // LEDPermNop or LEDPermSet
	OnTime   byte  // on phase of the flash, in units of 100 ms
	OffTime  byte  // off phase of the flash, in units of 100 ms
	OnColor  Color // colour during the on phase
	OffColor Color // colour during the off phase
}

// LED control codes.
const (
	LEDTempNop    = 0 // leave the temporary pattern alone
	LEDTempCancel = 1 // cancel the temporary pattern, show the permanent one now
	LEDTempSet    = 2 // set the temporary pattern and start its timer
	LEDPermNop    = 0 // leave the permanent pattern alone
	LEDPermSet    = 1 // set the permanent pattern
)

// Color is an LED colour.
type Color byte

// LED colours.
const (
	Black   Color = 0 // off
	Red     Color = 1
	Green   Color = 2
	Amber   Color = 3
	Blue    Color = 4
	Magenta Color = 5
	Cyan    Color = 6
	White   Color = 7
)

var colorNames = [...]string{"black", "red", "green", "amber", "blue", "magenta", "cyan", "white"}

func (c Color) String() string {
	if int(c) < len(colorNames) {
		return colorNames[c]
	}
	return "color(" + strconv.Itoa(int(c)) + ")"
}

// Buz (osdp_BUZ) sounds a reader's buzzer. The PD answers Ack.
type Buz struct {
	Reader  byte // reader number, from 0
	Tone    byte // ToneNone, ToneOff or ToneDefault
	OnTime  byte // in units of 100 ms
	OffTime byte // in units of 100 ms
	Count   byte // number of on/off cycles; 0 repeats until told otherwise
}

// Buzzer tone codes.
const (
	ToneNone    = 0
	ToneOff     = 1
	ToneDefault = 2
)

// MaxTextLen is the most characters one Text command carries (libosdp's
// OSDP_CMD_TEXT_MAX_LEN; a longer message takes several commands).
const MaxTextLen = 32

// Text (osdp_TEXT) writes to a reader's display. The PD answers Ack.
type Text struct {
	Reader   byte        // reader number, from 0
	Command  TextCommand // permanent or temporary, wrapping or not
	TempTime byte        // how long temporary text stays, in seconds
	Row      byte        // row of the first character; 1 is the top row
	Column   byte        // column of the first character; 1 is the left-most
	Text     string      // at most MaxTextLen characters
}

// TextCommand says how a Text is shown.
type TextCommand byte

// Text commands.
const (
	TextPermanent     TextCommand = 1 // permanent, no wrap
	TextPermanentWrap TextCommand = 2 // permanent, wrap to the next row
	TextTemporary     TextCommand = 3 // temporary for TempTime, no wrap
	TextTemporaryWrap TextCommand = 4 // temporary for TempTime, wrap to the next row
)

// ComSet (osdp_COMSET) changes the PD's address and baud rate. The PD
// answers Com with the new settings, then switches to them.
type ComSet struct {
	Addr byte   // new address, 0x00–0x7E
	Baud uint32 // new baud rate: 9600, 19200, 38400, 57600, 115200 or 230400
}

// ACURxSize (osdp_ACURXSIZE) tells the PD the longest frame the CP can
// receive. The PD answers Ack.
type ACURxSize struct {
	Size uint16 // bytes
}

// KeepActive (osdp_KEEPACTIVE) keeps a secure channel session open. The PD
// answers Ack.
type KeepActive struct {
	Millis uint16 // how much longer to keep the session, in milliseconds
}

func (Poll) Code() byte       { return CmdPoll }
func (ID) Code() byte         { return CmdID }
func (Cap) Code() byte        { return CmdCap }
func (LStat) Code() byte      { return CmdLStat }
func (IStat) Code() byte      { return CmdIStat }
func (OStat) Code() byte      { return CmdOStat }
func (RStat) Code() byte      { return CmdRStat }
func (Out) Code() byte        { return CmdOut }
func (LED) Code() byte        { return CmdLED }
func (Buz) Code() byte        { return CmdBuz }
func (Text) Code() byte       { return CmdText }
func (ComSet) Code() byte     { return CmdComSet }
func (ACURxSize) Code() byte  { return CmdACURxSize }
func (KeepActive) Code() byte { return CmdKeepActive }

func (Poll) command()       {}
func (ID) command()         {}
func (Cap) command()        {}
func (LStat) command()      {}
func (IStat) command()      {}
func (OStat) command()      {}
func (RStat) command()      {}
func (Out) command()        {}
func (LED) command()        {}
func (Buz) command()        {}
func (Text) command()       {}
func (ComSet) command()     {}
func (ACURxSize) command()  {}
func (KeepActive) command() {}

func (Poll) AppendData(dst []byte) ([]byte, error)  { return dst, nil }
func (LStat) AppendData(dst []byte) ([]byte, error) { return dst, nil }
func (IStat) AppendData(dst []byte) ([]byte, error) { return dst, nil }
func (OStat) AppendData(dst []byte) ([]byte, error) { return dst, nil }
func (RStat) AppendData(dst []byte) ([]byte, error) { return dst, nil }

func (m ID) AppendData(dst []byte) ([]byte, error)  { return append(dst, m.ReplyType), nil }
func (m Cap) AppendData(dst []byte) ([]byte, error) { return append(dst, m.ReplyType), nil }

func (m Out) AppendData(dst []byte) ([]byte, error) {
	if len(m) == 0 {
		return dst, invalidError(CmdOut, false, "no output records")
	}
	for _, o := range m {
		dst = append(dst, o.Output, byte(o.Control), byte(o.Timer), byte(o.Timer>>8))
	}
	return dst, nil
}

func (m LED) AppendData(dst []byte) ([]byte, error) {
	if len(m) == 0 {
		return dst, invalidError(CmdLED, false, "no LED records")
	}
	for _, r := range m {
		t, p := r.Temporary, r.Permanent
		dst = append(dst, r.Reader, r.LED,
			t.Control, t.OnTime, t.OffTime, byte(t.OnColor), byte(t.OffColor), byte(t.Timer), byte(t.Timer>>8),
			p.Control, p.OnTime, p.OffTime, byte(p.OnColor), byte(p.OffColor))
	}
	return dst, nil
}

func (m Buz) AppendData(dst []byte) ([]byte, error) {
	return append(dst, m.Reader, m.Tone, m.OnTime, m.OffTime, m.Count), nil
}

func (m Text) AppendData(dst []byte) ([]byte, error) {
	if len(m.Text) > MaxTextLen {
		return dst, invalidError(CmdText, false, "%d characters, at most %d", len(m.Text), MaxTextLen)
	}
	dst = append(dst, m.Reader, byte(m.Command), m.TempTime, m.Row, m.Column, byte(len(m.Text)))
	return append(dst, m.Text...), nil
}

func (m ComSet) AppendData(dst []byte) ([]byte, error) {
	return append(dst, m.Addr, byte(m.Baud), byte(m.Baud>>8), byte(m.Baud>>16), byte(m.Baud>>24)), nil
}

func (m ACURxSize) AppendData(dst []byte) ([]byte, error) {
	return append(dst, byte(m.Size), byte(m.Size>>8)), nil
}

func (m KeepActive) AppendData(dst []byte) ([]byte, error) {
	return append(dst, byte(m.Millis), byte(m.Millis>>8)), nil
}

// UnmarshalData decodes an osdp_POLL data block, which is empty.
func (m *Poll) UnmarshalData(data []byte) error { return wantLen(CmdPoll, false, data, 0) }

// UnmarshalData decodes an osdp_LSTAT data block, which is empty.
func (m *LStat) UnmarshalData(data []byte) error { return wantLen(CmdLStat, false, data, 0) }

// UnmarshalData decodes an osdp_ISTAT data block, which is empty.
func (m *IStat) UnmarshalData(data []byte) error { return wantLen(CmdIStat, false, data, 0) }

// UnmarshalData decodes an osdp_OSTAT data block, which is empty.
func (m *OStat) UnmarshalData(data []byte) error { return wantLen(CmdOStat, false, data, 0) }

// UnmarshalData decodes an osdp_RSTAT data block, which is empty.
func (m *RStat) UnmarshalData(data []byte) error { return wantLen(CmdRStat, false, data, 0) }

// UnmarshalData decodes an osdp_ID data block: the reply type.
func (m *ID) UnmarshalData(data []byte) error {
	if err := wantLen(CmdID, false, data, 1); err != nil {
		return err
	}
	m.ReplyType = data[0]
	return nil
}

// UnmarshalData decodes an osdp_CAP data block: the reply type.
func (m *Cap) UnmarshalData(data []byte) error {
	if err := wantLen(CmdCap, false, data, 1); err != nil {
		return err
	}
	m.ReplyType = data[0]
	return nil
}

// UnmarshalData decodes an osdp_OUT data block: 4 bytes per record.
func (m *Out) UnmarshalData(data []byte) error {
	if len(data) == 0 || len(data)%outputRecordLen != 0 {
		return lenError(CmdOut, false, len(data), "a non-zero multiple of 4")
	}
	*m = (*m)[:0]
	for b := range slices.Chunk(data, outputRecordLen) {
		*m = append(*m, OutputControl{Output: b[0], Control: OutputCode(b[1]), Timer: le16(b[2:])})
	}
	return nil
}

// UnmarshalData decodes an osdp_LED data block: 14 bytes per record.
func (m *LED) UnmarshalData(data []byte) error {
	if len(data) == 0 || len(data)%ledRecordLen != 0 {
		return lenError(CmdLED, false, len(data), "a non-zero multiple of 14")
	}
	*m = (*m)[:0]
	for b := range slices.Chunk(data, ledRecordLen) {
		*m = append(*m, LEDRecord{
			Reader: b[0],
			LED:    b[1],
			Temporary: LEDTemporary{
				Control: b[2], OnTime: b[3], OffTime: b[4],
				OnColor: Color(b[5]), OffColor: Color(b[6]), Timer: le16(b[7:]),
			},
			Permanent: LEDPermanent{
				Control: b[9], OnTime: b[10], OffTime: b[11],
				OnColor: Color(b[12]), OffColor: Color(b[13]),
			},
		})
	}
	return nil
}

// UnmarshalData decodes an osdp_BUZ data block.
func (m *Buz) UnmarshalData(data []byte) error {
	if err := wantLen(CmdBuz, false, data, 5); err != nil {
		return err
	}
	*m = Buz{Reader: data[0], Tone: data[1], OnTime: data[2], OffTime: data[3], Count: data[4]}
	return nil
}

// UnmarshalData decodes an osdp_TEXT data block: six header bytes, the last
// of which counts the characters that follow.
func (m *Text) UnmarshalData(data []byte) error {
	if len(data) < textHeaderLen || len(data) != textHeaderLen+int(data[textHeaderLen-1]) {
		return lenError(CmdText, false, len(data), "6 plus the text length in byte 6")
	}
	if n := len(data) - textHeaderLen; n > MaxTextLen {
		return invalidError(CmdText, false, "%d characters, at most %d", n, MaxTextLen)
	}
	*m = Text{
		Reader: data[0], Command: TextCommand(data[1]), TempTime: data[2], Row: data[3], Column: data[4],
		Text: string(data[textHeaderLen:]),
	}
	return nil
}

// UnmarshalData decodes an osdp_COMSET data block.
func (m *ComSet) UnmarshalData(data []byte) error {
	if err := wantLen(CmdComSet, false, data, 5); err != nil {
		return err
	}
	*m = ComSet{Addr: data[0], Baud: le32(data[1:])}
	return nil
}

// UnmarshalData decodes an osdp_ACURXSIZE data block.
func (m *ACURxSize) UnmarshalData(data []byte) error {
	if err := wantLen(CmdACURxSize, false, data, 2); err != nil {
		return err
	}
	m.Size = le16(data)
	return nil
}

// UnmarshalData decodes an osdp_KEEPACTIVE data block.
func (m *KeepActive) UnmarshalData(data []byte) error {
	if err := wantLen(CmdKeepActive, false, data, 2); err != nil {
		return err
	}
	m.Millis = le16(data)
	return nil
}

func wantLen(code byte, reply bool, data []byte, n int) error {
	if len(data) != n {
		return lenError(code, reply, len(data), fmt.Sprint(n))
	}
	return nil
}

func le16(b []byte) uint16 { return uint16(b[0]) | uint16(b[1])<<8 }

func le32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}
