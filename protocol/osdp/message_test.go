package osdp

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

// TestDecodeRejects lists data blocks of the wrong shape for each message.
func TestDecodeRejects(t *testing.T) {
	tests := []struct {
		name  string
		code  byte
		reply bool
		data  []byte
		err   error
	}{
		{"POLL with data", CmdPoll, false, []byte{0}, ErrDataLength},
		{"ID empty", CmdID, false, nil, ErrDataLength},
		{"ID long", CmdID, false, []byte{0, 0}, ErrDataLength},
		{"CAP empty", CmdCap, false, nil, ErrDataLength},
		{"LSTAT with data", CmdLStat, false, []byte{0}, ErrDataLength},
		{"ISTAT with data", CmdIStat, false, []byte{0}, ErrDataLength},
		{"OSTAT with data", CmdOStat, false, []byte{0}, ErrDataLength},
		{"RSTAT with data", CmdRStat, false, []byte{0}, ErrDataLength},
		{"OUT empty", CmdOut, false, nil, ErrDataLength},
		{"OUT partial record", CmdOut, false, []byte{0, 1, 2, 3, 4}, ErrDataLength},
		{"LED empty", CmdLED, false, nil, ErrDataLength},
		{"LED 13 bytes", CmdLED, false, make([]byte, 13), ErrDataLength},
		{"LED 15 bytes", CmdLED, false, make([]byte, 15), ErrDataLength},
		{"BUZ short", CmdBuz, false, make([]byte, 4), ErrDataLength},
		{"BUZ long", CmdBuz, false, make([]byte, 6), ErrDataLength},
		{"TEXT short header", CmdText, false, []byte{0, 1, 0, 1, 1}, ErrDataLength},
		{"TEXT length above data", CmdText, false, []byte{0, 1, 0, 1, 1, 3, 'a', 'b'}, ErrDataLength},
		{"TEXT length below data", CmdText, false, []byte{0, 1, 0, 1, 1, 1, 'a', 'b'}, ErrDataLength},
		{"TEXT 33 characters", CmdText, false, append([]byte{0, 1, 0, 1, 1, 33}, make([]byte, 33)...), ErrInvalid},
		{"COMSET short", CmdComSet, false, make([]byte, 4), ErrDataLength},
		{"ACURXSIZE short", CmdACURxSize, false, []byte{1}, ErrDataLength},
		{"KEEPACTIVE long", CmdKeepActive, false, []byte{1, 2, 3}, ErrDataLength},
		{"unknown command", 0x63, false, nil, ErrUnknownCode},
		{"reply code as command", ReplyAck, false, nil, ErrUnknownCode},

		{"ACK with data", ReplyAck, true, []byte{0}, ErrDataLength},
		{"BUSY with data", ReplyBusy, true, []byte{0}, ErrDataLength},
		{"NAK empty", ReplyNak, true, nil, ErrDataLength},
		{"PDID 11 bytes", ReplyPDID, true, make([]byte, 11), ErrDataLength},
		{"PDID 13 bytes", ReplyPDID, true, make([]byte, 13), ErrDataLength},
		{"PDCAP partial", ReplyPDCap, true, []byte{1, 2}, ErrDataLength},
		{"LSTATR short", ReplyLStatR, true, []byte{0}, ErrDataLength},
		{"LSTATR value 2", ReplyLStatR, true, []byte{0, 2}, ErrInvalid},
		{"ISTATR empty", ReplyIStatR, true, nil, ErrDataLength},
		{"OSTATR empty", ReplyOStatR, true, nil, ErrDataLength},
		{"RSTATR empty", ReplyRStatR, true, nil, ErrDataLength},
		{"RAW header only", ReplyRaw, true, []byte{0, 0, 26}, ErrDataLength},
		{"RAW 26 bits in 3 bytes", ReplyRaw, true, []byte{0, 1, 26, 0, 1, 2, 3}, ErrDataLength},
		{"RAW 26 bits in 5 bytes", ReplyRaw, true, []byte{0, 1, 26, 0, 1, 2, 3, 4, 5}, ErrDataLength},
		{"RAW bit count 0xFFFF", ReplyRaw, true, []byte{0, 1, 0xFF, 0xFF, 1}, ErrDataLength},
		{"FMT count above data", ReplyFmt, true, []byte{0, 0, 3, 'a'}, ErrDataLength},
		{"FMT count below data", ReplyFmt, true, []byte{0, 0, 0, 'a'}, ErrDataLength},
		{"KEYPAD short", ReplyKeypad, true, []byte{0}, ErrDataLength},
		{"KEYPAD count above data", ReplyKeypad, true, []byte{0, 2, '1'}, ErrDataLength},
		{"KEYPAD count below data", ReplyKeypad, true, []byte{0, 0, '1'}, ErrDataLength},
		{"COM long", ReplyCom, true, make([]byte, 6), ErrDataLength},
		{"unknown reply", ReplyMfgRep, true, nil, ErrUnknownCode},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var m Message
			var err error
			if tt.reply {
				m, err = DecodeReply(tt.code, tt.data)
			} else {
				m, err = DecodeCommand(tt.code, tt.data)
			}
			if !errors.Is(err, tt.err) {
				t.Fatalf("decode(0x%02X, % X) = %#v, %v; want %v", tt.code, tt.data, m, err, tt.err)
			}
			if m != nil {
				t.Errorf("a message came back with the error: %#v", m)
			}
		})
	}
}

// TestDecodeAnyLength decodes every message from data blocks of every
// length up to 40: whatever decodes must encode back to the same bytes.
func TestDecodeAnyLength(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, m := range allMessages {
		_, reply := m.(Reply)
		for n := range 41 {
			for range 20 {
				data := randBytes(r, n)
				if n > 0 && r.IntN(2) == 0 {
					data[min(n-1, r.IntN(6))] = byte(n - r.IntN(7)) // make count fields plausible
				}
				checkDecode(t, m.Code(), reply, data)
			}
		}
	}
}

// checkDecode decodes data; if that works, the message must encode back to
// data. It is shared with the fuzz targets.
func checkDecode(t testing.TB, code byte, reply bool, data []byte) {
	t.Helper()
	var m Message
	var err error
	if reply {
		m, err = DecodeReply(code, data)
	} else {
		m, err = DecodeCommand(code, data)
	}
	if err != nil {
		if m != nil {
			t.Fatalf("decode(0x%02X, % X) returned %#v with %v", code, data, m, err)
		}
		if nak := NakFor(err); nak != NakCommandLength && nak != NakUnknownCommand && nak != NakUnableToProcess {
			t.Fatalf("decode(0x%02X, % X): %v maps to %v", code, data, err, nak)
		}
		return
	}
	if m.Code() != code {
		t.Fatalf("decode(0x%02X, ...) returned code 0x%02X", code, m.Code())
	}
	got, err := m.AppendData(nil)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("decode(0x%02X, % X) = %#v, which encodes to % X, %v", code, data, m, got, err)
	}
}

// randMessage returns a random valid message of the same type as m.
func randMessage(r *rand.Rand, m Message) Message {
	b := func() byte { return byte(r.Uint32()) }
	str := func(max int) string { return string(randBytes(r, r.IntN(max+1))) }
	switch m.(type) {
	case Poll, LStat, IStat, OStat, RStat, Ack, Busy:
		return m
	case ID:
		return ID{ReplyType: b()}
	case Cap:
		return Cap{ReplyType: b()}
	case Out:
		o := make(Out, 1+r.IntN(4))
		for i := range o {
			o[i] = OutputControl{Output: b(), Control: OutputCode(b()), Timer: uint16(r.Uint32())}
		}
		return o
	case LED:
		l := make(LED, 1+r.IntN(3))
		for i := range l {
			l[i] = LEDRecord{Reader: b(), LED: b(),
				Temporary: LEDTemporary{b(), b(), b(), Color(b()), Color(b()), uint16(r.Uint32())},
				Permanent: LEDPermanent{b(), b(), b(), Color(b()), Color(b())}}
		}
		return l
	case Buz:
		return Buz{b(), b(), b(), b(), b()}
	case Text:
		return Text{b(), TextCommand(b()), b(), b(), b(), str(MaxTextLen)}
	case ComSet:
		return ComSet{b(), r.Uint32()}
	case ACURxSize:
		return ACURxSize{uint16(r.Uint32())}
	case KeepActive:
		return KeepActive{uint16(r.Uint32())}
	case Nak:
		return Nak{NakCode(b()), randBytes(r, r.IntN(3))}
	case PDID:
		return PDID{[3]byte{b(), b(), b()}, b(), b(), r.Uint32(), b(), b(), b()}
	case PDCap:
		var p PDCap
		for range r.IntN(5) {
			p = append(p, Capability{FunctionCode(b()), b(), b()})
		}
		return p
	case LStatR:
		return LStatR{r.IntN(2) == 0, r.IntN(2) == 0}
	case IStatR:
		return IStatR(randBytes(r, 1+r.IntN(8)))
	case OStatR:
		return OStatR(randBytes(r, 1+r.IntN(8)))
	case RStatR:
		return RStatR(randBytes(r, 1+r.IntN(4)))
	case Raw:
		bits := uint16(r.IntN(300))
		return Raw{b(), RawFormat(b()), bits, randBytes(r, (int(bits)+7)/8)}
	case Fmt:
		return Fmt{b(), b(), str(255)}
	case Keypad:
		return Keypad{b(), str(16)}
	case Com:
		return Com{b(), r.Uint32()}
	}
	panic("randMessage: no generator for " + reflect.TypeOf(m).String())
}

// TestMessageRoundTrip encodes random messages of every type in frames and
// decodes them back.
func TestMessageRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for range 300 {
		for _, proto := range allMessages {
			m := randMessage(r, proto)
			b, err := AppendMessage(nil, &Frame{Addr: byte(r.IntN(0x80)), Seq: uint8(r.IntN(4)), CRC: r.IntN(2) == 0}, m)
			if err != nil {
				t.Fatalf("AppendMessage(%#v): %v", m, err)
			}
			f, err := ParseFrame(b)
			if err != nil {
				t.Fatalf("ParseFrame: %v", err)
			}
			_, reply := m.(Reply)
			var got Message
			if reply {
				got, err = DecodeReply(f.Code, f.Data)
			} else {
				got, err = DecodeCommand(f.Code, f.Data)
			}
			if err != nil || !reflect.DeepEqual(got, m) || f.Reply != reply {
				t.Fatalf("round trip of %#v: got %#v, %v (reply bit %v)", m, got, err, f.Reply)
			}
		}
	}
}

func TestEncodeRejects(t *testing.T) {
	for _, m := range []Message{
		Out{}, LED{}, IStatR{}, OStatR{}, RStatR{},
		Text{Text: strings.Repeat("x", MaxTextLen+1)},
		Raw{Bits: 26, Data: []byte{1, 2, 3}},
		Raw{Bits: 8, Data: []byte{1, 2}},
		Raw{Bits: 0, Data: []byte{1}},
		Fmt{Chars: strings.Repeat("1", 256)},
		Keypad{Keys: strings.Repeat("1", 256)},
	} {
		if b, err := m.AppendData([]byte("keep")); !errors.Is(err, ErrInvalid) || string(b) != "keep" {
			t.Errorf("%#v.AppendData = %q, %v; want ErrInvalid, dst kept", m, b, err)
		}
	}
}

func TestUnmarshalReusesMemory(t *testing.T) {
	var raw Raw
	data := []byte{0, 1, 26, 0, 0xDE, 0xAD, 0xBE, 0xC0}
	if err := raw.UnmarshalData(data); err != nil {
		t.Fatal(err)
	}
	data[4] = 0
	if raw.Data[0] != 0xDE {
		t.Error("Raw.Data aliases the input")
	}
	if n := testing.AllocsPerRun(100, func() { _ = raw.UnmarshalData(data) }); n != 0 {
		t.Errorf("%v allocations decoding into a reused Raw", n)
	}
}

func TestPDCapHelpers(t *testing.T) {
	brivo := goldens[indexGolden(t, "PDCAP")].msg.(PDCap)
	if n, ok := brivo.ReceiveBufferSize(); !ok || n != 450 {
		t.Errorf("ReceiveBufferSize = %d, %v; want 450", n, ok)
	}
	if _, _, ok := brivo.TextDisplay(); ok {
		t.Error("TextDisplay reports a display for compliance 0")
	}
	if c, ok := brivo.Lookup(CapLEDControl); !ok || c.Compliance != 4 || c.Number != 1 {
		t.Errorf("Lookup(CapLEDControl) = %+v, %v", c, ok)
	}
	if _, ok := (PDCap{}).ReceiveBufferSize(); ok {
		t.Error("ReceiveBufferSize reported for an empty PDCAP")
	}
	if _, _, ok := (PDCap{{CapTextOutput, 2, 0}}).TextDisplay(); ok {
		t.Error("TextDisplay reports a display when the PD has none")
	}
	for compliance, want := range [][2]int{{0, 0}, {1, 16}, {2, 16}, {4, 16}, {0, 0}, {0, 0}} {
		rows, cols, ok := PDCap{{CapTextOutput, byte(compliance), 1}}.TextDisplay()
		if rows != want[0] || cols != want[1] || ok != (want[0] > 0) {
			t.Errorf("compliance %d: TextDisplay = %d×%d, %v; want %d×%d", compliance, rows, cols, ok, want[0], want[1])
		}
	}
}

func indexGolden(t *testing.T, name string) int {
	for i, g := range goldens {
		if g.name == name {
			return i
		}
	}
	t.Fatalf("no golden %q", name)
	return -1
}

func TestNak(t *testing.T) {
	if got := NakSequence.Error(); got != "osdp: NAK 4: sequence number error" {
		t.Errorf("NakSequence.Error() = %q", got)
	}
	if got := NakCode(42).Error(); got != "osdp: NAK 42" {
		t.Errorf("NakCode(42).Error() = %q", got)
	}
	var err error = NakSequence
	if !errors.Is(err, NakSequence) || errors.Is(err, NakCheck) {
		t.Error("errors.Is does not tell NAK codes apart")
	}
	for _, tt := range []struct {
		err  error
		want NakCode
	}{
		{nil, 0},
		{NakEncryptionRequired, NakEncryptionRequired},
		{&FrameError{Err: ErrBadCheck}, NakCheck},
		{&FrameError{Err: ErrFrameTooLong}, NakCommandLength},
		{lenError(CmdLED, false, 3, "14"), NakCommandLength},
		{&FrameError{Err: ErrBadSCB}, NakUnsupportedSecurity},
		{errors.New("door jammed"), NakUnableToProcess},
	} {
		if got := NakFor(tt.err); got != tt.want {
			t.Errorf("NakFor(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
	if _, err := DecodeCommand(0x63, nil); NakFor(err) != NakUnknownCommand {
		t.Errorf("unknown command maps to %v", NakFor(err))
	}
}

func TestCodeName(t *testing.T) {
	for _, tt := range []struct {
		code  byte
		reply bool
		want  string
	}{
		{0x76, false, "osdp_CHLNG"},
		{0x76, true, "osdp_CCRYPT"},
		{CmdText, false, "osdp_TEXT"},
		{ReplyRaw, true, "osdp_RAW"},
		{0xEE, true, "0xEE"},
	} {
		if got := CodeName(tt.code, tt.reply); got != tt.want {
			t.Errorf("CodeName(0x%02X, %v) = %q, want %q", tt.code, tt.reply, got, tt.want)
		}
	}
	if got := Cyan.String(); got != "cyan" {
		t.Errorf("Cyan.String() = %q", got)
	}
	if got := Color(9).String(); got != "color(9)" {
		t.Errorf("Color(9).String() = %q", got)
	}
}
