package gpio

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"periph.io/x/conn/v3/gpio"
)

// ErrClosed is returned by Relay.Pulse after Close.
var ErrClosed = errors.New("gpio: relay closed")

// releaseRetry is how often the owner retries a release that failed.
const releaseRetry = 100 * time.Millisecond

// RelayConfig configures a Relay.
type RelayConfig struct {
	// Name identifies the relay in logs.
	Name string
	// ActiveLow energises the relay by driving the pin low, as most relay
	// boards with opto-isolated inputs want; the default drives it high.
	ActiveLow bool
	// Clock times the pulses (default SystemClock).
	Clock Clock
	// Logger receives errors of the pin (default slog.Default()).
	Logger *slog.Logger
}

// Relay is a relay output pulsed for a length of time. Its pin is driven by
// one owner goroutine, started by NewRelay and stopped by Close.
type Relay struct {
	pin gpio.PinOut
	cfg RelayConfig

	pulses chan pulse
	stop   chan struct{}
	done   chan struct{} // closed when the owner has stopped
	once   sync.Once
	err    error // of the final release, set before done is closed
}

type pulse struct {
	d   time.Duration
	ack chan error
}

// NewRelay releases the relay on pin and starts its owner goroutine. Call
// Close to stop it.
func NewRelay(pin gpio.PinOut, cfg RelayConfig) (*Relay, error) {
	if pin == nil {
		return nil, errors.New("gpio: NewRelay needs a pin")
	}
	cfg.Clock = cmp.Or(cfg.Clock, SystemClock)
	cfg.Logger = cmp.Or(cfg.Logger, slog.Default())
	r := &Relay{pin: pin, cfg: cfg, pulses: make(chan pulse), stop: make(chan struct{}), done: make(chan struct{})}
	if err := r.set(false); err != nil {
		return nil, err
	}
	go r.own()
	return r, nil
}

// Pulse energises the relay for d, or extends the pulse in progress to end d
// from now if that is later, and returns once the relay is energised: it does
// not wait for the pulse to end. ctx bounds the wait for the owner goroutine.
// It returns the pin's error, ErrClosed after Close, or ctx's error.
func (r *Relay) Pulse(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return fmt.Errorf("gpio: relay %s: pulse length %v is not positive", r.cfg.Name, d)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	p := pulse{d: d, ack: make(chan error, 1)}
	select {
	case r.pulses <- p:
		return <-p.ack
	case <-r.done:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close releases the relay, stops the owner goroutine and returns the error
// of the release. Later calls return the same error.
func (r *Relay) Close() error {
	r.once.Do(func() { close(r.stop) })
	<-r.done
	return r.err
}

// own is the owner goroutine: the only code that energises the relay, always
// with a deadline.
func (r *Relay) own() {
	defer close(r.done)
	var (
		on    bool
		end   time.Time
		timer <-chan time.Time // fires at end (or to retry a release)
	)
	for {
		select {
		case p := <-r.pulses:
			now := r.cfg.Clock.Now()
			if e := now.Add(p.d); !on || e.After(end) {
				end, timer = e, r.cfg.Clock.After(p.d)
			}
			var err error
			if !on {
				if err = r.set(true); err != nil {
					_ = r.set(false) // unknown state: make sure
					timer = nil
				}
				on = err == nil
			}
			p.ack <- err
		case <-timer:
			if now := r.cfg.Clock.Now(); now.Before(end) {
				timer = r.cfg.Clock.After(end.Sub(now))
				continue
			}
			if err := r.set(false); err != nil {
				r.log(slog.LevelError, "relay release failed, retrying", err)
				timer = r.cfg.Clock.After(releaseRetry)
				continue
			}
			on, timer = false, nil
		case <-r.stop:
			r.err = r.set(false)
			if r.err != nil {
				r.log(slog.LevelError, "relay release at close failed", r.err)
			}
			return
		}
	}
}

// set energises (true) or releases the relay.
func (r *Relay) set(on bool) error {
	l := gpio.Level(on != r.cfg.ActiveLow)
	if err := r.pin.Out(l); err != nil {
		return fmt.Errorf("gpio: relay %s: pin %s: %w", r.cfg.Name, r.pin, err)
	}
	return nil
}

func (r *Relay) log(level slog.Level, msg string, err error) {
	r.cfg.Logger.LogAttrs(context.Background(), level, msg, slog.String("relay", r.cfg.Name), slog.Any("error", err))
}
