package pd

import (
	"bytes"
	"testing"

	"varco.dev/protocol/osdp"
	"varco.dev/protocol/wiegand"
)

// A golden exchange: the device is set up, receives req and must write
// exactly want back (nothing, for an empty want).
type golden struct {
	name  string
	cfg   Config // Address 1 unless addr0
	addr0 bool
	setup func(t *testing.T, d *Device) // physical events and earlier commands, optional
	req   []byte
	want  string // hex with comments, see unhex
}

var (
	at1  = osdp.Frame{Addr: 1, CRC: true} // sequence 0, CRC
	at1c = osdp.Frame{Addr: 1}            // sequence 0, checksum
	at1m = osdp.Frame{Addr: 1, CRC: true, Mark: true}
)

func goldens(t testing.TB) []golden {
	h10301, err := wiegand.Encode(wiegand.H10301, 123, 4567)
	if err != nil {
		t.Fatal(err)
	}
	return []golden{
		{
			name:  "ID, Annex E example to address 0",
			addr0: true,
			req:   unhex(t, "53 00 09 00 04 61 00 C0 66"),
			want: `53 80 14 00   // SOM, address 0 with the reply bit, length 20
			       04 45         // sequence 0, CRC; osdp_PDID
			       56 53 4D      // vendor "VSM"
			       01 01         // model 1, version 1
			       E8 03 00 00   // serial 1000, little-endian
			       01 00 00      // firmware 1.0.0
			       B2 E7         // CRC`,
		},
		{
			name:  "ID in checksum mode, Annex E example: the reply uses a checksum too",
			addr0: true,
			req:   unhex(t, "53 00 08 00 00 61 00 44"),
			want: `53 80 13 00 00 45 56 53 4D 01 01 E8 03 00 00 01 00 00
			       F1            // checksum`,
		},
		{
			name: "POLL with nothing to report: ACK",
			req:  cmd(t, at1, osdp.Poll{}),
			want: `53 81 08 00 04 40 // osdp_ACK
			       08 06`,
		},
		{
			name: "POLL with a mark byte: the reply has one",
			req:  cmd(t, at1m, osdp.Poll{}),
			want: `FF 53 81 08 00 04 40 08 06`,
		},
		{
			name:  "POLL after a card: RAW",
			setup: func(t *testing.T, d *Device) { must(t, d.PresentCard(h10301)) },
			req:   cmd(t, at1, osdp.Poll{}),
			want: `53 81 10 00 04 50 // osdp_RAW, 16 bytes
			       00 01 1A 00       // reader 0, Wiegand format, 26 bits
			       BD 88 EB 80       // H10301 123:4567, MSB first, parity included
			       EB 4F`,
		},
		{
			name:  "POLL after a PIN: KEYPAD",
			setup: func(t *testing.T, d *Device) { must(t, d.TypeKeys("12#")) },
			req:   cmd(t, at1, osdp.Poll{}),
			want: `53 81 0D 00 04 53 // osdp_KEYPAD
			       00 03 31 32 0D    // reader 0, 3 keys: '1' '2' '#'
			       FD 30`,
		},
		{
			name: "CAP: PDCAP",
			req:  cmd(t, at1, osdp.Cap{}),
			want: `53 81 23 00 04 46
			       02 03 01 // one output, timed
			       03 01 00 // card data as bits
			       04 04 01 // one LED, tri-colour
			       05 02 01 // buzzer, timed
			       06 02 01 // one display of 2 rows × 16
			       08 01 00 // CRC-16
			       09 00 00 // no secure channel
			       0A 00 01 // receive buffer 256
			       10 02 00 // SIA OSDP 2.2
			       8D 03`,
		},
		{
			name: "LSTAT: LSTATR, normal",
			req:  cmd(t, at1, osdp.LStat{}),
			want: `53 81 0A 00 04 48 00 00 4F 09`,
		},
		{
			name: "ISTAT without inputs: NAK 3",
			req:  cmd(t, at1, osdp.IStat{}),
			want: `53 81 09 00 04 41 03 // osdp_NAK, unknown command
			       C5 C1`,
		},
		{
			name: "ISTAT with two inputs: ISTATR",
			cfg:  Config{Inputs: 2},
			req:  cmd(t, at1, osdp.IStat{}),
			want: `53 81 0A 00 04 49 00 00 7F 3E`,
		},
		{
			name: "OSTAT: OSTATR",
			req:  cmd(t, at1, osdp.OStat{}),
			want: `53 81 09 00 04 4A 00 5C 2D`,
		},
		{
			name: "RSTAT: RSTATR",
			req:  cmd(t, at1, osdp.RStat{}),
			want: `53 81 09 00 04 4B 00 6D 1E`,
		},
		{
			name: "OUT pulse on output 0: OSTATR with the output on",
			req:  cmd(t, at1, osdp.Out{{Output: 0, Control: osdp.OutputTemporaryOn, Timer: 30}}),
			want: `53 81 09 00 04 4A 01 7D 3D`,
		},
		{
			name: "OUT with AckOut: ACK",
			cfg:  Config{AckOut: true},
			req:  cmd(t, at1, osdp.Out{{Output: 0, Control: osdp.OutputOn}}),
			want: `53 81 08 00 04 40 08 06`,
		},
		{
			name: "OUT to an output not declared: NAK 3",
			req:  cmd(t, at1, osdp.Out{{Output: 1, Control: osdp.OutputOn}}),
			want: `53 81 09 00 04 41 03 C5 C1`,
		},
		{
			name: "LED: ACK",
			req:  cmd(t, at1, osdp.LED{greenFor(20)}),
			want: `53 81 08 00 04 40 08 06`,
		},
		{
			name: "LED 1 on a reader with one LED: NAK 3",
			req:  cmd(t, at1, osdp.LED{{LED: 1, Permanent: osdp.LEDPermanent{Control: osdp.LEDPermSet}}}),
			want: `53 81 09 00 04 41 03 C5 C1`,
		},
		{
			name: "BUZ: ACK",
			req:  cmd(t, at1, osdp.Buz{Tone: osdp.ToneDefault, OnTime: 2, OffTime: 1, Count: 2}),
			want: `53 81 08 00 04 40 08 06`,
		},
		{
			name: "BUZ without a buzzer: NAK 3",
			cfg:  Config{Buzzer: No},
			req:  cmd(t, at1, osdp.Buz{Tone: osdp.ToneDefault, OnTime: 2, Count: 1}),
			want: `53 81 09 00 04 41 03 C5 C1`,
		},
		{
			name: "TEXT: ACK",
			req:  cmd(t, at1, osdp.Text{Command: osdp.TextPermanent, Row: 1, Column: 1, Text: "Welcome"}),
			want: `53 81 08 00 04 40 08 06`,
		},
		{
			name: "TEXT on row 3 of a 2-row display: NAK 9",
			req:  cmd(t, at1, osdp.Text{Command: osdp.TextPermanent, Row: 3, Column: 1, Text: "x"}),
			want: `53 81 09 00 04 41 09 // unable to process the record
			       8F 60`,
		},
		{
			name: "TEXT without a display: NAK 3",
			cfg:  Config{Rows: -1},
			req:  cmd(t, at1, osdp.Text{Command: osdp.TextPermanent, Row: 1, Column: 1, Text: "x"}),
			want: `53 81 09 00 04 41 03 C5 C1`,
		},
		{
			name: "COMSET broadcast, Annex E example: COM from 0xFF with the new settings",
			req:  unhex(t, "53 7F 0D 00 04 6E 00 80 25 00 00 6E 38"),
			want: `53 FF 0D 00 04 54 // broadcast reply address, osdp_COM
			       00 80 25 00 00    // address 0, 9600 baud
			       D4 75`,
		},
		{
			name: "COMSET to a broadcast address: refused, COM with the current settings",
			req:  cmd(t, at1, osdp.ComSet{Addr: 0x7F, Baud: 115200}),
			want: `53 81 0D 00 04 54 01 80 25 00 00 // address 1, 9600 baud
			       F0 39`,
		},
		{
			name: "ACURXSIZE: ACK",
			req:  cmd(t, at1, osdp.ACURxSize{Size: 512}),
			want: `53 81 08 00 04 40 08 06`,
		},
		{
			name: "KEEPACTIVE without a secure channel: NAK 3",
			req:  cmd(t, at1, osdp.KeepActive{Millis: 1000}),
			want: `53 81 09 00 04 41 03 C5 C1`,
		},
		{
			name: "MFG, which the device does not implement: NAK 3",
			req:  frame(t, osdp.Frame{Addr: 1, CRC: true, Code: osdp.CmdMfg, Data: []byte{1, 2, 3, 4}}),
			want: `53 81 09 00 04 41 03 C5 C1`,
		},
		{
			name: "POLL with a data byte: NAK 2",
			req:  frame(t, osdp.Frame{Addr: 1, CRC: true, Code: osdp.CmdPoll, Data: []byte{0}}),
			want: `53 81 09 00 04 41 02 // command length error
			       E4 D1`,
		},
		{
			name: "security block: NAK 5",
			req: frame(t, osdp.Frame{Addr: 1, CRC: true, Code: osdp.CmdChlng, Data: make([]byte, 8),
				SCB: &osdp.SecurityBlock{Type: osdp.SCS11, Data: []byte{1}}}),
			want: `53 81 09 00 04 41 05 // unsupported security block
			       03 A1`,
		},
		{
			name: "bad CRC: NAK 1",
			req:  unhex(t, "53 01 08 00 04 60 00 00"),
			want: `53 81 09 00 04 41 01 // bad check character
			       87 E1`,
		},
		{
			name: "bad CRC in a frame for another address: silence",
			req:  unhex(t, "53 02 08 00 04 60 00 00"),
		},
		{
			name: "frame for another address: silence",
			req:  cmd(t, osdp.Frame{Addr: 2, CRC: true}, osdp.Poll{}),
		},
		{
			name:  "powered off: silence",
			setup: func(t *testing.T, d *Device) { d.PowerOff() },
			req:   cmd(t, at1, osdp.Poll{}),
		},
		{
			name:  "BUSY on request: sequence 0, checksum mode as the command",
			setup: func(t *testing.T, d *Device) { feed(t, d, t0, cmd(t, at1c, osdp.Poll{})); d.Busy(1) },
			req:   cmd(t, osdp.Frame{Addr: 1, Seq: 1}, osdp.Poll{}),
			want: `53 81 07 00 00 79 // sequence 0, checksum; osdp_BUSY
			       AC`,
		},
		{
			name:  "sequence 2 after 0: NAK 4",
			setup: func(t *testing.T, d *Device) { feed(t, d, t0, cmd(t, at1, osdp.Poll{})) },
			req:   cmd(t, osdp.Frame{Addr: 1, Seq: 2, CRC: true}, osdp.Poll{}),
			want: `53 81 09 00 06 41 04 // sequence 2; sequence error
			       42 DF`,
		},
	}
}

func greenFor(units uint16) osdp.LEDRecord {
	return osdp.LEDRecord{
		Temporary: osdp.LEDTemporary{Control: osdp.LEDTempSet, OnTime: 1, OnColor: osdp.Green, Timer: units},
	}
}

func frame(t testing.TB, f osdp.Frame) []byte {
	t.Helper()
	b, err := osdp.AppendFrame(nil, &f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestGolden(t *testing.T) {
	for _, g := range goldens(t) {
		t.Run(g.name, func(t *testing.T) {
			cfg := g.cfg
			if !g.addr0 {
				cfg.Address = 1
			}
			d := newDevice(t, cfg)
			if g.setup != nil {
				g.setup(t, d)
			}
			got, want := feed(t, d, t0, g.req), unhex(t, g.want)
			if !bytes.Equal(got, want) {
				t.Errorf("request % X\n got % X\nwant % X", g.req, got, want)
			}
		})
	}
}
