package osdp

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
)

// TestCRC checks the CRC against the catalogue check value of
// CRC-16/AUG-CCITT (reveng: CRC-16/SPI-FUJITSU, check=0xE5CC) and the
// checksum against its definition.
func TestCRC(t *testing.T) {
	if got := crc16([]byte("123456789")); got != 0xE5CC {
		t.Errorf("crc16(123456789) = %#04x, want 0xe5cc", got)
	}
	if got := crc16(nil); got != crcInit {
		t.Errorf("crc16(nil) = %#04x, want the initial value", got)
	}
	b := []byte{0x53, 0x00, 0x08, 0x00, 0x00, 0x61, 0x00}
	if got := checksum(b); got != 0x44 { // Annex E
		t.Errorf("checksum = %#02x, want 0x44", got)
	}
}

// badFrames are frames ParseFrame must reject, with the reason.
var badFrames = []struct {
	name string
	src  string
	raw  string // hex
	err  error
}{
	{"empty", "", "", ErrBadSOM},
	{"no SOM", "libosdp test-cp-phy.c test_phy_decode_packet_invalid_som", "44 E5 08 00 04 40 E7 A1", ErrBadSOM},
	{"two marks", "", "FF FF 53 65 08 00 04 60 60 90", ErrBadSOM},
	{"header cut", "", "53 65 08", ErrBadLength},
	{"length below minimum", "libosdp test-cp-phy.c test_phy_packet_too_small", "53 E5 06 00 04 40 E7 A1", ErrBadLength},
	{"length above bytes", "libosdp test-cp-phy.c test_phy_packet_too_large", "53 E5 FF FF 04 40 E7 A1", ErrBadLength},
	{"length below bytes", "POLL/mark with a byte too many", "FF 53 65 08 00 04 60 60 90 00", ErrBadLength},
	{"bad CRC", "libosdp test-cp-phy.c test_phy_decode_packet_invalid_crc", "53 E5 08 00 04 60 00 00", ErrBadCheck},
	{"bad checksum", "Annex E ID, checksum 0x44 changed", "53 00 08 00 00 61 00 45", ErrBadCheck},
	{"CRC byte order", "Annex E ID with the CRC MSB first", "53 00 09 00 04 61 00 66 C0", ErrBadCheck},
	{"reserved control bits", "jeff test/message_test.exs (jeff tolerates it; we reject, see checkHead)", "53 01 08 00 53 40 00 00", ErrBadControl},
	{
		"SCS_15 without MAC",
		"OSDP.Net PollCommandTest.cs secure case: built without a session, so no MAC",
		"53 00 0A 00 0E 02 15 60 30 38", ErrBadSCB,
	},
	{"SCB length 1", "CRC computed (Python)", "53 00 0A 00 0C 01 15 60 08 8C", ErrBadSCB},
	{"SCB overruns the code", "CRC computed (Python)", "53 00 0A 00 0C 03 11 60 AC 2E", ErrBadSCB},
}

func TestParseFrameRejects(t *testing.T) {
	for _, tt := range badFrames {
		t.Run(tt.name, func(t *testing.T) {
			raw, err := hex.DecodeString(strings.ReplaceAll(tt.raw, " ", ""))
			if err != nil {
				t.Fatal(err)
			}
			f, err := ParseFrame(raw)
			if !errors.Is(err, tt.err) {
				t.Fatalf("ParseFrame(% X) = %v, %v; want %v (source: %s)", raw, f, err, tt.err, tt.src)
			}
			if tt.err != ErrBadSOM {
				var fe *FrameError
				if !errors.As(err, &fe) {
					t.Fatalf("error %T is not a *FrameError", err)
				}
			}
		})
	}
}

func TestAppendFrameRejects(t *testing.T) {
	long := make([]byte, 0x10000)
	tests := []struct {
		name string
		f    Frame
		err  error
	}{
		{"address", Frame{Addr: 0x80, Code: CmdPoll}, ErrInvalid},
		{"sequence", Frame{Seq: 4, Code: CmdPoll}, ErrInvalid},
		{"SCB data", Frame{SCB: &SecurityBlock{Type: SCS15, Data: make([]byte, MaxSCBData+1)}, Code: CmdPoll}, ErrInvalid},
		{"too long", Frame{Code: CmdMfg, Data: long}, ErrFrameTooLong},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := []byte("keep")
			got, err := AppendFrame(dst, &tt.f)
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if string(got) != "keep" {
				t.Fatalf("dst changed to %q", got)
			}
		})
	}
	if got, err := AppendMessage([]byte("keep"), &Frame{}, Text{Text: strings.Repeat("x", MaxTextLen+1)}); !errors.Is(err, ErrInvalid) || string(got) != "keep" {
		t.Errorf("AppendMessage(long text) = %q, %v; want dst kept, ErrInvalid", got, err)
	}
	if _, err := AppendMessage(nil, &Frame{}, nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("AppendMessage(nil message) = %v, want ErrInvalid", err)
	}
}

// TestAppendMessageReplyBit: the reply bit follows the message, whatever
// the header says.
func TestAppendMessageReplyBit(t *testing.T) {
	b, _ := AppendMessage(nil, &Frame{Addr: 0x65, Reply: true}, Poll{})
	if b[1] != 0x65 {
		t.Errorf("command address byte %#02x, want 0x65", b[1])
	}
	b, _ = AppendMessage(nil, &Frame{Addr: 0x65}, Ack{})
	if b[1] != 0xE5 {
		t.Errorf("reply address byte %#02x, want 0xE5", b[1])
	}
}

func TestEncodeDoesNotAllocate(t *testing.T) {
	buf := make([]byte, 0, 256)
	text := &Text{Command: TextTemporary, TempTime: 5, Row: 1, Column: 1, Text: "Please see reception"}
	f := &Frame{Addr: 0x65, Seq: 1, CRC: true, Mark: true, SCB: &SecurityBlock{Type: SCS15}}
	if n := testing.AllocsPerRun(100, func() {
		buf, _ = AppendMessage(buf[:0], f, text)
		buf, _ = AppendFrame(buf[:0], f)
	}); n != 0 {
		t.Errorf("%v allocations per encoding, want 0", n)
	}
}

// randFrame returns a random valid frame.
func randFrame(r *rand.Rand) Frame {
	f := Frame{
		Addr:  byte(r.IntN(0x80)),
		Reply: r.IntN(2) == 0,
		Seq:   uint8(r.IntN(4)),
		CRC:   r.IntN(2) == 0,
		Mark:  r.IntN(2) == 0,
		Code:  byte(r.IntN(256)),
		Data:  randBytes(r, r.IntN(80)),
	}
	if r.IntN(3) == 0 {
		f.SCB = &SecurityBlock{Type: SCBType(0x11 + r.IntN(8)), Data: randBytes(r, r.IntN(4))}
		if f.SCB.Type.HasMAC() {
			f.MAC = [4]byte(randBytes(r, 4))
		}
	}
	return f
}

func randBytes(r *rand.Rand, n int) []byte {
	if n == 0 {
		return nil
	}
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// TestFrameRoundTrip encodes random frames, parses them back, and feeds
// them all to a decoder in random pieces.
func TestFrameRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	d := mustDecoder(t, DecoderConfig{Accept: Both})
	var stream []byte
	var frames []Frame
	for range 5000 {
		f := randFrame(r)
		b, err := AppendFrame(nil, &f)
		if err != nil {
			t.Fatalf("AppendFrame(%v): %v", dump(f), err)
		}
		got, err := ParseFrame(b)
		if err != nil || !frameEqual(got, f) {
			t.Fatalf("ParseFrame(AppendFrame(%v)) = %v, %v\n%s", dump(f), dump(got), err, hex.Dump(b))
		}
		stream = append(stream, b...)
		frames = append(frames, f)
	}
	var i int
	for len(stream) > 0 {
		n := min(len(stream), 1+r.IntN(100))
		for f, err := range d.Feed(stream[:n]) {
			if err != nil {
				t.Fatalf("frame %d: %v", i, err)
			}
			if !frameEqual(f, frames[i]) {
				t.Fatalf("frame %d: got %v, want %v", i, dump(f), dump(frames[i]))
			}
			i++
		}
		stream = stream[n:]
	}
	if i != len(frames) {
		t.Fatalf("decoded %d frames, want %d", i, len(frames))
	}
}

func TestFrameClone(t *testing.T) {
	raw := bytes.Clone(goldens[0].raw)
	f, _ := ParseFrame(raw)
	c := f.Clone()
	raw[6] = 0xEE // the data byte
	if c.Data[0] != 0x00 {
		t.Error("clone shares Data with the input")
	}
	f.SCB = &SecurityBlock{Type: SCS11, Data: []byte{1}}
	c = f.Clone()
	f.SCB.Data[0] = 2
	if c.SCB.Data[0] != 1 {
		t.Error("clone shares the security block")
	}
}

func TestFrameString(t *testing.T) {
	f, _ := ParseFrame(goldens[0].raw)
	if got, want := f.String(), "osdp_ID to 0x00 seq 0 CRC data 00"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	f = Frame{Addr: 1, Reply: true, Seq: 3, SCB: &SecurityBlock{Type: SCS16}, Code: ReplyAck}
	if got, want := f.String(), "osdp_ACK from 0x01 seq 3 checksum SCS_16"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}
