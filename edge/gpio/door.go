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
)

// Defaults of DoorConfig.
const (
	DefaultDebounce = 50 * time.Millisecond
	DefaultHeldOpen = 30 * time.Second
	DefaultPulse    = 5 * time.Second
)

// DoorEventKind is what happened at a door.
type DoorEventKind uint8

// The events of a Door.
const (
	// DoorOpened: the door opened after a grant or a REX press.
	DoorOpened DoorEventKind = iota + 1
	// DoorForced: the door opened without a grant or REX press before it,
	// within AccessWindow. An alarm.
	DoorForced
	// DoorHeldOpen: an authorised opening has lasted HeldOpen. An alarm,
	// raised once per opening.
	DoorHeldOpen
	// DoorClosed: the door is closed again; it ends both alarms.
	DoorClosed
	// REXPressed: the request-to-exit button was pressed; the door's relay
	// is pulsed and one opening authorised.
	REXPressed
)

func (k DoorEventKind) String() string {
	switch k {
	case DoorOpened:
		return "opened"
	case DoorForced:
		return "forced"
	case DoorHeldOpen:
		return "held-open"
	case DoorClosed:
		return "closed"
	case REXPressed:
		return "rex"
	}
	return fmt.Sprintf("DoorEventKind(%d)", uint8(k))
}

// DoorEvent is one event of a door.
type DoorEvent struct {
	Door string // DoorConfig.Name
	Kind DoorEventKind
	// At is when the input was first seen in its new state (events are
	// raised Debounce later), or for DoorHeldOpen when HeldOpen ran out.
	At time.Time
}

// DoorConfig configures a Door. A zero field takes its default.
type DoorConfig struct {
	// Name identifies the door in events and logs.
	Name string
	// OpenLow: the contact reads low when the door is open. The default,
	// high when open, is a contact that closes to ground when the door is
	// shut, with the pin's pull-up: a cut wire reads as open.
	OpenLow bool
	// REXActiveHigh: the REX input reads high when pressed. The default is
	// a button to ground with the pin's pull-up.
	REXActiveHigh bool
	// Debounce is how long an input must keep a new state before it counts
	// (default 50 ms).
	Debounce time.Duration
	// HeldOpen is how long an authorised opening may last before
	// DoorHeldOpen, from the moment the door opened (default 30 s).
	HeldOpen time.Duration
	// Pulse is the relay pulse of a grant or REX press (default 5 s).
	Pulse time.Duration
	// AccessWindow is how long after a grant or REX press the door may open
	// without DoorForced (default Pulse + 5 s: the latch may need a moment).
	AccessWindow time.Duration
	// Poll is the longest single wait for an edge (default DefaultPoll).
	Poll time.Duration
	// Clock times everything (default SystemClock).
	Clock Clock
	// Logger receives the events, alarms as warnings (default
	// slog.Default()).
	Logger *slog.Logger
}

// Door monitors a door-position contact and a request-to-exit button. Make
// it with NewDoor and start it with Run.
type Door struct {
	contact, rex gpio.PinIn
	relay        *Relay
	cfg          DoorConfig
	onEvent      func(DoorEvent)

	mu        sync.Mutex // guards mon
	mon       doorMonitor
	deliverMu sync.Mutex // serialises onEvent, taken before mu is released
	running   atomic.Bool

	sampled func() // test point: called after an input was sampled on an edge
}

// NewDoor sets contact and rex up as inputs with pull-up and edge detection,
// reads their initial state and returns a door that calls onEvent once Run is
// running. Either pin may be nil (no contact: no door alarms; no REX button),
// not both; relay may be nil (then grants and REX presses pulse nothing). A
// door open at start counts as an authorised opening from then: it raises
// DoorHeldOpen if it stays open.
func NewDoor(contact, rex gpio.PinIn, relay *Relay, cfg DoorConfig, onEvent func(DoorEvent)) (*Door, error) {
	if (contact == nil && rex == nil) || onEvent == nil {
		return nil, errors.New("gpio: NewDoor needs a contact or a REX pin, and onEvent")
	}
	if cfg.Debounce < 0 || cfg.HeldOpen < 0 || cfg.Pulse < 0 || cfg.AccessWindow < 0 || cfg.Poll < 0 {
		return nil, fmt.Errorf("gpio: door %s: negative duration", cfg.Name)
	}
	cfg.Debounce = cmp.Or(cfg.Debounce, DefaultDebounce)
	cfg.HeldOpen = cmp.Or(cfg.HeldOpen, DefaultHeldOpen)
	cfg.Pulse = cmp.Or(cfg.Pulse, DefaultPulse)
	cfg.AccessWindow = cmp.Or(cfg.AccessWindow, cfg.Pulse+5*time.Second)
	cfg.Poll = cmp.Or(cfg.Poll, DefaultPoll)
	cfg.Clock = cmp.Or(cfg.Clock, SystemClock)
	cfg.Logger = cmp.Or(cfg.Logger, slog.Default())
	d := &Door{contact: contact, rex: rex, relay: relay, cfg: cfg, onEvent: onEvent}
	d.mon = doorMonitor{name: cfg.Name, debounce: cfg.Debounce, held: cfg.HeldOpen, window: cfg.AccessWindow}
	for _, p := range []gpio.PinIn{contact, rex} {
		if p == nil {
			continue
		}
		if err := p.In(gpio.PullUp, gpio.BothEdges); err != nil {
			return nil, fmt.Errorf("gpio: door %s: pin %s: %w", cfg.Name, p, err)
		}
	}
	now := cfg.Clock.Now()
	if contact != nil && d.isOpen() {
		d.mon.contact.on, d.mon.openedAt, d.mon.watchHeld = true, now, true
	}
	if rex != nil {
		d.mon.rex.on = d.isPressed()
	}
	return d, nil
}

func (d *Door) isOpen() bool    { return d.contact.Read() == gpio.Level(!d.cfg.OpenLow) }
func (d *Door) isPressed() bool { return d.rex.Read() == gpio.Level(d.cfg.REXActiveHigh) }

// Grant authorises one opening within AccessWindow and pulses the door's
// relay; it returns the relay's error.
func (d *Door) Grant(ctx context.Context) error {
	d.mu.Lock()
	d.mon.authorise(d.cfg.Clock.Now())
	d.mu.Unlock()
	if d.relay == nil {
		return nil
	}
	return d.relay.Pulse(ctx, d.cfg.Pulse)
}

// Run monitors the door until ctx is done, then returns nil once its
// goroutines (one per input) have stopped, within Poll. onEvent is called
// from them, one call at a time, in order; it may call Grant. Run does not
// close the relay.
func (d *Door) Run(ctx context.Context) error {
	if !d.running.CompareAndSwap(false, true) {
		return errRunning
	}
	defer d.running.Store(false)
	var wg sync.WaitGroup
	if d.contact != nil {
		wg.Go(func() {
			watch(ctx, d.contact, d.wait, func(edge bool) { d.sample(ctx, &d.mon.contact, d.isOpen, edge) })
		})
	}
	if d.rex != nil {
		wg.Go(func() {
			watch(ctx, d.rex, d.wait, func(edge bool) { d.sample(ctx, &d.mon.rex, d.isPressed, edge) })
		})
	}
	wg.Wait()
	return nil
}

func (d *Door) wait() time.Duration {
	d.mu.Lock()
	defer d.mu.Unlock()
	dl, ok := d.mon.deadline()
	return nextWait(d.cfg.Clock.Now(), dl, ok, d.cfg.Poll)
}

// sample reads one input after each wait, edge or not (an edge that sysfs
// merged away is still seen), and raises what is due.
func (d *Door) sample(ctx context.Context, in *input, read func() bool, edge bool) {
	v := read()
	var events [len(d.mon.out)]DoorEvent
	d.mu.Lock()
	now := d.cfg.Clock.Now()
	in.sample(v, now)
	n := copy(events[:], d.mon.step(now))
	if n > 0 {
		d.deliverMu.Lock() // before unlocking mu: events leave in order
	}
	d.mu.Unlock()
	rex := false
	for _, e := range events[:n] {
		level := slog.LevelDebug
		if e.Kind == DoorForced || e.Kind == DoorHeldOpen {
			level = slog.LevelWarn
		}
		d.cfg.Logger.LogAttrs(ctx, level, "door "+e.Kind.String(), slog.String("door", d.cfg.Name), slog.Time("at", e.At))
		d.onEvent(e)
		rex = rex || e.Kind == REXPressed
	}
	if n > 0 {
		d.deliverMu.Unlock()
	}
	if rex && d.relay != nil {
		if err := d.relay.Pulse(ctx, d.cfg.Pulse); err != nil && ctx.Err() == nil {
			d.cfg.Logger.LogAttrs(ctx, slog.LevelError, "door REX pulse failed", slog.String("door", d.cfg.Name), slog.Any("error", err))
		}
	}
	if edge && d.sampled != nil {
		d.sampled()
	}
}

// input is a debounced boolean input (door open, REX pressed).
type input struct {
	on      bool      // the debounced state
	pending bool      // the other state has been seen since since
	since   time.Time // unbroken
}

func (in *input) sample(v bool, t time.Time) {
	switch {
	case v == in.on:
		in.pending = false
	case !in.pending:
		in.pending, in.since = true, t
	}
}

// settle flips the state once the other one has lasted d, and reports when
// it was first seen.
func (in *input) settle(now time.Time, d time.Duration) (changed bool, at time.Time) {
	if in.pending && now.Sub(in.since) >= d {
		in.on, in.pending = !in.on, false
		return true, in.since
	}
	return false, time.Time{}
}

// doorMonitor is the door's state machine: pure, fed with samples and times.
type doorMonitor struct {
	name                   string
	debounce, held, window time.Duration
	contact, rex           input
	authorised             bool // a grant or REX press not yet used by an opening
	authFrom, authUntil    time.Time
	openedAt               time.Time
	watchHeld              bool // an authorised opening whose DoorHeldOpen is due
	out                    [3]DoorEvent
	nOut                   int
}

// authorise allows one opening that starts from t until window after the
// latest grant.
func (m *doorMonitor) authorise(t time.Time) {
	if !m.authorised || t.After(m.authUntil) {
		m.authorised, m.authFrom = true, t
	}
	if u := t.Add(m.window); u.After(m.authUntil) {
		m.authUntil = u
	}
}

func (m *doorMonitor) emit(k DoorEventKind, at time.Time) {
	m.out[m.nOut] = DoorEvent{Door: m.name, Kind: k, At: at}
	m.nOut++
}

// step raises the events due by now. The REX button settles first, so a
// press seen before the door opened authorises the opening. An authorisation
// counts only for an opening first seen after it.
func (m *doorMonitor) step(now time.Time) []DoorEvent {
	m.nOut = 0
	if changed, at := m.rex.settle(now, m.debounce); changed && m.rex.on {
		m.emit(REXPressed, at)
		m.authorise(at)
	}
	if changed, at := m.contact.settle(now, m.debounce); changed {
		switch {
		case !m.contact.on:
			m.emit(DoorClosed, at)
			m.watchHeld = false
		case m.authorised && !at.Before(m.authFrom) && !at.After(m.authUntil):
			m.emit(DoorOpened, at)
			m.authorised, m.openedAt, m.watchHeld = false, at, true
		default:
			m.emit(DoorForced, at)
			m.authorised, m.watchHeld = false, false
		}
	}
	if m.watchHeld && now.Sub(m.openedAt) >= m.held {
		m.emit(DoorHeldOpen, m.openedAt.Add(m.held))
		m.watchHeld = false
	}
	return m.out[:m.nOut]
}

// deadline is when step next has something to do.
func (m *doorMonitor) deadline() (t time.Time, ok bool) {
	soonest := func(c time.Time) {
		if !ok || c.Before(t) {
			t, ok = c, true
		}
	}
	if m.contact.pending {
		soonest(m.contact.since.Add(m.debounce))
	}
	if m.rex.pending {
		soonest(m.rex.since.Add(m.debounce))
	}
	if m.watchHeld {
		soonest(m.openedAt.Add(m.held))
	}
	return t, ok
}
