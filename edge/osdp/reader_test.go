package osdp

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	wire "varco.dev/protocol/osdp"
	"varco.dev/protocol/wiegand"
)

// These tests drive the bus's timing decisions with a fake clock, on a
// scripted port or on the reader state directly.

// stepClock is a fake clock that reports each wait of the bus, so that a
// test moves time only while the bus waits, and by as much as it waits.
type stepClock struct {
	*clockwork.FakeClock
	armed chan time.Duration
}

func (c *stepClock) NewTimer(d time.Duration) clockwork.Timer {
	return stepTimer{c.FakeClock.NewTimer(d), c.armed}
}

type stepTimer struct {
	clockwork.Timer
	armed chan<- time.Duration
}

func (t stepTimer) Reset(d time.Duration) bool {
	ok := t.Timer.Reset(d)
	t.armed <- d
	return ok
}

// next returns how long the bus's next wait is, once it waits.
func (c *stepClock) next(t *testing.T) time.Duration {
	t.Helper()
	select {
	case d := <-c.armed:
		return d
	case <-time.After(failsafe):
		t.Fatalf("the bus did not wait in %v", failsafe)
		panic("unreachable")
	}
}

// expire lets the bus's next wait run out and returns its length.
func (c *stepClock) expire(t *testing.T) time.Duration {
	t.Helper()
	d := c.next(t)
	c.Advance(d)
	return d
}

// scriptBus returns a bus on a scripted port with a step clock; events go
// to the returned channel (when the bus runs) or stay in b.events.
func scriptBus(t *testing.T, cfg Config) (*Bus, *scriptPort, *stepClock, chan Event) {
	t.Helper()
	p := newScriptPort()
	c := &stepClock{clockwork.NewFakeClockAt(t0), make(chan time.Duration, 256)}
	events := make(chan Event, 64)
	cfg.Clock, cfg.Logger = c, testLogger(t)
	cfg.Handler = func(ev Event) { events <- ev }
	b, err := newBus(p, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b, p, c, events
}

func wantFrame(t *testing.T, f wire.Frame, code byte, seq uint8) {
	t.Helper()
	if f.Code != code || f.Seq != seq {
		t.Fatalf("bus sent %v, want %s seq %d", f, wire.CodeName(code, false), seq)
	}
}

func TestOfflineAndProbe(t *testing.T) {
	t.Parallel()
	b, p, c, events := scriptBus(t, Config{Readers: []byte{5}, Baud: 115200})
	runBus(t, b)

	// Discovery: osdp_ID and its three retries, the same frame each time,
	// each after a reply timeout.
	var waited time.Duration
	for range 4 {
		wantFrame(t, p.sent(t), wire.CmdID, 0)
		waited += c.expire(t)
	}
	if off := expect(t, events, isOffline(5)); !errors.Is(off.Err, ErrNoReply) || !off.At.Equal(t0.Add(waited)) {
		t.Errorf("offline %+v after %v", off, waited)
	}
	if want := b.cfg.ReplyTimeout + WireTime(10, 115200); waited != 4*want {
		t.Errorf("waited %v for 4 replies, want 4×%v", waited, want)
	}

	// Probed once per OfflineProbe, a single attempt each, at sequence 0.
	for range 2 {
		if d := c.next(t); d != b.cfg.OfflineProbe {
			t.Fatalf("idle for %v, want %v", d, b.cfg.OfflineProbe)
		}
		c.Advance(b.cfg.OfflineProbe - time.Millisecond)
		p.nothingSent(t)
		c.Advance(time.Millisecond)
		wantFrame(t, p.sent(t), wire.CmdID, 0)
		c.expire(t)
	}

	// It answers: discovered again, then polled.
	c.Advance(c.next(t))
	f := p.sent(t)
	wantFrame(t, f, wire.CmdID, 0)
	c.next(t)
	p.reply(t, f, wire.PDID{Serial: 77})
	f = p.sent(t)
	wantFrame(t, f, wire.CmdCap, 1)
	c.next(t)
	p.reply(t, f, wire.PDCap{{Function: wire.CapTextOutput, Compliance: 3, Number: 1}})
	on := expect(t, events, isOnline(5))
	if want := (Capabilities{Known: true, ID: PDID{Serial: 77}, Rows: 4, Cols: 16, RxBuffer: 128}); on.Caps != want {
		t.Errorf("caps %+v, want %+v", on.Caps, want)
	}
	wantFrame(t, p.sent(t), wire.CmdPoll, 2)
	noEvent[ReaderOffline](t, events)
}

// discover takes the scripted reader at addr through discovery.
func discover(t *testing.T, p *scriptPort, c *stepClock, events chan Event, addr byte) {
	t.Helper()
	f := p.sent(t)
	wantFrame(t, f, wire.CmdID, 0)
	c.next(t)
	p.reply(t, f, wire.PDID{})
	f = p.sent(t)
	wantFrame(t, f, wire.CmdCap, 1)
	c.next(t)
	p.reply(t, f, newPD(addr).caps)
	expect(t, events, isOnline(addr))
}

// TestBusy: osdp_BUSY gets the same frame again a poll interval later,
// however often, without the reader going offline.
func TestBusy(t *testing.T) {
	t.Parallel()
	b, p, c, events := scriptBus(t, Config{Readers: []byte{1}, Baud: 115200})
	runBus(t, b)
	discover(t, p, c, events, 1)
	f := p.sent(t)
	wantFrame(t, f, wire.CmdPoll, 2)
	c.next(t)
	for range 2 * DefaultRetries {
		p.reply(t, f, wire.Busy{})
		if d := c.expire(t); d != b.cfg.PollInterval {
			t.Errorf("idle for %v after BUSY, want %v", d, b.cfg.PollInterval)
		}
		wantFrame(t, p.sent(t), wire.CmdPoll, 2)
		c.next(t)
	}
	p.reply(t, f, wire.Ack{})
	wantFrame(t, p.sent(t), wire.CmdPoll, 3)
	noEvent[ReaderOffline](t, events)
}

// onlineBus returns a bus, not running, whose readers are online with the
// test PD's capabilities.
func onlineBus(t *testing.T, cfg Config) (*Bus, *stepClock) {
	t.Helper()
	b, _, fc, _ := scriptBus(t, cfg)
	for _, r := range b.readers {
		r.caps = newPD(r.addr).caps
		b.online(r, fc.Now())
	}
	for len(b.events) > 0 {
		<-b.events
	}
	return b, fc
}

func text(m wire.Command) string {
	if t, ok := m.(wire.Text); ok {
		return t.Text
	}
	return ""
}

func TestIdleText(t *testing.T) {
	t.Parallel()
	b, fc := onlineBus(t, Config{Readers: []byte{1}, IdleText: []string{"Welcome"}})
	r := b.readers[0]

	// Written when the reader comes online, as permanent text on every row.
	m := b.dequeue(r, fc.Now())
	if want := (wire.Text{Command: wire.TextPermanent, Row: 1, Column: 1, Text: "Welcome         "}); m != want {
		t.Errorf("idle row 1: %+v", m)
	}
	// An answer comes in the middle: it goes first, and the idle text is
	// written again once the answer's hold time is over.
	if err := b.Answer(1, Answer{Lines: []string{"Hi Anna"}, Hold: 2 * time.Second}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []wire.Text{
		{Command: wire.TextTemporary, TempTime: 2, Row: 1, Column: 1, Text: "Hi Anna         "},
		{Command: wire.TextTemporary, TempTime: 2, Row: 2, Column: 1, Text: strings.Repeat(" ", 16)},
	} {
		if m := b.dequeue(r, fc.Now()); m != want {
			t.Errorf("answer: %+v, want %+v", m, want)
		}
	}
	if m := b.dequeue(r, fc.Now()); m != nil {
		t.Errorf("during the hold: %+v, want a POLL", m)
	}
	fc.Advance(2 * time.Second)
	for _, want := range []string{"Welcome         ", strings.Repeat(" ", 16)} {
		if m := b.dequeue(r, fc.Now()); text(m) != want {
			t.Errorf("after the hold: %+v, want %q", m, want)
		}
	}
	if err := b.SetIdleText(1, "Closed at 22"); err != nil {
		t.Fatal(err)
	}
	if m := b.dequeue(r, fc.Now()); text(m) != "Closed at 22    " {
		t.Errorf("new idle text: %+v", m)
	}
}

// TestAnswerFirst: an answer's first command takes the next slot, out of
// turn; then the turns go on where they were.
func TestAnswerFirst(t *testing.T) {
	t.Parallel()
	b, fc := onlineBus(t, Config{Readers: []byte{1, 2, 3}, PollInterval: time.Nanosecond})
	now := fc.Now()
	order := func(n int) []byte {
		var got []byte
		for range n {
			r, _ := b.pick(now)
			got = append(got, r.addr)
			b.dequeue(r, now)
		}
		return got
	}
	if got := order(1); got[0] != 1 {
		t.Fatalf("first turn: %v", got)
	}
	if err := b.Answer(3, Answer{LED: LED{Color: Green, For: time.Second}, Beep: Beep{Count: 1}}); err != nil {
		t.Fatal(err)
	}
	// 3 out of turn (LED), then 2, 3 (BUZ, its own turn), 1.
	if got, want := order(4), []byte{3, 2, 3, 1}; string(got) != string(want) {
		t.Errorf("turns %v, want %v", got, want)
	}
}

func TestAnswerCommands(t *testing.T) {
	t.Parallel()
	a := Answer{
		Output: Pulse{Output: 1, For: 1500 * time.Millisecond},
		LED:    LED{Color: Green, On: 300 * time.Millisecond, Off: 150 * time.Millisecond, For: 2 * time.Second},
		Beep:   Beep{On: 100 * time.Millisecond, Off: 100 * time.Millisecond, Count: 2},
		Lines:  []string{"Ciao Anna, benvenuta!", "Però\n"},
		Hold:   2500 * time.Millisecond,
	}
	msgs := func(q []queued) []wire.Command {
		var m []wire.Command
		for _, x := range q {
			m = append(m, x.msg)
		}
		return m
	}
	out := wire.Out{{Output: 1, Control: wire.OutputTemporaryOn, Timer: 15}}
	led := wire.LED{{Temporary: wire.LEDTemporary{Control: wire.LEDTempSet, OnTime: 3, OffTime: 2, OnColor: wire.Green, Timer: 20}}}
	buz := wire.Buz{Tone: wire.ToneDefault, OnTime: 1, OffTime: 1, Count: 2}
	for _, tc := range []struct {
		name string
		caps Capabilities
		want []wire.Command
	}{
		{"2x16", capabilities(PDID{}, newPD(1).caps), []wire.Command{out, led, buz,
			wire.Text{Command: wire.TextTemporary, TempTime: 3, Row: 1, Column: 1, Text: "Ciao Anna, benve"},
			wire.Text{Command: wire.TextTemporary, TempTime: 3, Row: 2, Column: 1, Text: "Pero?           "},
		}},
		{"unknown", Capabilities{}, []wire.Command{out, led, buz,
			wire.Text{Command: wire.TextTemporary, TempTime: 3, Row: 1, Column: 1, Text: "Ciao Anna, benvenuta!"},
			wire.Text{Command: wire.TextTemporary, TempTime: 3, Row: 2, Column: 1, Text: "Pero?"},
		}},
		{"bare", Capabilities{Known: true, Outputs: 1}, nil}, // output 1 of 1 does not exist
	} {
		if got := msgs(a.commands(nil, tc.caps)); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", tc.name, got, tc.want)
		}
	}
}

func TestKeypadTimeout(t *testing.T) {
	t.Parallel()
	b, fc := onlineBus(t, Config{Readers: []byte{1}})
	r := b.readers[0]
	keys := func(k string) {
		r.cur = exchange{msg: wire.Poll{}}
		b.replied(r, wire.ReplyKeypad, wire.Keypad{Keys: k}, nil, fc.Now())
	}
	keys("12")
	fc.Advance(DefaultKeypadTimeout + time.Second)
	keys("3#")
	want, _ := wiegand.PINKey("3")
	if c := expect[CardRead](t, b.events, nil); c.Key != want {
		t.Errorf("after a pause: %v, want %v", c.Key, want)
	}
	keys(strings.Repeat("1", wiegand.MaxPINDigits+1) + "#")
	if bad := expect[BadCard](t, b.events, nil); !errors.Is(bad.Err, wiegand.ErrSyntax) {
		t.Errorf("too long: %+v", bad)
	}
	keys("#") // enter alone is nothing
	keys("A1\r")
	want, _ = wiegand.PINKey("1")
	if c := expect[CardRead](t, b.events, nil); c.Key != want {
		t.Errorf("function key ignored: %v, want %v", c.Key, want)
	}
}

func TestConfig(t *testing.T) {
	t.Parallel()
	for _, cfg := range []Config{
		{},
		{Readers: []byte{0x7F}},
		{Readers: []byte{1, 1}},
		{Readers: []byte{1}, Baud: 4800},
		{Readers: []byte{1}, ReplyTimeout: -1},
	} {
		if _, err := newBus(nil, cfg); err == nil {
			t.Errorf("%+v: no error", cfg)
		}
	}
	b, err := newBus(nil, Config{Readers: []byte{1}, Baud: 115200, Retries: -1})
	if err != nil {
		t.Fatal(err)
	}
	if c := b.cfg; b.retries != 0 || c.PollInterval != 3125*time.Microsecond || c.ReplyTimeout != DefaultReplyTimeout {
		t.Errorf("defaults: retries %d, %+v", b.retries, c)
	}
}
