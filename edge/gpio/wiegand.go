package gpio

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"periph.io/x/conn/v3/gpio"
	"varco.dev/protocol/wiegand"
)

// Defaults of DecoderConfig; the package documentation explains them.
const (
	DefaultIdleTimeout = 25 * time.Millisecond
	DefaultMinGap      = 100 * time.Microsecond
	DefaultPINTimeout  = 10 * time.Second
)

// Why the Decoder dropped a frame or a PIN (Read.Err). Each is counted in
// DecoderStats.
var (
	ErrGlitch     = errors.New("gpio: wiegand pulses closer than the minimum gap")
	ErrOverflow   = errors.New("gpio: wiegand frame longer than 128 bits")
	ErrShort      = errors.New("gpio: wiegand frame shorter than 4 bits")
	ErrKeyCode    = errors.New("gpio: keypad code is no key")
	ErrPINTimeout = errors.New("gpio: PIN entry timed out")
	ErrPINLength  = errors.New("gpio: PIN longer than 16 digits")
)

// Keypad codes (4-bit burst, or the low half of an 8-bit one).
const (
	keyClear = 0xA // '*'
	keyEnter = 0xB // '#'
	minBits  = 4   // shorter frames are noise
)

// DecoderConfig holds the Wiegand timing rules. A zero field takes its
// default.
type DecoderConfig struct {
	// IdleTimeout ends a frame: no pulse for this long. Default 25 ms.
	IdleTimeout time.Duration
	// MinGap is the shortest time between two pulses of a frame; closer ones
	// drop the frame with ErrGlitch. Default 100 µs; must be below
	// IdleTimeout.
	MinGap time.Duration
	// PINTimeout drops a PIN in progress when no key comes for this long.
	// Default 10 s.
	PINTimeout time.Duration
}

func (c DecoderConfig) withDefaults() (DecoderConfig, error) {
	if c.IdleTimeout < 0 || c.MinGap < 0 || c.PINTimeout < 0 {
		return c, errors.New("gpio: negative wiegand timing")
	}
	c.IdleTimeout = cmp.Or(c.IdleTimeout, DefaultIdleTimeout)
	c.MinGap = cmp.Or(c.MinGap, DefaultMinGap)
	c.PINTimeout = cmp.Or(c.PINTimeout, DefaultPINTimeout)
	if c.MinGap >= c.IdleTimeout {
		return c, fmt.Errorf("gpio: wiegand MinGap %v must be below IdleTimeout %v", c.MinGap, c.IdleTimeout)
	}
	if c.PINTimeout < c.IdleTimeout {
		return c, fmt.Errorf("gpio: wiegand PINTimeout %v must not be below IdleTimeout %v", c.PINTimeout, c.IdleTimeout)
	}
	return c, nil
}

// Read is one result of the Decoder: a card frame, a PIN, or the reason a
// frame or PIN was dropped. Err is set for a drop; otherwise PIN is set for a
// PIN and Frame holds a card frame. Read.Key tells them apart.
type Read struct {
	// Frame holds the bits of a card frame. With an Err it holds the (first
	// 128) bits of the dropped frame, for the log.
	Frame wiegand.Frame
	// PIN is the key of a PIN submitted with '#'.
	PIN wiegand.Key
	// Err is one of ErrGlitch, ErrOverflow, ErrShort, ErrKeyCode,
	// ErrPINTimeout and ErrPINLength.
	Err error
	// Bits is the number of pulses in the frame, past 128 included (the
	// length of the last key's burst for PIN results).
	Bits int
	// At is the time of the frame's last pulse (for ErrPINTimeout, of the
	// PIN's last key): a frame is complete IdleTimeout later.
	At time.Time
}

// Key returns the credential of a read: the PIN, or the frame's key by
// wiegand.KeyFromFrame with the given hints (parity errors included), or Err.
func (r Read) Key(hints ...wiegand.Format) (wiegand.Key, error) {
	switch {
	case r.Err != nil:
		return wiegand.Key{}, r.Err
	case !r.PIN.IsZero():
		return r.PIN, nil
	}
	return wiegand.KeyFromFrame(r.Frame, hints...)
}

// DecoderStats counts what a Decoder saw since it was made.
type DecoderStats struct {
	Pulses uint64 // edges fed
	Frames uint64 // card frames delivered
	Keys   uint64 // keypad bursts
	PINs   uint64 // PINs delivered

	Glitches    uint64 // ErrGlitch
	Overflows   uint64 // ErrOverflow
	Short       uint64 // ErrShort
	BadKeys     uint64 // ErrKeyCode
	PINTimeouts uint64 // ErrPINTimeout
	LongPINs    uint64 // ErrPINLength
}

// Decoder turns timestamped Wiegand pulses into frames and PINs. It is a pure
// state machine of fixed size: it never allocates, blocks or reads the clock.
// It is not safe for concurrent use.
//
// Feed it every falling edge with Edge, in order, and call Tick when nothing
// happened until Deadline. Times must not go backwards; a pulse stamped before
// the previous one counts as a glitch.
type Decoder struct {
	cfg DecoderConfig

	// The frame in progress.
	active bool
	frame  wiegand.Frame
	bits   int
	last   time.Time // latest pulse
	fault  error     // first ErrGlitch or ErrOverflow of the frame

	// The PIN in progress.
	pin     [wiegand.MaxPINDigits]byte
	pinLen  int
	lastKey time.Time

	out   [2]Read // a call ends at most one frame and one PIN
	nOut  int
	stats DecoderStats
}

// NewDecoder returns a Decoder with the rules of cfg, or an error naming the
// field that is out of range.
func NewDecoder(cfg DecoderConfig) (*Decoder, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Decoder{cfg: cfg}, nil
}

// Edge feeds one pulse: one is true for a pulse on D1, false for D0, and t is
// when it was seen. It returns what ended before t: a frame the line has been
// idle after for IdleTimeout (when Tick was not called in time) and an expired
// PIN. The slice is valid until the next call.
func (d *Decoder) Edge(one bool, t time.Time) []Read {
	d.nOut = 0
	var gap time.Duration
	if d.active {
		if gap = t.Sub(d.last); gap >= d.cfg.IdleTimeout {
			d.active = false
			d.finish()
		}
	}
	d.expirePIN(t)
	d.stats.Pulses++
	switch {
	case !d.active:
		d.active, d.frame, d.bits, d.fault, d.last = true, wiegand.Frame{}, 0, nil, t
	case gap < d.cfg.MinGap: // negative gaps too
		d.fault = cmp.Or(d.fault, ErrGlitch)
	}
	if gap > 0 {
		d.last = t
	}
	d.bits++
	if d.frame.AppendBit(one) != nil {
		d.fault = cmp.Or(d.fault, ErrOverflow)
	}
	return d.out[:d.nOut]
}

// Tick reports what has ended by now: a frame idle for IdleTimeout, a PIN
// without a key for PINTimeout. The slice is valid until the next call.
func (d *Decoder) Tick(now time.Time) []Read {
	d.nOut = 0
	d.expire(now)
	return d.out[:d.nOut]
}

// Deadline is when Tick next has something to do; ok is false when nothing
// is in progress.
func (d *Decoder) Deadline() (t time.Time, ok bool) {
	if d.active {
		t, ok = d.last.Add(d.cfg.IdleTimeout), true
	}
	if d.pinLen > 0 {
		if p := d.lastKey.Add(d.cfg.PINTimeout); !ok || p.Before(t) {
			t, ok = p, true
		}
	}
	return t, ok
}

// Stats returns the counters.
func (d *Decoder) Stats() DecoderStats { return d.stats }

func (d *Decoder) emit(r Read) {
	d.out[d.nOut] = r
	d.nOut++
}

// expire ends the frame if the line has been idle for IdleTimeout at now,
// then drops the PIN if no key came for PINTimeout. A key frame ended here
// renews the PIN, so the order matters.
func (d *Decoder) expire(now time.Time) {
	if d.active && now.Sub(d.last) >= d.cfg.IdleTimeout {
		d.active = false
		d.finish()
	}
	d.expirePIN(now)
}

func (d *Decoder) expirePIN(now time.Time) {
	if d.pinLen > 0 && now.Sub(d.lastKey) >= d.cfg.PINTimeout {
		d.pinLen = 0
		d.stats.PINTimeouts++
		d.emit(Read{Err: ErrPINTimeout, At: d.lastKey})
	}
}

func (d *Decoder) finish() {
	r := Read{Frame: d.frame, Bits: d.bits, At: d.last}
	switch {
	case d.fault == ErrGlitch:
		d.stats.Glitches++
		r.Err = d.fault
	case d.fault == ErrOverflow:
		d.stats.Overflows++
		r.Err = d.fault
	case d.bits < minBits:
		d.stats.Short++
		r.Err = ErrShort
	case d.bits == 4 || d.bits == 8:
		d.key(r)
		return
	default:
		d.stats.Frames++
	}
	d.emit(r)
}

// key applies one keypad burst to the PIN in progress.
func (d *Decoder) key(r Read) {
	d.stats.Keys++
	code, ok := keyCode(r.Frame)
	switch {
	case !ok:
		d.pinLen = 0
		d.stats.BadKeys++
		r.Err = ErrKeyCode
	case code == keyClear:
		d.pinLen = 0
		return
	case code == keyEnter:
		if d.pinLen == 0 {
			return
		}
		r.PIN, _ = wiegand.PINKey(string(d.pin[:d.pinLen])) // digits only: cannot fail
		r.Frame = wiegand.Frame{}
		d.pinLen = 0
		d.stats.PINs++
	case d.pinLen == len(d.pin):
		d.pinLen = 0
		d.stats.LongPINs++
		r.Err = ErrPINLength
	default:
		d.pin[d.pinLen] = '0' + code
		d.pinLen++
		d.lastKey = r.At
		return
	}
	d.emit(r)
}

// keyCode reads a 4-bit burst, or an 8-bit one whose first half is the
// complement of its second; ok is false for codes that are no key.
func keyCode(f wiegand.Frame) (code byte, ok bool) {
	var v byte
	for i := range f.Len() {
		v <<= 1
		if f.Bit(i) {
			v |= 1
		}
	}
	if f.Len() == 8 {
		if v>>4 != ^v&0xF {
			return 0, false
		}
		v &= 0xF
	}
	return v, v <= keyEnter
}

// WiegandConfig configures a Wiegand reader on two GPIO inputs.
type WiegandConfig struct {
	DecoderConfig
	// Name identifies the reader in logs.
	Name string
	// Poll is the longest single wait for an edge (default DefaultPoll).
	Poll time.Duration
	// Clock stamps the edges (default SystemClock).
	Clock Clock
	// Logger receives a warning for each dropped frame or PIN (default
	// slog.Default()).
	Logger *slog.Logger
}

// Wiegand decodes a Wiegand reader wired to two GPIO inputs. Make it with
// NewWiegand and start it with Run.
type Wiegand struct {
	d0, d1 gpio.PinIn
	cfg    WiegandConfig
	onRead func(Read)

	mu        sync.Mutex // guards dec
	dec       *Decoder
	deliverMu sync.Mutex // serialises onRead, taken before mu is released
	running   atomic.Bool

	edgeDone func() // test point: called after each edge was decoded
}

// NewWiegand sets d0 and d1 up as inputs with pull-up and falling-edge
// detection and returns a reader that calls onRead with every read once Run
// is running. It fails when a pin cannot be set up or cfg is out of range.
func NewWiegand(d0, d1 gpio.PinIn, cfg WiegandConfig, onRead func(Read)) (*Wiegand, error) {
	if d0 == nil || d1 == nil || onRead == nil {
		return nil, errors.New("gpio: NewWiegand needs two pins and onRead")
	}
	if cfg.Poll < 0 {
		return nil, errors.New("gpio: negative Poll")
	}
	dec, err := NewDecoder(cfg.DecoderConfig)
	if err != nil {
		return nil, err
	}
	cfg.DecoderConfig = dec.cfg
	cfg.Poll = cmp.Or(cfg.Poll, DefaultPoll)
	cfg.Clock = cmp.Or(cfg.Clock, SystemClock)
	cfg.Logger = cmp.Or(cfg.Logger, slog.Default())
	for _, p := range []gpio.PinIn{d0, d1} {
		if err := p.In(gpio.PullUp, gpio.FallingEdge); err != nil {
			return nil, fmt.Errorf("gpio: wiegand %s: pin %s: %w", cfg.Name, p, err)
		}
	}
	return &Wiegand{d0: d0, d1: d1, cfg: cfg, onRead: onRead, dec: dec}, nil
}

// Run decodes until ctx is done, then returns nil once its goroutines (one
// per pin) have stopped, within Poll. onRead is called from them, one call at
// a time, in order; it may call Stats.
func (w *Wiegand) Run(ctx context.Context) error {
	if !w.running.CompareAndSwap(false, true) {
		return errRunning
	}
	defer w.running.Store(false)
	w.cfg.Logger.LogAttrs(ctx, slog.LevelDebug, "wiegand reader running", slog.String("reader", w.cfg.Name),
		slog.String("d0", w.d0.String()), slog.String("d1", w.d1.String()))
	var wg sync.WaitGroup
	for _, line := range []struct {
		pin gpio.PinIn
		one bool
	}{{w.d0, false}, {w.d1, true}} {
		wg.Go(func() {
			watch(ctx, line.pin, w.wait, func(edge bool) {
				if !edge {
					w.feed(ctx, func(d *Decoder) []Read { return d.Tick(w.cfg.Clock.Now()) })
					return
				}
				t := w.cfg.Clock.Now() // as close to the wake-up as we can
				w.feed(ctx, func(d *Decoder) []Read { return d.Edge(line.one, t) })
				if w.edgeDone != nil {
					w.edgeDone()
				}
			})
		})
	}
	wg.Wait()
	return nil
}

// Stats returns the decoder's counters.
func (w *Wiegand) Stats() DecoderStats {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.dec.Stats()
}

// wait returns how long to wait for the next edge: until the decoder's
// deadline, at most Poll.
func (w *Wiegand) wait() time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	dl, ok := w.dec.Deadline()
	return nextWait(w.cfg.Clock.Now(), dl, ok, w.cfg.Poll)
}

// feed runs f on the decoder and hands the reads to onRead, in the order they
// were made but outside w.mu, so that onRead may call Stats.
func (w *Wiegand) feed(ctx context.Context, f func(*Decoder) []Read) {
	var reads [2]Read
	w.mu.Lock()
	n := copy(reads[:], f(w.dec))
	if n == 0 {
		w.mu.Unlock()
		return
	}
	w.deliverMu.Lock()
	w.mu.Unlock()
	defer w.deliverMu.Unlock()
	for _, r := range reads[:n] {
		if r.Err != nil {
			w.cfg.Logger.LogAttrs(ctx, slog.LevelWarn, "wiegand read dropped", slog.String("reader", w.cfg.Name),
				slog.String("reason", r.Err.Error()), slog.Int("bits", r.Bits), slog.String("frame", r.Frame.String()))
		}
		w.onRead(r)
	}
}
