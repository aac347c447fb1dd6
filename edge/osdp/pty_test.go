package osdp

import (
	"context"
	"os"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"

	wire "varco.dev/protocol/osdp"
)

// seen is a command a test PD received, and what it did with it.
type seen struct {
	Addr   byte
	Seq    uint8
	Code   byte
	Msg    wire.Command // nil if it did not decode
	Reply  byte         // code of the reply sent; 0 for none
	Repeat bool         // a retry answered from the PD's cache
}

// testPD is a reader built on protocol/osdp: sequence checks and cached
// replies from PDSequence, ID and CAP from its fields, events answered to
// POLLs in order. Its fields are guarded by its line's mutex.
type testPD struct {
	addr    byte
	seq     wire.PDSequence
	id      wire.PDID
	caps    wire.PDCap
	events  []wire.Reply          // answered to POLLs, one each
	naks    map[byte]wire.NakCode // answered to these command codes
	silent  bool
	corrupt byte // flip the CRC of the next reply with this code (the cached copy stays good)
	cut     byte // send only the first bytes of the next reply with this code
}

// newPD returns a PD with a 2×16 display, one LED, a buzzer, two outputs
// and a 256-byte receive buffer.
func newPD(addr byte) *testPD {
	return &testPD{
		addr: addr,
		id:   wire.PDID{Vendor: [3]byte{0x5C, 0x26, 0x23}, Model: 7, Version: 1, Serial: 1000 + uint32(addr), FirmwareMajor: 2},
		caps: wire.PDCap{
			{Function: wire.CapContactStatus, Compliance: 1, Number: 2},
			{Function: wire.CapOutputControl, Compliance: 4, Number: 2},
			{Function: wire.CapLEDControl, Compliance: 4, Number: 1},
			{Function: wire.CapAudibleOutput, Compliance: 2, Number: 1},
			{Function: wire.CapTextOutput, Compliance: 2, Number: 1},
			{Function: wire.CapCheckCharacter, Compliance: 1},
			{Function: wire.CapReceiveBufferSize, Compliance: 0x00, Number: 0x01},
		},
		naks: map[byte]wire.NakCode{},
	}
}

// answer is the PD's reply to a new command.
func (pd *testPD) answer(f *wire.Frame, cmd wire.Command) wire.Reply {
	if reason, ok := pd.naks[f.Code]; ok {
		return wire.Nak{Reason: reason}
	}
	if cmd == nil {
		return wire.Nak{Reason: wire.NakUnknownCommand}
	}
	switch f.Code {
	case wire.CmdID:
		return pd.id
	case wire.CmdCap:
		return pd.caps
	case wire.CmdPoll:
		if len(pd.events) > 0 {
			r := pd.events[0]
			pd.events = pd.events[1:]
			return r
		}
	}
	return wire.Ack{}
}

// testLine is the far end of a pseudo-terminal: the PDs on the line the
// bus opens.
type testLine struct {
	master  *os.File
	path    string // slave side, for Config.Port
	done    chan struct{}
	changed chan struct{} // a command was logged

	mu      sync.Mutex
	pds     map[byte]*testPD
	log     []seen
	hostile func(f *wire.Frame, n int) []byte // bytes sent before the nth reply
	replies int
	measure struct { // for the latency benchmark
		addr    byte
		armed   bool
		t0      time.Time
		samples chan time.Duration
	}
}

// newLine opens a pseudo-terminal with pds answering on its master side,
// until the test ends.
func newLine(t testing.TB, pds ...*testPD) *testLine {
	t.Helper()
	master, path := openPTY(t)
	l := &testLine{
		master: master, path: path,
		done: make(chan struct{}), changed: make(chan struct{}, 1),
		pds: map[byte]*testPD{},
	}
	for _, pd := range pds {
		l.pds[pd.addr] = pd
	}
	go l.serve()
	t.Cleanup(func() {
		l.master.Close()
		<-l.done
	})
	return l
}

// openPTY opens a pseudo-terminal for the test and returns its master side
// and the path of its slave side, for Config.Port.
func openPTY(t testing.TB) (*os.File, string) {
	t.Helper()
	m, s, err := pty.Open()
	if err != nil {
		t.Fatalf("pty: %v", err)
	}
	// pty.Open leaves the master in blocking mode, where Close would not
	// end a Read in progress. Give the runtime's poller a non-blocking
	// duplicate instead.
	fd, err := syscall.Dup(int(m.Fd()))
	m.Close()
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.SetNonblock(fd, true); err != nil {
		t.Fatal(err)
	}
	master := os.NewFile(uintptr(fd), "ptmx")
	// The slave stays open too: the line hangs up when its last slave
	// descriptor closes, as the bus reopens it.
	t.Cleanup(func() { master.Close(); s.Close() })
	return master, s.Name()
}

func (l *testLine) serve() {
	defer close(l.done)
	dec, _ := wire.NewDecoder(wire.DecoderConfig{Accept: wire.Commands})
	buf := make([]byte, 1024)
	for {
		n, err := l.master.Read(buf)
		if err != nil {
			return
		}
		at := time.Now()
		for f, err := range dec.Feed(buf[:n]) {
			if err != nil {
				continue
			}
			out, raw := l.handle(&f, at)
			if len(out) == 0 {
				continue
			}
			t0 := time.Now()
			if _, err := l.master.Write(out); err != nil {
				return
			}
			if raw {
				l.mu.Lock()
				l.measure.t0, l.measure.armed = t0, true
				l.mu.Unlock()
			}
		}
	}
}

// handle logs command f and returns the bytes the line answers with, and
// whether they carry a card for the latency measurement.
func (l *testLine) handle(f *wire.Frame, at time.Time) ([]byte, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := seen{Addr: f.Addr, Seq: f.Seq, Code: f.Code}
	s.Msg, _ = wire.DecodeCommand(f.Code, f.Data)
	defer func() {
		l.log = append(l.log, s)
		select {
		case l.changed <- struct{}{}:
		default:
		}
	}()
	if m := &l.measure; m.armed && f.Addr == m.addr && f.Code != wire.CmdPoll {
		m.armed = false
		m.samples <- at.Sub(m.t0)
	}
	pd := l.pds[f.Addr]
	if pd == nil || pd.silent {
		return nil, false
	}
	var reply []byte
	switch pd.seq.Check(f) {
	case wire.SeqRepeat:
		reply, s.Repeat = slices.Clone(pd.seq.LastReply()), true
	case wire.SeqError:
		reply = encodeReply(f, wire.Nak{Reason: wire.NakSequence})
	case wire.SeqProcess:
		reply = encodeReply(f, pd.answer(f, s.Msg))
		pd.seq.Remember(reply)
	}
	s.Reply = replyCode(reply)
	switch {
	case pd.corrupt != 0 && pd.corrupt == s.Reply:
		pd.corrupt = 0
		reply = slices.Clone(reply)
		reply[len(reply)-1] ^= 0xFF
	case pd.cut != 0 && pd.cut == s.Reply:
		pd.cut = 0
		reply = reply[:5]
	}
	raw := s.Reply == wire.ReplyRaw && l.measure.samples != nil && f.Addr == l.measure.addr
	if l.hostile != nil {
		l.replies++
		reply = append(l.hostile(f, l.replies), reply...)
	}
	return reply, raw
}

func encodeReply(f *wire.Frame, m wire.Reply) []byte {
	b, err := wire.AppendMessage(nil, &wire.Frame{Addr: f.Addr, Seq: f.Seq, CRC: f.CRC, Mark: f.Mark}, m)
	if err != nil {
		panic(err)
	}
	return b
}

// replyCode is the code of an encoded reply with a mark byte.
func replyCode(b []byte) byte {
	if len(b) < 7 {
		return 0
	}
	return b[6]
}

// with runs fn on the PD at addr under the line's lock.
func (l *testLine) with(addr byte, fn func(pd *testPD)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fn(l.pds[addr])
}

// queue makes the PD at addr answer its next POLLs with events.
func (l *testLine) queue(addr byte, events ...wire.Reply) {
	l.with(addr, func(pd *testPD) { pd.events = append(pd.events, events...) })
}

// waitLog waits until ok holds for the commands received so far and
// returns them.
func (l *testLine) waitLog(t testing.TB, what string, ok func(log []seen) bool) []seen {
	t.Helper()
	deadline := time.After(failsafe)
	for {
		l.mu.Lock()
		log := slices.Clone(l.log)
		l.mu.Unlock()
		if ok(log) {
			return log
		}
		select {
		case <-l.changed:
		case <-deadline:
			t.Fatalf("PDs never saw %s; last commands: %s", what, tail(log, 20))
		}
	}
}

// startBus opens a bus on the line and runs it until the test ends. Events
// go to the returned channel unless cfg has a Handler.
func startBus(t testing.TB, l *testLine, cfg Config) (*Bus, <-chan Event) {
	t.Helper()
	events := make(chan Event, 4096)
	if cfg.Handler == nil {
		cfg.Handler = func(ev Event) { events <- ev }
	}
	cfg.Port = l.path
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	b, err := Open(cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(failsafe):
			t.Errorf("Run did not return")
		}
		if err := b.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return b, events
}
