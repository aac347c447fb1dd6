package osdp

import (
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	wire "varco.dev/protocol/osdp"
	"varco.dev/protocol/wiegand"
)

// These tests run the bus on a real pseudo-terminal, on the real clock,
// against test PDs (pty_test.go). They assert on what the PDs received and
// on the events, never on durations.

// card returns the RAW reply of an H10301 card and its key.
func card(t testing.TB, fc uint32, cn uint64) (wire.Raw, wiegand.Key) {
	t.Helper()
	f, err := wiegand.Encode(wiegand.H10301, fc, cn)
	if err != nil {
		t.Fatal(err)
	}
	key, err := wiegand.KeyFromFrame(f)
	if err != nil {
		t.Fatal(err)
	}
	return wire.Raw{Format: wire.RawWiegand, Bits: uint16(f.Len()), Data: f.Bytes()}, key
}

func isOnline(addr byte) func(ReaderOnline) bool {
	return func(e ReaderOnline) bool { return e.Addr == addr }
}

func isOffline(addr byte) func(ReaderOffline) bool {
	return func(e ReaderOffline) bool { return e.Addr == addr }
}

func TestDiscovery(t *testing.T) {
	t.Parallel()
	l := newLine(t, newPD(0x65))
	b, events := startBus(t, l, Config{Readers: []byte{0x65}, Baud: 115200})

	on := expect(t, events, isOnline(0x65))
	want := Capabilities{
		Known: true, ID: l.pds[0x65].id, Rows: 2, Cols: 16, LEDs: 1, Buzzer: true,
		Outputs: 2, Inputs: 2, RxBuffer: 256, CRC: true,
	}
	if on.Caps != want {
		t.Errorf("capabilities\n got %+v\nwant %+v", on.Caps, want)
	}
	log := l.waitLog(t, "a POLL", func(log []seen) bool { return len(log) >= 3 })
	for i, w := range []seen{
		{Addr: 0x65, Seq: 0, Code: wire.CmdID, Reply: wire.ReplyPDID},
		{Addr: 0x65, Seq: 1, Code: wire.CmdCap, Reply: wire.ReplyPDCap},
		{Addr: 0x65, Seq: 2, Code: wire.CmdPoll, Reply: wire.ReplyAck},
	} {
		if g := log[i]; g.Addr != w.Addr || g.Seq != w.Seq || g.Code != w.Code || g.Reply != w.Reply {
			t.Errorf("command %d: %v, want %v", i, g, w)
		}
	}
	if rs := b.Readers(); len(rs) != 1 || !rs[0].Online || rs[0].Caps != want {
		t.Errorf("Readers() = %+v", rs)
	}
}

func TestCardReads(t *testing.T) {
	t.Parallel()
	l := newLine(t, newPD(1))
	_, events := startBus(t, l, Config{Readers: []byte{1}, Baud: 115200})
	expect(t, events, isOnline(1))

	raw, key := card(t, 123, 45678)
	l.queue(1, raw)
	if got := expect[CardRead](t, events, nil); got.Addr != 1 || got.Key != key {
		t.Errorf("RAW: %+v, want key %v", got, key)
	}

	bad := raw
	bad.Data = slices.Clone(raw.Data)
	bad.Data[0] ^= 0x80 // the even parity bit
	l.queue(1, bad)
	if got := expect[BadCard](t, events, nil); !errors.Is(got.Err, wiegand.ErrParity) {
		t.Errorf("bad parity: %+v", got)
	}

	// The same card printed by an FMT reader is the same credential.
	l.queue(1, wire.Fmt{Chars: "123:45678"})
	if got := expect[CardRead](t, events, nil); got.Key != key {
		t.Errorf("FMT: %+v, want key %v", got, key)
	}
	l.queue(1, wire.Fmt{Chars: "12x"})
	if got := expect[BadCard](t, events, nil); !errors.Is(got.Err, wiegand.ErrSyntax) {
		t.Errorf("bad FMT: %+v", got)
	}
}

func TestKeypadPIN(t *testing.T) {
	t.Parallel()
	l := newLine(t, newPD(1))
	_, events := startBus(t, l, Config{Readers: []byte{1}, Baud: 115200})
	expect(t, events, isOnline(1))

	for _, tc := range []struct {
		keys []string // one KEYPAD reply each
		pin  string
	}{
		{[]string{"1234#"}, "1234"},
		{[]string{"12", "34\r"}, "1234"},       // 0x0D is '#'
		{[]string{"99*", "0042#"}, "0042"},     // '*' clears
		{[]string{"77\x7f", "5", "6\r"}, "56"}, // 0x7F is '*'
	} {
		for _, k := range tc.keys {
			l.queue(1, wire.Keypad{Keys: k})
		}
		want, _ := wiegand.PINKey(tc.pin)
		if got := expect[CardRead](t, events, nil); got.Key != want {
			t.Errorf("keys %q: %v, want %v", tc.keys, got.Key, want)
		}
	}
}

// TestAnswerNextSlot checks that the answer to a card goes out in the very
// next slot of the line, and the rest of it before the reader's next POLL,
// while the other readers keep their turns.
func TestAnswerNextSlot(t *testing.T) {
	t.Parallel()
	addrs := []byte{1, 2, 3, 4}
	var pds []*testPD
	for _, a := range addrs {
		pds = append(pds, newPD(a))
	}
	l := newLine(t, pds...)
	var bus atomic.Pointer[Bus]
	answered := make(chan error, 1)
	b, _ := startBus(t, l, Config{
		Readers: addrs, Baud: 115200,
		PollInterval:   time.Nanosecond, // every reader always due, as on a real line with four readers
		DecisionWindow: failsafe,        // the test's handler always answers: no race with the next turn
		Handler: func(ev Event) {
			if c, ok := ev.(CardRead); ok {
				answered <- bus.Load().Answer(c.Addr, Answer{
					Output: Pulse{Output: 0, For: time.Second},
					LED:    LED{Color: Green, For: 2 * time.Second},
					Beep:   Beep{On: 200 * time.Millisecond, Count: 1},
					Lines:  []string{"Welcome", "Anna"},
				})
			}
		},
	})
	bus.Store(b)
	l.waitLog(t, "every reader polled", func(log []seen) bool {
		for _, a := range addrs {
			if !slices.ContainsFunc(log, func(s seen) bool { return s.Addr == a && s.Code == wire.CmdPoll }) {
				return false
			}
		}
		return true
	})

	raw, _ := card(t, 1, 100)
	l.queue(2, raw)
	select {
	case err := <-answered:
		if err != nil {
			t.Fatalf("Answer: %v", err)
		}
	case <-time.After(failsafe):
		t.Fatal("no card read")
	}
	var i int // index of the POLL that brought the card
	log := l.waitLog(t, "the answer and a POLL after it", func(log []seen) bool {
		i = slices.IndexFunc(log, func(s seen) bool { return s.Reply == wire.ReplyRaw })
		return i >= 0 && slices.ContainsFunc(log[i+1:], func(s seen) bool { return s.Addr == 2 && s.Code == wire.CmdPoll })
	})
	if next := log[i+1]; next.Addr != 2 || next.Code != wire.CmdOut {
		t.Errorf("next slot after the card: %v, want osdp_OUT to 0x02%s", next, tail(log[:i+2], 8))
	}
	var got []byte
	for _, s := range to(log[i+1:], 2) {
		got = append(got, s.Code)
		if s.Code == wire.CmdPoll {
			break
		}
	}
	want := []byte{wire.CmdOut, wire.CmdLED, wire.CmdBuz, wire.CmdText, wire.CmdText, wire.CmdPoll}
	if !slices.Equal(got, want) {
		t.Errorf("commands to 0x02 after the card: % X, want % X", got, want)
	}
	// One command per turn: every other reader had its turn between two
	// commands of the answer.
	j := i + 1 + slices.IndexFunc(log[i+1:], func(s seen) bool { return s.Addr == 2 && s.Code == wire.CmdPoll })
	for _, a := range []byte{1, 3, 4} {
		if n := len(to(log[i+1:j], a)); n < len(want)-2 {
			t.Errorf("reader 0x%02X had %d turns during the answer, want at least %d:%s", a, n, len(want)-2, tail(log[i:j+1], 30))
		}
	}
	var text []wire.Text
	for _, s := range to(log[i+1:], 2) {
		if m, ok := s.Msg.(wire.Text); ok {
			text = append(text, m)
		}
	}
	wantText := []wire.Text{
		{Command: wire.TextTemporary, TempTime: 3, Row: 1, Column: 1, Text: "Welcome         "},
		{Command: wire.TextTemporary, TempTime: 3, Row: 2, Column: 1, Text: "Anna            "},
	}
	if !slices.Equal(text, wantText) {
		t.Errorf("TEXT\n got %+v\nwant %+v", text, wantText)
	}
}

func TestReadersOnOneLine(t *testing.T) {
	t.Parallel()
	for _, n := range []int{2, 4} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			t.Parallel()
			var addrs []byte
			var pds []*testPD
			for i := range n {
				a := byte(0x10 + 7*i)
				addrs = append(addrs, a)
				pds = append(pds, newPD(a))
			}
			l := newLine(t, pds...)
			_, events := startBus(t, l, Config{Readers: addrs, Baud: 38400})
			online := map[byte]bool{}
			for range addrs {
				online[expect[ReaderOnline](t, events, nil).Addr] = true
			}
			keys := map[byte]wiegand.Key{}
			for i, a := range addrs {
				raw, key := card(t, 7, uint64(1000+i))
				keys[a] = key
				l.queue(a, raw)
			}
			for range addrs {
				c := expect[CardRead](t, events, nil)
				if keys[c.Addr] != c.Key {
					t.Errorf("reader 0x%02X read %v, want %v", c.Addr, c.Key, keys[c.Addr])
				}
				delete(keys, c.Addr)
			}
			if len(online) != n || len(keys) != 0 {
				t.Errorf("online %v, cards not read %v", online, keys)
			}
		})
	}
}

func TestSilentReader(t *testing.T) {
	t.Parallel()
	pd1, pd2 := newPD(1), newPD(2)
	pd2.silent = true
	l := newLine(t, pd1, pd2)
	b, events := startBus(t, l, Config{
		Readers: []byte{1, 2}, Baud: 115200,
		ReplyTimeout: 30 * time.Millisecond, OfflineProbe: 30 * time.Millisecond,
	})
	off := expect(t, events, isOffline(2))
	if !errors.Is(off.Err, ErrNoReply) {
		t.Errorf("offline: %v", off.Err)
	}
	if err := b.Answer(2, Answer{LED: LED{Color: Red, For: time.Second}}); !errors.Is(err, ErrOffline) {
		t.Errorf("Answer to an offline reader: %v", err)
	}
	if err := b.Answer(9, Answer{}); !errors.Is(err, ErrUnknownReader) {
		t.Errorf("Answer to no reader: %v", err)
	}

	// The other reader works on.
	raw, key := card(t, 1, 2)
	l.queue(1, raw)
	if c := expect[CardRead](t, events, nil); c.Addr != 1 || c.Key != key {
		t.Errorf("card: %+v", c)
	}

	// Back: found by a probe at sequence 0, and discovered again.
	l.with(2, func(pd *testPD) { pd.silent = false })
	expect(t, events, isOnline(2))
	log := l.waitLog(t, "reader 2 polled", func(log []seen) bool {
		return slices.ContainsFunc(log, func(s seen) bool { return s.Addr == 2 && s.Reply == wire.ReplyAck })
	})
	first := to(log, 2)[slices.IndexFunc(to(log, 2), func(s seen) bool { return s.Reply != 0 })]
	if first.Code != wire.CmdID || first.Seq != 0 {
		t.Errorf("first command answered by reader 2: %v, want osdp_ID seq 0", first)
	}

	// An online reader that goes silent goes offline, and comes back.
	l.with(1, func(pd *testPD) { pd.silent = true })
	expect(t, events, isOffline(1))
	l.with(1, func(pd *testPD) { pd.silent = false })
	expect(t, events, isOnline(1))
	l.queue(1, raw)
	if c := expect[CardRead](t, events, nil); c.Addr != 1 || c.Key != key {
		t.Errorf("card after coming back: %+v", c)
	}
}

// TestCorruptReply: a reply with a bad CRC is asked for again with the same
// sequence number, the PD answers from its cache, and the card is read once.
func TestCorruptReply(t *testing.T) {
	t.Parallel()
	l := newLine(t, newPD(1))
	b, events := startBus(t, l, Config{Readers: []byte{1}, Baud: 115200})
	expect(t, events, isOnline(1))

	raw, key := card(t, 10, 20)
	l.with(1, func(pd *testPD) { pd.corrupt = wire.ReplyRaw })
	l.queue(1, raw)
	if c := expect[CardRead](t, events, nil); c.Key != key {
		t.Errorf("card: %+v", c)
	}
	raw2, key2 := card(t, 10, 21)
	l.queue(1, raw2)
	if c := expect[CardRead](t, events, nil); c.Key != key2 {
		t.Errorf("next card: %v, want %v (the first read twice?)", c.Key, key2)
	}
	log := l.waitLog(t, "the card", func(log []seen) bool { return true })
	i := slices.IndexFunc(log, func(s seen) bool { return s.Reply == wire.ReplyRaw })
	if orig, retry := log[i], log[i+1]; !retry.Repeat || retry.Seq != orig.Seq || retry.Code != orig.Code {
		t.Errorf("after the corrupt reply to %v came %v, want a retry with the same sequence", orig, retry)
	}
	if s := b.Stats(); s.BadFrames == 0 || s.Retries == 0 {
		t.Errorf("stats %+v", s)
	}
	noEvent[ReaderOffline](t, events)
}

// TestNakSequence: a PD that lost its sequence (a reboot) answers NAK 4; the
// bus restarts at sequence 0 with the same command and goes on.
func TestNakSequence(t *testing.T) {
	t.Parallel()
	l := newLine(t, newPD(1))
	_, events := startBus(t, l, Config{Readers: []byte{1}, Baud: 115200})
	expect(t, events, isOnline(1))

	l.with(1, func(pd *testPD) { pd.seq.Reset() })
	nak := expect[NakReceived](t, events, nil)
	if nak.Reason != wire.NakSequence || nak.Addr != 1 {
		t.Errorf("NAK: %+v", nak)
	}
	raw, key := card(t, 3, 4)
	l.queue(1, raw)
	if c := expect[CardRead](t, events, nil); c.Key != key {
		t.Errorf("card: %+v", c)
	}
	log := l.waitLog(t, "the card", func(log []seen) bool { return true })
	i := slices.IndexFunc(log, func(s seen) bool { return s.Reply == wire.ReplyNak })
	if retry := log[i+1]; retry.Seq != 0 || retry.Code != log[i].Code || retry.Reply == wire.ReplyNak {
		t.Errorf("after %v came %v, want the same command at sequence 0", log[i], retry)
	}
	noEvent[ReaderOffline](t, events)
}

// TestNakUnknownText: a reader that answers NAK 3 to TEXT is not sent TEXT
// again.
func TestNakUnknownText(t *testing.T) {
	t.Parallel()
	pd := newPD(1)
	pd.naks[wire.CmdText] = wire.NakUnknownCommand
	l := newLine(t, pd)
	b, events := startBus(t, l, Config{Readers: []byte{1}, Baud: 115200})
	expect(t, events, isOnline(1))

	a := Answer{LED: LED{Color: Red, For: time.Second}, Lines: []string{"Please see", "reception"}}
	if err := b.Answer(1, a); err != nil {
		t.Fatal(err)
	}
	nak := expect[NakReceived](t, events, nil)
	if nak.Command != wire.CmdText || nak.Reason != wire.NakUnknownCommand {
		t.Errorf("NAK: %+v", nak)
	}
	if err := b.Answer(1, a); err != nil {
		t.Fatal(err)
	}
	log := l.waitLog(t, "two LEDs and a POLL", func(log []seen) bool {
		leds := 0
		for _, s := range log {
			if s.Code == wire.CmdLED {
				leds++
			}
			if leds == 2 && s.Code == wire.CmdPoll {
				return true
			}
		}
		return false
	})
	if n := len(slices.DeleteFunc(log, func(s seen) bool { return s.Code != wire.CmdText })); n != 1 {
		t.Errorf("%d TEXT commands, want 1 (the one refused)", n)
	}
}

// TestHostileLine: garbage, frames from other addresses, out-of-sequence
// replies and truncated frames around every reply; the readers work on.
func TestHostileLine(t *testing.T) {
	t.Parallel()
	l := newLine(t, newPD(1), newPD(2))
	l.mu.Lock()
	l.hostile = func(f *wire.Frame, n int) []byte {
		var b []byte
		b = append(b, 0x00, 0xFF, 0x53, 0x13, 0x11, 0xAA, 0x53) // noise, with SOMs in it
		b = append(b, encodeReply(&wire.Frame{Addr: 0x7D, Seq: f.Seq, CRC: true}, wire.Ack{})...)
		b = append(b, encodeReply(&wire.Frame{Addr: f.Addr, Seq: (f.Seq + 1) % 4, CRC: true}, wire.Ack{})...)
		b = append(b, encodeReply(&wire.Frame{Addr: 0x7D, Seq: f.Seq, CRC: true}, wire.PDID{})[:9]...) // truncated
		return b
	}
	l.mu.Unlock()
	b, events := startBus(t, l, Config{Readers: []byte{1, 2}, Baud: 115200})
	expect(t, events, isOnline(1))
	expect(t, events, isOnline(2))
	for i := range 10 {
		raw, key := card(t, 5, uint64(i))
		addr := byte(1 + i%2)
		if i == 4 {
			// A reply cut short by the reader being read from.
			l.with(addr, func(pd *testPD) { pd.cut = wire.ReplyRaw })
		}
		l.queue(addr, raw)
		if c := expect[CardRead](t, events, nil); c.Addr != addr || c.Key != key {
			t.Errorf("card %d: %+v, want %v at 0x%02X", i, c, key, addr)
		}
	}
	noise := expect[LineNoise](t, events, nil)
	s := b.Stats()
	if s.Garbage == 0 || s.BadFrames == 0 || s.WrongAddr == 0 || s.WrongSeq == 0 || s.Timeouts == 0 {
		t.Errorf("stats %+v", s)
	}
	if noise.Garbage == 0 || noise.WrongAddr == 0 || noise.WrongSeq == 0 {
		t.Errorf("noise %+v", noise)
	}
	noEvent[ReaderOffline](t, events)
}

// TestSlowHandler: a handler that does not return loses events, which are
// counted, but the line goes on: cards are still read off the readers and
// every reader is still polled.
func TestSlowHandler(t *testing.T) {
	t.Parallel()
	l := newLine(t, newPD(1), newPD(2))
	release := make(chan struct{})
	b, _ := startBus(t, l, Config{
		Readers: []byte{1, 2}, Baud: 115200, EventQueue: 2,
		Handler: func(Event) { <-release },
	})
	t.Cleanup(func() { close(release) }) // before the bus's cleanup, which waits for the handler
	raw, _ := card(t, 1, 1)
	for range 5 {
		l.queue(1, raw)
	}
	log := l.waitLog(t, "five cards read, then both readers polled", func(log []seen) bool {
		i := slices.IndexFunc(log, func(s seen) bool { return s.Reply == wire.ReplyRaw })
		n := len(slices.DeleteFunc(slices.Clone(log), func(s seen) bool { return s.Reply != wire.ReplyRaw }))
		if i < 0 || n < 5 {
			return false
		}
		after := log[i:]
		return len(to(after, 1)) > 10 && len(to(after, 2)) > 10
	})
	if s := b.Stats(); s.DroppedEvents < 3 {
		t.Errorf("dropped %d events, want at least 3 of the 2 readers online and 5 cards with a queue of 2: %s", s.DroppedEvents, tail(log, 10))
	}
}
