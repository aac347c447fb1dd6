package pd

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"varco.dev/protocol/osdp"
	"varco.dev/protocol/wiegand"
)

// link plays the CP's side of the sequence numbers for one device.
type link struct {
	t   *testing.T
	d   *Device
	seq osdp.CPSequence
	now time.Time
}

func newLink(t *testing.T, cfg Config) *link {
	cfg.Address = 1
	return &link{t: t, d: newDevice(t, cfg), now: t0}
}

// send numbers and sends one command and returns the decoded reply.
func (l *link) send(m osdp.Command) osdp.Reply {
	l.t.Helper()
	_, r := reply(l.t, feed(l.t, l.d, l.now, cmd(l.t, osdp.Frame{Addr: 1, Seq: l.seq.Next(), CRC: true}, m)))
	return r
}

func TestSequence(t *testing.T) {
	l := newLink(t, Config{})
	l.send(osdp.Poll{}) // sequence 0 starts the link
	card, _ := wiegand.Encode(wiegand.H10301, 1, 2)
	must(t, l.d.PresentCard(card))
	must(t, l.d.PresentCard(card))

	first := cmd(t, osdp.Frame{Addr: 1, Seq: 1, CRC: true}, osdp.Poll{})
	r1 := bytes.Clone(feed(t, l.d, t0, first))
	if _, r := reply(t, r1); r.Code() != osdp.ReplyRaw {
		t.Fatalf("first POLL: %T, want Raw", r)
	}
	// The CP missed the reply and retries: the same bytes come back and the
	// second card stays queued.
	if again := feed(t, l.d, t0, first); !bytes.Equal(again, r1) {
		t.Fatalf("retry got % X, want the cached % X", again, r1)
	}
	if q := l.d.State(t0).Queued; q != 1 {
		t.Fatalf("after a retry %d events queued, want 1", q)
	}
	// 2, 3, 1, 2: every number after 0 is accepted in turn.
	for _, seq := range []uint8{2, 3, 1, 2} {
		f, _ := reply(t, feed(t, l.d, t0, cmd(t, osdp.Frame{Addr: 1, Seq: seq, CRC: true}, osdp.Poll{})))
		if f.Seq != seq {
			t.Fatalf("reply sequence %d, want %d", f.Seq, seq)
		}
	}
	// A retry of sequence 2 with another command is out of order.
	_, r := reply(t, feed(t, l.d, t0, cmd(t, osdp.Frame{Addr: 1, Seq: 2, CRC: true}, osdp.LStat{})))
	if n, ok := r.(osdp.Nak); !ok || n.Reason != osdp.NakSequence {
		t.Fatalf("same sequence, other command: %#v, want NAK 4", r)
	}
	// Sequence 0 restarts the link whatever came before.
	if r := l.d.Handle(t0, &osdp.Frame{Addr: 1, Seq: 0, CRC: true, Code: osdp.CmdPoll}); r.Code != osdp.ReplyAck {
		t.Fatalf("restart: reply code 0x%02X, want ACK", r.Code)
	}
	if c := l.d.State(t0).Counters; c.Repeats != 1 || c.Polls != 7 || c.Naks != 1 {
		t.Errorf("counters %+v, want 1 repeat, 7 polls, 1 NAK", c)
	}
}

func TestBeforeSequenceZero(t *testing.T) {
	d := newDevice(t, Config{Address: 1})
	_, r := reply(t, feed(t, d, t0, cmd(t, osdp.Frame{Addr: 1, Seq: 1, CRC: true}, osdp.Poll{})))
	if n, ok := r.(osdp.Nak); !ok || n.Reason != osdp.NakSequence {
		t.Fatalf("sequence 1 on a fresh link: %#v, want NAK 4", r)
	}
}

func TestBusyThenRetry(t *testing.T) {
	l := newLink(t, Config{})
	l.send(osdp.Poll{})
	l.d.Busy(2)
	c := cmd(t, osdp.Frame{Addr: 1, Seq: 1, CRC: true}, osdp.Out{{Control: osdp.OutputTemporaryOn, Timer: 10}})
	for range 2 {
		if f, r := reply(t, feed(t, l.d, t0, c)); r.Code() != osdp.ReplyBusy || f.Seq != 0 {
			t.Fatalf("got %v, want BUSY with sequence 0", f)
		}
	}
	// The CP resends with the same number: now it is carried out, once.
	if _, r := reply(t, feed(t, l.d, t0, c)); r.Code() != osdp.ReplyOStatR {
		t.Fatalf("after BUSY: %T, want OStatR", r)
	}
	feed(t, l.d, t0, c) // a retry answers from the cache
	if p := l.d.State(t0).Outputs[0].Pulses; p != 1 {
		t.Errorf("%d pulses, want 1", p)
	}
}

func TestText(t *testing.T) {
	l := newLink(t, Config{})
	l.send(osdp.Text{Command: osdp.TextPermanent, Row: 1, Column: 1, Text: "Welcome"})
	l.send(osdp.Text{Command: osdp.TextTemporaryWrap, TempTime: 3, Row: 1, Column: 1, Text: "Please see reception"})
	l.send(osdp.Text{Command: osdp.TextTemporary, TempTime: 3, Row: 2, Column: 12, Text: "now!!!"}) // cut at column 16

	tests := []struct {
		at        time.Duration
		display   []string
		temporary bool
	}{
		{0, []string{"Please see recep", "tion       now!!"}, true},
		{2999 * time.Millisecond, []string{"Please see recep", "tion       now!!"}, true},
		{3 * time.Second, []string{"Welcome", ""}, false},
	}
	for _, tt := range tests {
		s := l.d.State(t0.Add(tt.at))
		if !slices.Equal(s.Display, tt.display) || s.Temporary != tt.temporary {
			t.Errorf("at +%v: display %q temporary %v, want %q %v", tt.at, s.Display, s.Temporary, tt.display, tt.temporary)
		}
	}
	if next := l.d.NextChange(t0); !next.Equal(t0.Add(3 * time.Second)) {
		t.Errorf("NextChange %v, want +3s", next.Sub(t0))
	}
	// A temporary text after the last one timed out starts from a blank screen.
	l.now = t0.Add(4 * time.Second)
	l.send(osdp.Text{Command: osdp.TextTemporary, TempTime: 1, Row: 2, Column: 1, Text: "Hi"})
	if s := l.d.State(l.now); !slices.Equal(s.Display, []string{"", "Hi"}) {
		t.Errorf("new temporary text: %q", s.Display)
	}
	l.send(osdp.Text{Command: osdp.TextPermanent, Row: 1, Column: 3, Text: "\x01"}) // unprintable
	if s := l.d.State(l.now.Add(time.Hour)); s.Display[0] != "We?come" {
		t.Errorf("unprintable character shows as %q", s.Display[0])
	}
	for _, bad := range []osdp.Text{
		{Command: osdp.TextPermanent, Row: 0, Column: 1, Text: "x"},
		{Command: osdp.TextPermanent, Row: 1, Column: 17, Text: "x"},
		{Command: 5, Row: 1, Column: 1, Text: "x"},
	} {
		if r, ok := l.send(bad).(osdp.Nak); !ok || r.Reason != osdp.NakUnableToProcess {
			t.Errorf("%+v: %#v, want NAK 9", bad, r)
		}
	}
}

func TestLED(t *testing.T) {
	l := newLink(t, Config{LEDs: 2})
	l.send(osdp.LED{
		{LED: 0, Permanent: osdp.LEDPermanent{Control: osdp.LEDPermSet, OnTime: 1, OnColor: osdp.Blue}},
		{LED: 1, Permanent: osdp.LEDPermanent{Control: osdp.LEDPermSet, OnTime: 5, OffTime: 5, OnColor: osdp.Amber}},
	})
	l.send(osdp.LED{{LED: 0, Temporary: osdp.LEDTemporary{Control: osdp.LEDTempSet, OnTime: 2, OffTime: 2,
		OnColor: osdp.Red, OffColor: osdp.Black, Timer: 15}}})

	want := func(at time.Duration, i int, s LEDState) {
		t.Helper()
		got := l.d.State(t0.Add(at)).LEDs[i]
		got.Until = time.Time{}
		if got != s {
			t.Errorf("LED %d at +%v: %+v, want %+v", i, at, got, s)
		}
	}
	want(0, 0, LEDState{Color: osdp.Red, Flashing: true, Temporary: true})
	want(1499*time.Millisecond, 0, LEDState{Color: osdp.Red, Flashing: true, Temporary: true})
	want(1500*time.Millisecond, 0, LEDState{Color: osdp.Blue})
	want(0, 1, LEDState{Color: osdp.Amber, Flashing: true}) // amber and black

	l.send(osdp.LED{{LED: 0, Temporary: osdp.LEDTemporary{Control: osdp.LEDTempCancel}}})
	want(0, 0, LEDState{Color: osdp.Blue})
	if r, ok := l.send(osdp.LED{{Reader: 1}}).(osdp.Nak); !ok || r.Reason != osdp.NakUnknownCommand {
		t.Errorf("LED on reader 1: %#v, want NAK 3", r)
	}
}

func TestOutput(t *testing.T) {
	l := newLink(t, Config{Outputs: 2})
	l.send(osdp.Out{{Output: 0, Control: osdp.OutputTemporaryOn, Timer: 30}})
	l.send(osdp.Out{{Output: 1, Control: osdp.OutputOn}})
	s := l.d.State(t0.Add(2999 * time.Millisecond))
	if !s.Outputs[0].Active || !s.Outputs[1].Active {
		t.Errorf("outputs %+v, want both active", s.Outputs)
	}
	s = l.d.State(t0.Add(3 * time.Second))
	if s.Outputs[0].Active || s.Outputs[0].Pulses != 1 || !s.Outputs[1].Active {
		t.Errorf("after the pulse: %+v", s.Outputs)
	}
	// A new pulse while the gate is still open counts: each grant is a passage.
	l.send(osdp.Out{{Output: 0, Control: osdp.OutputTemporaryOn, Timer: 30}})
	l.send(osdp.Out{{Output: 0, Control: osdp.OutputTemporaryOn, Timer: 30}})
	l.send(osdp.Out{{Output: 1, Control: osdp.OutputOn}}) // already on: no pulse
	if s := l.d.State(t0); s.Outputs[0].Pulses != 3 || s.Outputs[1].Pulses != 1 {
		t.Errorf("pulses %d and %d, want 3 and 1", s.Outputs[0].Pulses, s.Outputs[1].Pulses)
	}
	if r, ok := l.send(osdp.Out{{Output: 0, Control: 7}}).(osdp.Nak); !ok || r.Reason != osdp.NakUnableToProcess {
		t.Errorf("control code 7: %#v, want NAK 9", r)
	}
}

func TestBuzzer(t *testing.T) {
	l := newLink(t, Config{})
	l.send(osdp.Buz{Tone: osdp.ToneDefault, OnTime: 2, OffTime: 3, Count: 2}) // 1 s
	if s := l.d.State(t0.Add(999 * time.Millisecond)).Buzzer; !s.Sounding || s.Beeps != 1 {
		t.Errorf("at +999ms: %+v", s)
	}
	if s := l.d.State(t0.Add(time.Second)).Buzzer; s.Sounding {
		t.Errorf("at +1s: %+v, want silent", s)
	}
	l.send(osdp.Buz{Tone: osdp.ToneDefault, OnTime: 1, Count: 0}) // until told otherwise
	if s := l.d.State(t0.Add(time.Hour)).Buzzer; !s.Sounding {
		t.Errorf("count 0: %+v, want sounding", s)
	}
	l.send(osdp.Buz{Tone: osdp.ToneOff})
	if s := l.d.State(t0).Buzzer; s.Sounding || s.Beeps != 2 {
		t.Errorf("after tone off: %+v", s)
	}
}

func TestPowerCycle(t *testing.T) {
	l := newLink(t, Config{})
	l.send(osdp.Text{Command: osdp.TextPermanent, Row: 1, Column: 1, Text: "Welcome"})
	l.send(osdp.Out{{Control: osdp.OutputOn}})
	card, _ := wiegand.Encode(wiegand.H10301, 1, 2)
	must(t, l.d.PresentCard(card))

	l.d.PowerOff()
	if err := l.d.PresentCard(card); err != ErrPoweredOff {
		t.Errorf("card at a dead reader: %v, want ErrPoweredOff", err)
	}
	if got := feed(t, l.d, t0, cmd(t, osdp.Frame{Addr: 1, Seq: 3, CRC: true}, osdp.Poll{})); got != nil {
		t.Fatalf("powered off, answered % X", got)
	}
	l.d.PowerOn()
	s := l.d.State(t0)
	if s.Display[0] != "" || s.Outputs[0].Active || s.Queued != 0 {
		t.Errorf("after a power cycle: %+v, want a blank reader", s)
	}
	// The CP carries on with its numbering: the reader wants a restart.
	_, r := reply(t, feed(t, l.d, t0, cmd(t, osdp.Frame{Addr: 1, Seq: 3, CRC: true}, osdp.Poll{})))
	if n, ok := r.(osdp.Nak); !ok || n.Reason != osdp.NakSequence {
		t.Fatalf("after a power cycle: %#v, want NAK 4", r)
	}
}

func TestQueueFull(t *testing.T) {
	d := newDevice(t, Config{Address: 1, Queue: 2})
	must(t, d.TypeKeys("1"))
	must(t, d.TypeKeys("*2"))
	if err := d.TypeKeys("3"); err != ErrQueueFull {
		t.Fatalf("third event: %v, want ErrQueueFull", err)
	}
	if err := d.TypeKeys("12a"); err == nil {
		t.Fatal("key 'a' accepted")
	}
	if err := newDevice(t, Config{Address: 1, Keypad: No}).TypeKeys("1"); err != ErrNoKeypad {
		t.Fatalf("no keypad: %v", err)
	}
}

func TestComSetMovesTheDevice(t *testing.T) {
	l := newLink(t, Config{})
	if r := l.send(osdp.ComSet{Addr: 9, Baud: 115200}); r.(osdp.Com) != (osdp.Com{Addr: 9, Baud: 115200}) {
		t.Fatalf("COMSET: %#v", r)
	}
	if l.d.Address() != 9 {
		t.Fatalf("address %d after COMSET, want 9", l.d.Address())
	}
	if got := feed(t, l.d, t0, cmd(t, osdp.Frame{Addr: 1, CRC: true}, osdp.Poll{})); got != nil {
		t.Errorf("old address still answered: % X", got)
	}
	f, _ := reply(t, feed(t, l.d, t0, cmd(t, osdp.Frame{Addr: 9, CRC: true}, osdp.Poll{})))
	if f.Addr != 9 {
		t.Errorf("reply from 0x%02X, want 9", f.Addr)
	}
}

func TestFrameLongerThanTheReceiveBuffer(t *testing.T) {
	d := newDevice(t, Config{Address: 1, RxBuffer: 128})
	long := make(osdp.LED, 9) // 9 × 14 bytes of records
	_, r := reply(t, feed(t, d, t0, cmd(t, osdp.Frame{Addr: 1, CRC: true}, long)))
	if n, ok := r.(osdp.Nak); !ok || n.Reason != osdp.NakCommandLength {
		t.Fatalf("%d-byte frame: %#v, want NAK 2", frameLen(&osdp.Frame{CRC: true, Data: make([]byte, 126)}), r)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, cfg := range []Config{{Address: 0x7F}, {Rows: 3}, {RxBuffer: 64}, {LEDs: 17}, {Cols: 100}} {
		if _, err := New(cfg); err == nil {
			t.Errorf("%+v accepted", cfg)
		}
	}
}
