package sim

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"time"

	"varco.dev/firmware-sim/pd"
	"varco.dev/protocol/osdp"
)

// ReaderConfig describes one reader on the line; see [pd.Config].
type ReaderConfig = pd.Config

// Readers returns n default readers at addresses 1 to n.
func Readers(n int) []ReaderConfig {
	rs := make([]ReaderConfig, n)
	for i := range rs {
		rs[i].Address = byte(i + 1)
	}
	return rs
}

// Config configures a Sim.
type Config struct {
	// Readers are the devices on the line. Empty means one default reader
	// at address 1. Readers are named by the address configured here,
	// even after a COMSET moves one.
	Readers []ReaderConfig
	// Link is a path at which to make a symlink to the pseudo-terminal,
	// replacing a symlink already there. Close removes it. Optional.
	Link string
	// Baud is the line's bit rate, for pacing and wire-time figures; 0
	// means 115200. It is also what a reader reports in osdp_COM.
	Baud int
	// BaudPacing delivers reply bytes at Baud (10 bit times a byte) and
	// takes a command as received only once its bytes would have crossed
	// the wire.
	BaudPacing bool
	// Now is the clock; nil means time.Now. Timers (temporary text, LED
	// patterns, output pulses) follow it; after moving an injected clock,
	// call Sim.Tick so that waiters look again.
	Now func() time.Time
	// Trace, if set, is called on the line's goroutine for every command a
	// reader takes and every reply it writes or drops. It must not block.
	Trace func(Event)
	// Logger receives a debug line per exchange and errors of the line;
	// nil discards.
	Logger *slog.Logger
}

// Event is a frame on the line, as reported to Config.Trace.
type Event struct {
	Kind EventKind
	At   time.Time // Received: when the last byte arrived; Sent: when the first byte left
	Addr int       // the reader's configured address
	Code byte      // command code (Received) or reply code
	Len  int       // bytes on the wire, mark byte included
}

// EventKind says what happened to a frame.
type EventKind uint8

// Event kinds.
const (
	Received EventKind = iota + 1 // a reader took a command off the line
	Sent                          // a reader's reply went out
	Dropped                       // a reply was held back by fault injection
)

// Errors.
var (
	// ErrNoReader: no reader is configured at the address given.
	ErrNoReader = errors.New("sim: no reader at that address")
	// ErrClosed: the Sim has been closed.
	ErrClosed = errors.New("sim: closed")
)

// interCharTimeout is the longest gap inside a frame (OSDP: 20 ms); after
// it, the bytes of an unfinished frame are dropped.
const interCharTimeout = 20 * time.Millisecond

// Sim is a line of simulated readers on a pseudo-terminal. Its methods are
// safe for concurrent use.
type Sim struct {
	cfg      Config
	master   *os.File // the simulator's end of the line
	tty      *os.File // the CP's end, kept open so that the line outlives the CP
	now      func() time.Time
	log      *slog.Logger
	byteTime time.Duration
	maxFrame int

	wmu sync.Mutex // serialises writes on the line

	mu      sync.Mutex
	readers []*reader
	seq     uint64        // number of the last change
	changed chan struct{} // closed at the next change
	hist    []State       // the state after each visible change, oldest first
	closed  bool

	stop chan struct{}
	done chan struct{}
}

// reader is a device with what happens to it between it and the wire.
type reader struct {
	addr   int // configured address: the reader's name
	dev    *pd.Device
	late   time.Duration
	faults [numFaults]int
	rand   *rand.Rand
}

// New opens a pseudo-terminal and starts answering on it.
func New(cfg Config) (*Sim, error) {
	s, err := newLine(cfg)
	if err != nil {
		return nil, err
	}
	if s.master, s.tty, err = openPTY(); err != nil {
		return nil, err
	}
	if cfg.Link != "" {
		if err := link(s.tty.Name(), cfg.Link); err != nil {
			s.master.Close()
			s.tty.Close()
			return nil, err
		}
	}
	go s.run()
	return s, nil
}

// newLine builds the readers of a Sim, without its pseudo-terminal.
func newLine(cfg Config) (*Sim, error) {
	if len(cfg.Readers) == 0 {
		cfg.Readers = Readers(1)
	}
	cfg.Baud = cmp.Or(cfg.Baud, 115200)
	if cfg.Baud < 300 {
		return nil, fmt.Errorf("sim: baud rate %d", cfg.Baud)
	}
	s := &Sim{
		cfg:      cfg,
		now:      cfg.Now,
		log:      cmp.Or(cfg.Logger, slog.New(slog.DiscardHandler)),
		byteTime: WireTime(1, cfg.Baud),
		changed:  make(chan struct{}),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	if s.now == nil {
		s.now = time.Now
	}
	seen := map[byte]bool{}
	for _, rc := range cfg.Readers {
		rc.Baud = uint32(cfg.Baud)
		dev, err := pd.New(rc)
		if err != nil {
			return nil, err
		}
		if seen[rc.Address] {
			return nil, fmt.Errorf("sim: two readers at address %d", rc.Address)
		}
		seen[rc.Address] = true
		s.readers = append(s.readers, &reader{
			addr: int(rc.Address), dev: dev, rand: rand.New(rand.NewPCG(uint64(rc.Address), 0x5eed)),
		})
		s.maxFrame = max(s.maxFrame, dev.Config().RxBuffer)
	}
	return s, nil
}

// link makes path a symlink to target, replacing a symlink (not a file).
func link(target, path string) error {
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSymlink == 0 {
			return fmt.Errorf("sim: %s exists and is not a symlink", path)
		}
		if err := os.Remove(path); err != nil {
			return fmt.Errorf("sim: %w", err)
		}
	}
	if err := os.Symlink(target, path); err != nil {
		return fmt.Errorf("sim: %w", err)
	}
	return nil
}

// Path returns the pseudo-terminal the CP opens as its serial port.
func (s *Sim) Path() string { return s.tty.Name() }

// Link returns the symlink made at Config.Link, or Path without one.
func (s *Sim) Link() string { return cmp.Or(s.cfg.Link, s.Path()) }

// Baud returns the line's bit rate.
func (s *Sim) Baud() int { return s.cfg.Baud }

// Close stops the line, closes the pseudo-terminal and removes the link.
// Waits still running return ErrClosed.
func (s *Sim) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.changed)
	s.mu.Unlock()

	close(s.stop)
	err := s.master.Close() // interrupts the line's read
	<-s.done
	err = errors.Join(err, s.tty.Close())
	if s.cfg.Link != "" {
		if rerr := os.Remove(s.cfg.Link); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			err = errors.Join(err, rerr)
		}
	}
	return err
}

// WireTime is how long n bytes take on a line at baud bits per second,
// with one start bit, eight data bits and one stop bit each.
func WireTime(n, baud int) time.Duration {
	return time.Duration(n) * 10 * time.Second / time.Duration(baud)
}

// run reads the line until Close. It is the Sim's one goroutine.
func (s *Sim) run() {
	defer close(s.done)
	dec, err := osdp.NewDecoder(osdp.DecoderConfig{Accept: osdp.Commands, MaxFrameLen: s.maxFrame})
	if err != nil {
		s.log.Error("sim: decoder", "err", err)
		return
	}
	buf := make([]byte, 1024)
	for {
		var deadline time.Time
		if dec.Buffered() > 0 {
			deadline = time.Now().Add(interCharTimeout)
		}
		if err := s.master.SetReadDeadline(deadline); err != nil {
			s.log.Error("sim: line deadline", "err", err)
			return
		}
		n, err := s.master.Read(buf)
		readAt := time.Now()
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
			s.log.Debug("sim: inter-character timeout, dropping an unfinished frame", "bytes", dec.Buffered())
			dec.Reset()
			continue
		case err != nil:
			if !s.stopping() {
				s.log.Error("sim: line read", "err", err)
			}
			return
		}
		for f, err := range dec.Feed(buf[:n]) {
			if !s.exchange(readAt, &f, err) {
				return
			}
		}
	}
}

func (s *Sim) stopping() bool {
	select {
	case <-s.stop:
		return true
	default:
		return false
	}
}

// sleep waits for d, or until Close; it reports whether the Sim still runs.
func (s *Sim) sleep(d time.Duration) bool {
	if d <= 0 {
		return !s.stopping()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.stop:
		return false
	}
}

// transmission is a reply on its way to the wire.
type transmission struct {
	r     *reader
	b     []byte
	code  byte
	delay time.Duration
	drop  bool
}

// exchange hands one frame, or a rejected one, to the readers and writes
// their answer. It reports whether the Sim still runs.
func (s *Sim) exchange(readAt time.Time, f *osdp.Frame, err error) bool {
	var fe *osdp.FrameError
	size := 0
	switch {
	case err == nil:
		size = wireLen(f)
	case errors.As(err, &fe):
		size = fe.Len
		s.log.Debug("sim: rejected frame", "err", err)
	default:
		return true
	}
	if s.cfg.BaudPacing && !s.sleep(time.Until(readAt.Add(WireTime(size, s.cfg.Baud)))) {
		return false
	}
	txs, events := s.handle(f, fe, size)
	for _, ev := range events {
		s.trace(ev)
	}
	for _, tx := range txs {
		if !s.transmit(tx) {
			return false
		}
	}
	return true
}

// handle runs the frame through every reader and returns what goes back on
// the line. On a broadcast every reader acts, but only the first one that
// has something to say is heard.
func (s *Sim) handle(f *osdp.Frame, fe *osdp.FrameError, size int) ([]transmission, []Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	var (
		txs            []transmission
		events         []Event
		taken, changed bool
	)
	for _, r := range s.readers {
		var res pd.Result
		if fe != nil {
			res = r.dev.Reject(now, fe)
		} else {
			res = r.dev.Handle(now, f)
		}
		if res.Reply == nil {
			continue
		}
		taken, changed = true, changed || res.Changed
		if fe == nil {
			events = append(events, Event{Kind: Received, At: now, Addr: r.addr, Code: f.Code, Len: size})
			s.log.Debug("sim: exchange", "reader", r.addr, "command", f.String(), "reply", osdp.CodeName(res.Code, true))
		}
		if len(txs) > 0 {
			continue // a broadcast: this answer collides with the first, drop it
		}
		tx := transmission{r: r, b: append([]byte(nil), res.Reply...), code: res.Code, delay: r.late}
		tx.drop = r.applyFault(tx.b)
		txs = append(txs, tx)
	}
	if taken {
		s.changeLocked(changed)
	}
	return txs, events
}

// transmit writes one reply, late or paced as configured.
func (s *Sim) transmit(tx transmission) bool {
	if !s.sleep(tx.delay) {
		return false
	}
	if tx.drop {
		s.trace(Event{Kind: Dropped, At: s.now(), Addr: tx.r.addr, Code: tx.code, Len: len(tx.b)})
		return true
	}
	ev := Event{Kind: Sent, Addr: tx.r.addr, Code: tx.code, Len: len(tx.b)}
	ok, err := s.write(tx.b, func() { ev.At = s.now() })
	if err != nil {
		s.log.Error("sim: line write", "err", err)
	}
	s.trace(ev)
	return ok
}

// write puts b on the line, at the baud rate with pacing. started is called
// just before the first byte goes out.
func (s *Sim) write(b []byte, started func()) (bool, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if started != nil {
		started()
	}
	if !s.cfg.BaudPacing {
		_, err := s.master.Write(b)
		return !s.stopping(), err
	}
	start := time.Now()
	for i := 0; i < len(b); {
		// Byte i has crossed the wire (10 bit times) at start+(i+1)·byteTime.
		if !s.sleep(time.Until(start.Add(time.Duration(i+1) * s.byteTime))) {
			return false, nil
		}
		n := min(max(int(time.Since(start)/s.byteTime), i+1), len(b))
		if _, err := s.master.Write(b[i:n]); err != nil {
			return !s.stopping(), err
		}
		i = n
	}
	return true, nil
}

func (s *Sim) trace(ev Event) {
	if s.cfg.Trace != nil {
		s.cfg.Trace(ev)
	}
}

// wireLen is the length of f on the wire, mark byte included.
func wireLen(f *osdp.Frame) int {
	n := 5 + 1 + len(f.Data) + 1
	if f.CRC {
		n++
	}
	if f.Mark {
		n++
	}
	if f.SCB != nil {
		n += 2 + len(f.SCB.Data)
		if f.SCB.Type.HasMAC() {
			n += 4
		}
	}
	return n
}

// Noise writes b on the line as it is: garbage between frames, or a frame
// of another device.
func (s *Sim) Noise(b []byte) error {
	if s.stopping() {
		return ErrClosed
	}
	_, err := s.write(b, nil)
	return err
}

// Paced reports whether the line paces bytes at its baud rate.
func (s *Sim) Paced() bool { return s.cfg.BaudPacing }
