package sim

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"varco.dev/firmware-sim/internal/testcp"
	"varco.dev/protocol/osdp"
	"varco.dev/protocol/wiegand"
)

func TestDiscovery(t *testing.T) {
	link := filepath.Join(t.TempDir(), "ttyOSDP")
	s, err := New(Config{Link: link})
	if err != nil {
		t.Fatal(err)
	}
	if target, err := os.Readlink(link); err != nil || target != s.Path() {
		t.Fatalf("link %s → %q (%v), want %s", link, target, err, s.Path())
	}
	cp := testcp.Open(t, link)
	if _, r := cp.Exchange(1, osdp.ID{}); r.(osdp.PDID).Serial != 1001 {
		t.Errorf("PDID %+v, want serial 1001", r)
	}
	_, r := cp.Exchange(1, osdp.Cap{})
	if rows, cols, ok := r.(osdp.PDCap).TextDisplay(); !ok || rows != 2 || cols != 16 {
		t.Errorf("display %d×%d %v, want 2×16", rows, cols, ok)
	}
	if f, r := cp.Exchange(1, osdp.Poll{}); r.Code() != osdp.ReplyAck || f.Addr != 1 || f.Seq != 2 {
		t.Errorf("POLL: %v", f)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(link); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("link still there after Close: %v", err)
	}
}

func TestCardOnNextPoll(t *testing.T) {
	var (
		mu     sync.Mutex
		events []Event
	)
	s := newSim(t, Config{Trace: func(ev Event) { mu.Lock(); events = append(events, ev); mu.Unlock() }})
	cp := testcp.Open(t, s.Path())
	cp.Exchange(1, osdp.Poll{})
	if err := s.PresentCard(1, wiegand.H10301, 123, 4567); err != nil {
		t.Fatal(err)
	}
	if err := s.TypePIN(1, "1234#"); err != nil {
		t.Fatal(err)
	}
	_, r := cp.Exchange(1, osdp.Poll{})
	want, _ := wiegand.Encode(wiegand.H10301, 123, 4567)
	if raw, ok := r.(osdp.Raw); !ok || raw.Bits != 26 || !bytes.Equal(raw.Data, want.Bytes()) || raw.Format != osdp.RawWiegand {
		t.Fatalf("POLL after a card: %#v", r)
	}
	if _, r := cp.Exchange(1, osdp.Poll{}); r.(osdp.Keypad).Keys != "1234\r" {
		t.Fatalf("POLL after a PIN: %#v", r)
	}
	if _, r := cp.Exchange(1, osdp.Poll{}); r.Code() != osdp.ReplyAck {
		t.Fatalf("POLL with nothing queued: %#v", r)
	}
	mu.Lock()
	defer mu.Unlock()
	i := slices.IndexFunc(events, func(ev Event) bool { return ev.Kind == Sent && ev.Code == osdp.ReplyRaw })
	if i < 1 || events[i-1].Kind != Received || events[i-1].Code != osdp.CmdPoll || events[i].Len != 16 {
		t.Errorf("trace %+v: want the RAW's 16 bytes sent after a POLL received", events)
	}
}

func TestWhatAPersonSees(t *testing.T) {
	s := newSim(t, Config{})
	cp := testcp.Open(t, s.Path())
	ctx := waitCtx(t)
	cp.Exchange(1, osdp.Text{Command: osdp.TextPermanent, Row: 1, Column: 1, Text: "Welcome"})
	mark := s.Mark()
	cp.Exchange(1, osdp.Text{Command: osdp.TextTemporaryWrap, TempTime: 5, Row: 1, Column: 1, Text: "Please see reception"})
	cp.Exchange(1, osdp.LED{{Temporary: osdp.LEDTemporary{Control: osdp.LEDTempSet, OnTime: 5, OnColor: osdp.Red, Timer: 30}}})
	cp.Exchange(1, osdp.Buz{Tone: osdp.ToneDefault, OnTime: 3, Count: 1})

	st, err := s.WaitSince(ctx, mark, All(Shows(1, "Please see reception"), LEDColor(1, osdp.Red)))
	if err != nil {
		t.Fatal(err)
	}
	r, _ := st.Reader(1)
	if !r.Temporary || !slices.Equal(r.Display, []string{"Please see recep", "tion"}) {
		t.Errorf("reader %v", r)
	}
	if b := s.Buzzer(1); b.Beeps != 1 {
		t.Errorf("buzzer %+v, want one beep", b)
	}
	hold, stop := context.WithTimeout(ctx, 50*time.Millisecond)
	defer stop()
	if err := s.Never(hold, mark, GateOpened(1, 1)); err != nil {
		t.Errorf("the gate opened: %v", err)
	}
	// A grant: the output pulses and the turnstile lets one person through.
	if _, r := cp.Exchange(1, osdp.Out{{Control: osdp.OutputTemporaryOn, Timer: 30}}); !bytes.Equal(r.(osdp.OStatR), []byte{1}) {
		t.Errorf("OUT: %#v, want OSTATR with output 0 on", r)
	}
	if _, err := s.Wait(ctx, GateOpened(1, 1)); err != nil {
		t.Fatal(err)
	}
	if err := s.Never(ctx, mark, GateOpened(1, 1)); err == nil || !strings.Contains(err.Error(), "gate open, 1 passages") {
		t.Errorf("Never after the gate opened: %v", err)
	}
	if g := s.Gate(1); !g.Open || !g.Present {
		t.Errorf("gate %+v, want open", g)
	}
}

func TestTemporaryTextTimesOut(t *testing.T) {
	var (
		mu  sync.Mutex
		now = time.Date(2025, 11, 25, 8, 0, 0, 0, time.UTC)
	)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	s := newSim(t, Config{Now: clock})
	cp := testcp.Open(t, s.Path())
	ctx := waitCtx(t)
	cp.Exchange(1, osdp.Text{Command: osdp.TextPermanent, Row: 1, Column: 1, Text: "Welcome"})
	cp.Exchange(1, osdp.Text{Command: osdp.TextTemporary, TempTime: 3, Row: 1, Column: 1, Text: "Hello Anna"})
	if _, err := s.Wait(ctx, Shows(1, "Hello Anna")); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	now = now.Add(3 * time.Second)
	mu.Unlock()
	s.Tick()
	st, err := s.Wait(ctx, Shows(1, "Welcome"))
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := st.Reader(1); r.Temporary {
		t.Errorf("%v: still temporary", r)
	}
}

func TestWaitSinceSeesTransientStates(t *testing.T) {
	s := newSim(t, Config{})
	cp := testcp.Open(t, s.Path())
	mark := s.Mark()
	for _, c := range []osdp.Color{osdp.Green, osdp.Red} {
		cp.Exchange(1, osdp.LED{{Permanent: osdp.LEDPermanent{Control: osdp.LEDPermSet, OnTime: 1, OnColor: c}}})
	}
	if s.LED(1).Color != osdp.Red {
		t.Fatalf("LED %v, want red now", s.LED(1).Color)
	}
	if _, err := s.WaitSince(waitCtx(t), mark, LEDColor(1, osdp.Green)); err != nil {
		t.Fatalf("green came and went before the wait: %v", err)
	}
}

func TestWaitFailsWithTheLastState(t *testing.T) {
	s := newSim(t, Config{})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := s.Wait(ctx, Shows(1, "never"))
	var we *WaitError
	if !errors.As(err, &we) || !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want a WaitError wrapping context.Canceled", err)
	}
	if want := "reader 1: \"\" \"\" · LED black · buzzer off · gate closed, 0 passages"; we.Last.String() != want {
		t.Errorf("last state\n%s\nwant\n%s", we.Last, want)
	}
}

func TestSequenceAndErrors(t *testing.T) {
	s := newSim(t, Config{})
	cp := testcp.Open(t, s.Path())
	cp.Exchange(1, osdp.Poll{})
	if err := s.PresentCard(1, wiegand.H10301, 1, 2); err != nil {
		t.Fatal(err)
	}
	// The CP lost the RAW and retries: the same bytes, the card sent once.
	poll := cp.Encode(1, osdp.Poll{})
	cp.Write(poll)
	first := cp.Next()
	cp.Write(poll)
	if again := cp.Next(); !bytes.Equal(again.Raw, first.Raw) || first.Code != osdp.ReplyRaw {
		t.Fatalf("retry: % X, want % X", again.Raw, first.Raw)
	}
	// Out of order.
	b, _ := osdp.AppendMessage(nil, &osdp.Frame{Addr: 1, Seq: 3, CRC: true}, osdp.Poll{})
	cp.Write(b)
	_, r := cp.Reply()
	wantNak(t, r, osdp.NakSequence)
	// Bad CRC.
	b[len(b)-1] ^= 0xFF
	cp.Write(b)
	_, r = cp.Reply()
	wantNak(t, r, osdp.NakCheck)
	// Unknown command, on a fresh link.
	b, _ = osdp.AppendFrame(nil, &osdp.Frame{Addr: 1, CRC: true, Code: osdp.CmdMfg, Data: []byte{1, 2, 3, 0}})
	cp.Write(b)
	_, r = cp.Reply()
	wantNak(t, r, osdp.NakUnknownCommand)
}

func TestMultiDrop(t *testing.T) {
	s := newSim(t, Config{Readers: Readers(3)})
	cp := testcp.Open(t, s.Path())
	for addr := byte(1); addr <= 3; addr++ {
		if f, _ := cp.Exchange(addr, osdp.Poll{}); f.Addr != addr {
			t.Fatalf("POLL to %d answered by %d", addr, f.Addr)
		}
	}
	// Reader 2 goes dark: a POLL to it gets nothing, so the next reply on
	// the line is reader 3's.
	if err := s.PowerOff(2); err != nil {
		t.Fatal(err)
	}
	cp.Send(2, osdp.Poll{})
	if f, _ := cp.Exchange(3, osdp.Poll{}); f.Addr != 3 {
		t.Fatalf("reply from %d, want 3", f.Addr)
	}
	if r, _ := s.Reader(2); r.Powered || r.String() != "reader 2: powered off" {
		t.Errorf("%v", r)
	}
	// Back on, it wants the link restarted.
	if err := s.PowerOn(2); err != nil {
		t.Fatal(err)
	}
	_, r := cp.Exchange(2, osdp.Poll{})
	wantNak(t, r, osdp.NakSequence)
	cp.Reset(2)
	if _, r := cp.Exchange(2, osdp.Poll{}); r.Code() != osdp.ReplyAck {
		t.Fatalf("after the restart: %#v", r)
	}
	// A broadcast is acted on by all and answered by one, from 0xFF.
	b, _ := osdp.AppendMessage(nil, &osdp.Frame{Addr: osdp.BroadcastAddr, CRC: true},
		osdp.LED{{Permanent: osdp.LEDPermanent{Control: osdp.LEDPermSet, OnTime: 1, OnColor: osdp.Blue}}})
	cp.Write(b)
	if f, _ := cp.Reply(); f.Addr != osdp.BroadcastAddr {
		t.Fatalf("broadcast answered from 0x%02X", f.Addr)
	}
	if f, _ := cp.Exchange(1, osdp.Poll{}); f.Addr != 1 {
		t.Fatalf("a second answer to the broadcast: %v", f)
	}
	if _, err := s.Wait(waitCtx(t), All(LEDColor(1, osdp.Blue), LEDColor(2, osdp.Blue), LEDColor(3, osdp.Blue))); err != nil {
		t.Fatal(err)
	}
	if err := s.PowerOff(9); !errors.Is(err, ErrNoReader) {
		t.Errorf("reader 9: %v", err)
	}
}

func TestFaults(t *testing.T) {
	s := newSim(t, Config{Readers: Readers(2)})
	cp := testcp.Open(t, s.Path())
	cp.Exchange(1, osdp.Poll{})
	cp.Exchange(2, osdp.Poll{})

	// A dropped reply: silence, then the retry gets the reply.
	if err := s.PresentCard(1, wiegand.H10301, 1, 2); err != nil {
		t.Fatal(err)
	}
	if err := s.Inject(1, DropReply, 1); err != nil {
		t.Fatal(err)
	}
	poll := cp.Encode(1, osdp.Poll{})
	cp.Write(poll)
	if f, _ := cp.Exchange(2, osdp.Poll{}); f.Addr != 2 {
		t.Fatalf("dropped reply arrived: %v", f)
	}
	cp.Write(poll)
	if _, r := cp.Reply(); r.Code() != osdp.ReplyRaw {
		t.Fatalf("retry after a drop: %#v", r)
	}
	// A corrupted check byte.
	if err := s.Inject(1, CorruptCheck, 1); err != nil {
		t.Fatal(err)
	}
	cp.Send(1, osdp.Poll{})
	if r := cp.Next(); !errors.Is(r.Err, osdp.ErrBadCheck) {
		t.Fatalf("corrupted reply: %v %v", r.Frame, r.Err)
	}
	// Garbled bytes: whatever the CP makes of them, not the real reply.
	if err := s.Inject(1, GarbleReply, 1); err != nil {
		t.Fatal(err)
	}
	ack, _ := osdp.AppendMessage(nil, &osdp.Frame{Addr: 1, Seq: 1, CRC: true}, osdp.Ack{})
	cp.Send(1, osdp.Poll{})
	cp.Send(2, osdp.Poll{}) // its reply fences the garbled bytes off
	for {
		r := cp.Next()
		if bytes.Equal(r.Raw, ack) {
			t.Fatalf("garbled reply arrived intact")
		}
		if r.Err == nil && r.Addr == 2 {
			break
		}
	}
	// A late answer.
	if err := s.AnswerLate(2, 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	cp.Exchange(2, osdp.Poll{})
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Errorf("late reply after %v, want at least 50ms", d)
	}
	// BUSY, then the same command carried out.
	if err := s.Busy(2, 1); err != nil {
		t.Fatal(err)
	}
	if err := s.AnswerLate(2, 0); err != nil {
		t.Fatal(err)
	}
	out := cp.Encode(2, osdp.Out{{Control: osdp.OutputTemporaryOn, Timer: 10}})
	cp.Write(out)
	if f, r := cp.Reply(); r.Code() != osdp.ReplyBusy || f.Seq != 0 {
		t.Fatalf("BUSY: %v", f)
	}
	cp.Write(out)
	if _, r := cp.Reply(); r.Code() != osdp.ReplyOStatR {
		t.Fatalf("after BUSY: %#v", r)
	}
	if g := s.Gate(2); g.Opened != 1 {
		t.Errorf("gate opened %d times, want 1", g.Opened)
	}
	if err := s.Noise([]byte{0x53, 0x00, 0x12}); err != nil {
		t.Fatal(err)
	}
	if _, err := ParseFault("smoke"); err == nil {
		t.Error("fault smoke parsed")
	}
}

func TestBaudPacing(t *testing.T) {
	s := newSim(t, Config{Baud: 9600, BaudPacing: true})
	cp := testcp.Open(t, s.Path())
	start := time.Now()
	cp.Exchange(1, osdp.Poll{})
	// An 8-byte POLL in and an 8-byte ACK out at 9600 baud: 16.7 ms of wire.
	if d, min := time.Since(start), WireTime(16, 9600); d < min {
		t.Errorf("exchange took %v, less than the wire time %v", d, min)
	}
}

func TestCloseEndsWaits(t *testing.T) {
	s, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() {
		_, err := s.Wait(context.Background(), Shows(1, "never"))
		done <- err
	}()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Fatalf("wait after Close: %v", err)
	}
	if err := s.PresentCard(1, wiegand.H10301, 1, 1); !errors.Is(err, ErrClosed) {
		t.Errorf("card after Close: %v", err)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, cfg := range []Config{
		{Readers: []ReaderConfig{{Address: 1}, {Address: 1}}},
		{Readers: []ReaderConfig{{Address: 200}}},
		{Baud: 10},
	} {
		if s, err := New(cfg); err == nil {
			s.Close()
			t.Errorf("%+v accepted", cfg)
		}
	}
}

func TestParseCard(t *testing.T) {
	h10301, _ := wiegand.Encode(wiegand.H10301, 123, 4567)
	h10302, _ := wiegand.Encode(wiegand.H10302, 0, 99)
	raw26, _ := wiegand.ParseBits("01101010111100110111100110")
	tests := []struct {
		in   []string
		want wiegand.Frame
		err  string
	}{
		{in: []string{"H10301", "123", "4567"}, want: h10301},
		{in: []string{"h10301", "0x7B", "4567"}, want: h10301},
		{in: []string{"H10302", "99"}, want: h10302},
		{in: []string{"26", "0x1ABCDE6"}, want: raw26},
		{in: []string{"26", "0b01101010111100110111100110"}, want: raw26},
		{in: []string{"26", "0x4000000"}, err: "do not fit in 26 bits"},
		{in: []string{"65", "1"}, err: "bit count 65"},
		{in: []string{"H10301", "4567"}, err: "needs a facility code"},
		{in: []string{"H10301", "256", "1"}, err: "out of range"},
		{in: []string{"X99", "1", "2"}, err: "unknown card format"},
		{in: []string{"H10301", "a", "2"}, err: "not a number"},
		{in: []string{"H10301"}, err: "want FORMAT"},
	}
	for _, tt := range tests {
		got, err := ParseCard(tt.in)
		switch {
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("%q: error %v, want %q", tt.in, err, tt.err)
		case tt.err == "" && (err != nil || got != tt.want):
			t.Errorf("%q: %v %v, want %v", tt.in, got, err, tt.want)
		}
	}
}
