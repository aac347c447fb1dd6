package osdp

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jonboulle/clockwork"
	"go.bug.st/serial"

	wire "varco.dev/protocol/osdp"
	"varco.dev/protocol/wiegand"
)

// Defaults of Config.
const (
	DefaultBaud           = 9600 // the factory setting of OSDP readers
	DefaultReplyTimeout   = 200 * time.Millisecond
	DefaultRetries        = 3
	DefaultOfflineProbe   = time.Second
	DefaultDecisionWindow = 5 * time.Millisecond
	DefaultKeypadTimeout  = 10 * time.Second
	DefaultEventQueue     = 256
)

// pollExchange is a POLL and its ACK on the wire: 9 bytes each with the
// mark byte and a CRC.
const pollExchange = 2 * 9

// WireTime is how long n bytes take on a line at baud: 10 bits a byte (8N1).
func WireTime(n, baud int) time.Duration {
	return time.Duration(n) * 10 * time.Second / time.Duration(baud)
}

// DefaultPollInterval is Config.PollInterval when unset: twice the wire time
// of a POLL and its ACK at baud (3.1 ms at 115200). See the package
// documentation for why.
func DefaultPollInterval(baud int) time.Duration { return 2 * WireTime(pollExchange, baud) }

// Config configures a Bus. Zero values take the defaults.
type Config struct {
	Port    string // serial device, such as /dev/ttyUSB0; required by Open
	Baud    int    // 9600, 19200, 38400, 57600, 115200 or 230400; DefaultBaud
	Readers []byte // OSDP addresses 0x00–0x7E on this line, at least one

	// Handler receives the events, one at a time, on a goroutine of the
	// bus. It may call Answer. Nil discards the events.
	Handler func(Event)

	// PollInterval is the shortest time between two POLLs of a reader;
	// DefaultPollInterval(Baud).
	PollInterval time.Duration
	// ReplyTimeout is how long a reader has to start answering, counted
	// from the end of the command on the wire; DefaultReplyTimeout.
	ReplyTimeout time.Duration
	// Retries is how often a failed command is sent again before the reader
	// is offline; DefaultRetries when zero, none when negative.
	Retries int
	// OfflineProbe is how often an offline reader is probed;
	// DefaultOfflineProbe.
	OfflineProbe time.Duration
	// DecisionWindow is how long the line waits after a card read for the
	// daemon's answer to that reader before other readers take their
	// turns; DefaultDecisionWindow.
	DecisionWindow time.Duration
	// KeypadTimeout clears PIN digits when no key follows for this long;
	// DefaultKeypadTimeout.
	KeypadTimeout time.Duration
	// EventQueue is how many events wait for the Handler before new ones
	// are dropped; DefaultEventQueue.
	EventQueue int

	// Formats are hints for decoding card bits (wiegand.KeyFromFrame),
	// such as wiegand.H10302 for a site with 37-bit cards without facility
	// code. They must be the same on every reader of a site.
	Formats []wiegand.Format
	// IdleText is the text every reader with a display shows between
	// answers, one line per row; SetIdleText overrides it per reader.
	IdleText []string

	Clock  clockwork.Clock // the real clock when nil
	Logger *slog.Logger    // slog.Default() when nil
}

// Errors returned by the Bus. ErrNoReply and ErrBadReply are also the
// reasons given in ReaderOffline.
var (
	ErrUnknownReader = errors.New("osdp bus: no reader at this address")
	ErrOffline       = errors.New("osdp bus: reader offline")
	ErrClosed        = errors.New("osdp bus: closed")
	ErrNoReply       = errors.New("osdp bus: no reply")
	ErrBadReply      = errors.New("osdp bus: corrupt reply")
)

// Stats are the bus's counters since it was opened.
type Stats struct {
	Commands      uint64 // frames sent, retries included
	Polls         uint64 // POLL commands among them
	Retries       uint64 // frames sent again after a timeout, corrupt reply, NAK 1 or NAK 4
	Timeouts      uint64 // attempts that got no reply in time
	Replies       uint64 // replies matched to their command
	Naks          uint64 // NAK replies
	Garbage       uint64 // bytes dropped: noise, truncated and rejected frames
	BadFrames     uint64 // frames rejected: bad check characters, length, control byte
	Echoes        uint64 // command frames heard on the line (an adapter echoing our own)
	WrongAddr     uint64 // replies from another address than the one polled
	WrongSeq      uint64 // replies with another sequence number, or when none was due
	Secure        uint64 // replies with a security block, which the bus does not speak
	DroppedEvents uint64 // events dropped because the Handler was behind
}

// counters are the Stats, written by the loop and read by anyone.
type counters struct {
	commands, polls, retries, timeouts, replies, naks       atomic.Uint64
	garbage, badFrames, echoes, wrongAddr, wrongSeq, secure atomic.Uint64
	droppedEvents                                           atomic.Uint64
}

// port is what the bus needs of a serial port.
type port interface {
	io.ReadWriteCloser
}

const (
	rxSize    = 256 // bytes per read
	rxBuffers = 4   // reads in flight between the reading goroutine and the loop
	logEvery  = 5 * time.Second

	// decisionYields bounds how often the loop yields to the handler
	// before it parks to wait for an answer: a few microseconds.
	decisionYields = 32
)

// chunk is one read from the port.
type chunk struct {
	buf *[rxSize]byte
	n   int
	err error
}

// outcome is how an exchange ended.
type outcome uint8

const (
	pending outcome = iota // no reply yet: a timeout if it stays so
	replied                // the reply from the right address with the right sequence
	corrupt                // a frame from the polled reader was rejected
)

// awaiting is the reply the loop waits for.
type awaiting struct {
	r       *reader // nil: no reply is due
	seq     uint8
	outcome outcome
	code    byte
	reply   wire.Reply
	err     error // the reply did not decode, or why the frame was rejected
}

// Bus is the OSDP control panel of one serial line. Open it, Run it, and
// Close it. Answer, SetIdleText, Readers and Stats may be called from any
// goroutine at any time.
type Bus struct {
	cfg     Config
	retries int
	port    port
	clk     clockwork.Clock
	log     *slog.Logger
	readers []*reader
	byAddr  [wire.BroadcastAddr]*reader

	mu     sync.Mutex    // guards the fields of each reader marked so
	wake   chan struct{} // Answer tells the loop it has work
	events chan Event
	stats  counters

	stop     chan struct{}
	stopOnce sync.Once
	life     sync.Mutex
	started  bool
	exited   chan struct{}
	portOnce sync.Once
	portErr  error

	// Owned by the loop.
	ctx       context.Context
	dec       *wire.Decoder
	rx        chan chunk
	free      chan *[rxSize]byte
	timer     clockwork.Timer
	cursor    int
	await     awaiting
	discarded uint64 // the decoder's Discarded when last looked at
	lim       limiter
	noiseAt   time.Time
	noise     LineNoise // counters at the last LineNoise event
}

// Open opens cfg.Port and returns a bus ready to Run.
func Open(cfg Config) (*Bus, error) {
	if cfg.Port == "" {
		return nil, errors.New("osdp bus: no port")
	}
	b, err := newBus(nil, cfg)
	if err != nil {
		return nil, err
	}
	p, err := serial.Open(cfg.Port, &serial.Mode{
		BaudRate: b.cfg.Baud, DataBits: 8, Parity: serial.NoParity, StopBits: serial.OneStopBit,
	})
	if err != nil {
		return nil, fmt.Errorf("osdp bus: open %s: %w", cfg.Port, err)
	}
	b.port = p
	return b, nil
}

// newBus checks cfg, fills in its defaults and builds a bus on p.
func newBus(p port, cfg Config) (*Bus, error) {
	cfg.Baud = cmp.Or(cfg.Baud, DefaultBaud)
	switch cfg.Baud {
	case 9600, 19200, 38400, 57600, 115200, 230400:
	default:
		return nil, fmt.Errorf("osdp bus: baud %d: want 9600, 19200, 38400, 57600, 115200 or 230400", cfg.Baud)
	}
	if len(cfg.Readers) == 0 {
		return nil, errors.New("osdp bus: no readers")
	}
	for _, d := range []time.Duration{cfg.PollInterval, cfg.ReplyTimeout, cfg.OfflineProbe, cfg.DecisionWindow, cfg.KeypadTimeout} {
		if d < 0 {
			return nil, fmt.Errorf("osdp bus: negative duration %v", d)
		}
	}
	if cfg.EventQueue < 0 {
		return nil, fmt.Errorf("osdp bus: negative event queue %d", cfg.EventQueue)
	}
	cfg.PollInterval = cmp.Or(cfg.PollInterval, DefaultPollInterval(cfg.Baud))
	cfg.ReplyTimeout = cmp.Or(cfg.ReplyTimeout, DefaultReplyTimeout)
	cfg.OfflineProbe = cmp.Or(cfg.OfflineProbe, DefaultOfflineProbe)
	cfg.DecisionWindow = cmp.Or(cfg.DecisionWindow, DefaultDecisionWindow)
	cfg.KeypadTimeout = cmp.Or(cfg.KeypadTimeout, DefaultKeypadTimeout)
	cfg.EventQueue = cmp.Or(cfg.EventQueue, DefaultEventQueue)
	if cfg.Clock == nil {
		cfg.Clock = clockwork.NewRealClock()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	dec, err := wire.NewDecoder(wire.DecoderConfig{Accept: wire.Replies})
	if err != nil {
		return nil, err
	}
	b := &Bus{
		cfg:     cfg,
		retries: max(cmp.Or(cfg.Retries, DefaultRetries), 0),
		port:    p,
		clk:     cfg.Clock,
		log:     cfg.Logger.With(slog.String("port", cfg.Port)),
		wake:    make(chan struct{}, 1),
		events:  make(chan Event, cfg.EventQueue),
		stop:    make(chan struct{}),
		exited:  make(chan struct{}),
		ctx:     context.Background(),
		dec:     dec,
		lim:     limiter{every: logEvery},
	}
	for _, a := range cfg.Readers {
		if a >= wire.BroadcastAddr {
			return nil, fmt.Errorf("osdp bus: reader address 0x%02X: want 0x00–0x7E", a)
		}
		if b.byAddr[a] != nil {
			return nil, fmt.Errorf("osdp bus: reader address 0x%02X twice", a)
		}
		r := &reader{addr: a, idle: cfg.IdleText}
		b.readers = append(b.readers, r)
		b.byAddr[a] = r
	}
	return b, nil
}

// Run owns the line until ctx is done or Close is called, and returns nil
// then. It returns an error if the port fails (a USB adapter unplugged):
// the bus is closed and the caller opens a new one. Run closes the port
// when it returns, after the Handler has seen the last event. It can be
// called once.
func (b *Bus) Run(ctx context.Context) error {
	b.life.Lock()
	if b.started {
		b.life.Unlock()
		return ErrClosed
	}
	b.started = true
	b.life.Unlock()
	defer close(b.exited)

	b.ctx = ctx
	b.rx = make(chan chunk, rxBuffers)
	b.free = make(chan *[rxSize]byte, rxBuffers)
	for range rxBuffers {
		b.free <- new([rxSize]byte)
	}
	b.timer = b.clk.NewTimer(time.Hour)
	b.timer.Stop() // armed by wait only, so a fake clock counts only real waits
	defer b.timer.Stop()
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { b.readPort(done) })
	if b.cfg.Handler != nil {
		wg.Go(func() {
			for ev := range b.events {
				b.cfg.Handler(ev)
			}
		})
	}
	b.log.LogAttrs(ctx, slog.LevelInfo, "osdp bus: running",
		slog.Int("baud", b.cfg.Baud), slog.Int("readers", len(b.readers)),
		slog.Duration("poll_interval", b.cfg.PollInterval))

	err := b.loop(ctx)
	close(done)
	b.closePort() // ends the read in readPort
	close(b.events)
	wg.Wait()
	if errors.Is(err, errStopped) {
		return nil
	}
	return err
}

// Close stops Run, waits for it to return and closes the port. It must not
// be called from the Handler, which Run waits for.
func (b *Bus) Close() error {
	b.stopOnce.Do(func() { close(b.stop) })
	b.life.Lock()
	started := b.started
	b.started = true // no Run after Close
	b.life.Unlock()
	if started {
		<-b.exited
	}
	return b.closePort()
}

func (b *Bus) closePort() error {
	b.portOnce.Do(func() {
		if b.port != nil {
			b.portErr = b.port.Close()
		}
	})
	return b.portErr
}

// readPort copies what the port receives into free buffers for the loop.
func (b *Bus) readPort(done <-chan struct{}) {
	for {
		var buf *[rxSize]byte
		select {
		case buf = <-b.free:
		case <-done:
			return
		}
		n, err := b.port.Read(buf[:])
		if n == 0 && err == nil {
			b.free <- buf
			continue
		}
		select {
		case b.rx <- chunk{buf, n, err}:
		case <-done:
			return
		}
		if err != nil {
			return
		}
		// Let the loop run on this thread now, rather than wait for
		// another one to wake up and take it while this one reads.
		runtime.Gosched()
	}
}

var errStopped = errors.New("osdp bus: stopped")

// loop gives the line to one reader after the other.
func (b *Bus) loop(ctx context.Context) error {
	for {
		now := b.clk.Now()
		b.reportNoise(now)
		r, next := b.pick(now)
		if r == nil {
			if err := b.wait(ctx, next.Sub(now), b.hasWork); err != nil {
				return err
			}
			continue
		}
		if err := b.turn(ctx, r); err != nil {
			return err
		}
		if r.expect {
			// A credential was read: hold the line for the answer. The
			// handler is most likely ready to run on this thread and
			// answers in microseconds, so yield to it a few times before
			// parking, which would make another thread wake up for it.
			r.expect = false
			for i := 0; i < decisionYields && !b.answered(r); i++ {
				runtime.Gosched()
			}
			if err := b.wait(ctx, b.cfg.DecisionWindow, func() bool { return b.answered(r) }); err != nil {
				return err
			}
		}
	}
}

// pick returns the reader whose turn it is, or nil and when one is due.
// A reader with a fresh answer goes first, out of turn; the others take
// turns in order.
func (b *Bus) pick(now time.Time) (*reader, time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := len(b.readers)
	for i := range n {
		if r := b.readers[(b.cursor+i)%n]; r.urgent && r.cur.msg == nil {
			return r, now
		}
	}
	var next time.Time
	for i := range n {
		r := b.readers[(b.cursor+i)%n]
		at := r.dueAt(now)
		if !at.After(now) {
			b.cursor = (b.cursor + i + 1) % n
			return r, now
		}
		if next.IsZero() || at.Before(next) {
			next = at
		}
	}
	return nil, next
}

// hasWork reports whether an answer waits to be sent.
func (b *Bus) hasWork() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, r := range b.readers {
		if r.urgent || len(r.queue) > 0 {
			return true
		}
	}
	return false
}

// turn sends r one command and waits for its reply.
func (b *Bus) turn(ctx context.Context, r *reader) error {
	now := b.clk.Now()
	if r.cur.msg == nil {
		b.prepare(r, now)
	} else {
		b.stats.retries.Add(1)
	}
	r.cur.sends++
	if err := b.write(r.tx); err != nil {
		return err
	}
	b.stats.commands.Add(1)
	b.await = awaiting{r: r, seq: r.cur.seq}
	timeout := b.cfg.ReplyTimeout + WireTime(len(r.tx), b.cfg.Baud)
	if err := b.wait(ctx, timeout, func() bool { return b.await.outcome != pending }); err != nil {
		return err
	}
	a := b.await
	b.await = awaiting{}
	now = b.clk.Now()
	switch a.outcome {
	case pending:
		b.stats.timeouts.Add(1)
		b.dec.Reset() // what is buffered is the rest of a broken frame
		b.failed(r, ErrNoReply, now)
	case corrupt:
		b.failed(r, fmt.Errorf("%w: %w", ErrBadReply, a.err), now)
	case replied:
		b.stats.replies.Add(1)
		b.replied(r, a.code, a.reply, a.err, now)
	}
	return nil
}

func (b *Bus) write(p []byte) error {
	for len(p) > 0 {
		n, err := b.port.Write(p)
		if err != nil {
			return fmt.Errorf("osdp bus: write %s: %w", b.cfg.Port, err)
		}
		p = p[n:]
	}
	return nil
}

// wait waits up to d for cond, handling what the line receives meanwhile.
// It returns when cond holds or d has passed, or errStopped, or the port's
// error.
func (b *Bus) wait(ctx context.Context, d time.Duration, cond func() bool) error {
	if cond() {
		return nil
	}
	if !b.timer.Stop() {
		select { // a fake clock's timer may hold a stale tick
		case <-b.timer.Chan():
		default:
		}
	}
	b.timer.Reset(max(d, 0))
	for {
		select {
		case c := <-b.rx:
			if c.n > 0 {
				b.receive(c.buf[:c.n], b.clk.Now())
			}
			b.free <- c.buf
			if c.err != nil {
				return fmt.Errorf("osdp bus: read %s: %w", b.cfg.Port, c.err)
			}
		case <-b.wake:
		case <-b.timer.Chan():
			return nil
		case <-ctx.Done():
			return errStopped
		case <-b.stop:
			return errStopped
		}
		if cond() {
			b.timer.Stop() // so that a fake clock counts only real waits
			return nil
		}
	}
}

// receive feeds bytes from the line to the decoder and matches the frames
// to the reply the loop waits for. It never blocks.
func (b *Bus) receive(p []byte, now time.Time) {
	for f, err := range b.dec.Feed(p) {
		if err != nil {
			b.rejected(err, now)
			continue
		}
		b.frame(&f, now)
	}
	if d := b.dec.Stats().Discarded; d != b.discarded {
		b.stats.garbage.Add(d - b.discarded)
		if ok, held := b.lim.allow(logGarbage, now); ok {
			b.log.LogAttrs(b.ctx, slog.LevelWarn, "osdp bus: garbage on the line",
				slog.Uint64("bytes", d-b.discarded), slog.Int("held_back", held))
		}
		b.discarded = d
	}
}

// rejected handles a frame the decoder refused.
func (b *Bus) rejected(err error, now time.Time) {
	var fe *wire.FrameError
	if !errors.As(err, &fe) {
		return
	}
	if errors.Is(fe.Err, wire.ErrDirection) {
		b.stats.echoes.Add(1)
		return
	}
	b.stats.badFrames.Add(1)
	if a := &b.await; a.r != nil && a.outcome == pending && fe.Addr == a.r.addr|0x80 && errors.Is(fe.Err, wire.ErrBadCheck) {
		a.outcome, a.err = corrupt, err
	}
	if ok, held := b.lim.allow(logBadFrame, now); ok {
		b.log.LogAttrs(b.ctx, slog.LevelWarn, "osdp bus: frame rejected",
			slog.String("err", err.Error()), slog.Int("held_back", held))
	}
}

// frame handles a frame with good check characters.
func (b *Bus) frame(f *wire.Frame, now time.Time) {
	a := &b.await
	switch {
	case f.SCB != nil:
		b.stats.secure.Add(1)
		if ok, held := b.lim.allow(logSecure, now); ok {
			b.log.LogAttrs(b.ctx, slog.LevelWarn, "osdp bus: secure channel reply ignored",
				slog.Int("addr", int(f.Addr)), slog.Int("held_back", held))
		}
		if a.r != nil && a.outcome == pending && f.Addr == a.r.addr {
			a.outcome, a.err = corrupt, errors.New("secure channel not supported")
		}
	case a.r != nil && f.Addr != a.r.addr:
		b.stats.wrongAddr.Add(1)
		if ok, held := b.lim.allow(logWrongAddr, now); ok {
			b.log.LogAttrs(b.ctx, slog.LevelWarn, "osdp bus: reply from another address than the one polled",
				slog.Int("polled", int(a.r.addr)), slog.Int("addr", int(f.Addr)), slog.Int("held_back", held))
		}
	case a.r == nil || a.outcome == replied || f.Seq != a.seq:
		b.stats.wrongSeq.Add(1)
		if ok, held := b.lim.allow(logWrongSeq, now); ok {
			b.log.LogAttrs(b.ctx, slog.LevelWarn, "osdp bus: reply out of sequence",
				slog.String("frame", f.String()), slog.Int("held_back", held))
		}
	default: // the reply, even after a corrupt copy in the same read
		a.outcome, a.code = replied, f.Code
		a.reply, a.err = wire.DecodeReply(f.Code, f.Data)
	}
}

// emit queues ev for the Handler and reports whether it was queued.
func (b *Bus) emit(ev Event, now time.Time) bool {
	if b.cfg.Handler == nil {
		return false
	}
	select {
	case b.events <- ev:
		return true
	default:
	}
	b.stats.droppedEvents.Add(1)
	if ok, held := b.lim.allow(logDropped, now); ok {
		b.log.LogAttrs(b.ctx, slog.LevelError, "osdp bus: event handler behind, event dropped",
			slog.String("event", fmt.Sprintf("%T", ev)), slog.Int("held_back", held))
	}
	return false
}

// reportNoise emits LineNoise at most once a second when the line had any.
func (b *Bus) reportNoise(now time.Time) {
	if now.Sub(b.noiseAt) < time.Second {
		return
	}
	n := LineNoise{
		Garbage:   b.stats.garbage.Load(),
		BadFrames: b.stats.badFrames.Load(),
		WrongAddr: b.stats.wrongAddr.Load(),
		WrongSeq:  b.stats.wrongSeq.Load(),
	}
	if n == b.noise {
		return
	}
	b.noiseAt = now
	b.emit(LineNoise{
		Garbage:   n.Garbage - b.noise.Garbage,
		BadFrames: n.BadFrames - b.noise.BadFrames,
		WrongAddr: n.WrongAddr - b.noise.WrongAddr,
		WrongSeq:  n.WrongSeq - b.noise.WrongSeq,
		At:        now,
	}, now)
	b.noise = n
}

// Stats returns the bus's counters.
func (b *Bus) Stats() Stats {
	s := &b.stats
	return Stats{
		Commands: s.commands.Load(), Polls: s.polls.Load(), Retries: s.retries.Load(),
		Timeouts: s.timeouts.Load(), Replies: s.replies.Load(), Naks: s.naks.Load(),
		Garbage: s.garbage.Load(), BadFrames: s.badFrames.Load(), Echoes: s.echoes.Load(),
		WrongAddr: s.wrongAddr.Load(), WrongSeq: s.wrongSeq.Load(), Secure: s.secure.Load(),
		DroppedEvents: s.droppedEvents.Load(),
	}
}

// ReaderStatus is what Readers reports about one reader.
type ReaderStatus struct {
	Addr   byte
	Online bool
	Caps   Capabilities // as of its last discovery
}

// Readers reports the readers of the bus, in the order of Config.Readers.
func (b *Bus) Readers() []ReaderStatus {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := make([]ReaderStatus, len(b.readers))
	for i, r := range b.readers {
		s[i] = ReaderStatus{Addr: r.addr, Online: r.online, Caps: r.info}
	}
	return s
}

// signal tells the loop that an answer is queued.
func (b *Bus) signal() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// Kinds of log lines, each rate-limited on its own.
type logKind uint8

const (
	logGarbage logKind = iota
	logBadFrame
	logWrongAddr
	logWrongSeq
	logSecure
	logDropped
	logNak
	logBadCard
	logBadReply
	logKinds
)

// limiter lets one log line of each kind through per period and counts the
// ones it held back, so that a noisy line cannot flood the log.
type limiter struct {
	every time.Duration
	next  [logKinds]time.Time
	held  [logKinds]int
}

// allow reports whether a line of kind k may be logged now and how many
// were held back since the last one.
func (l *limiter) allow(k logKind, now time.Time) (bool, int) {
	if now.Before(l.next[k]) {
		l.held[k]++
		return false, 0
	}
	held := l.held[k]
	l.held[k], l.next[k] = 0, now.Add(l.every)
	return true, held
}
