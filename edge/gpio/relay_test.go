package gpio

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"periph.io/x/conn/v3/gpio"
)

// newRelay returns a relay on an outPin and a fake clock, released at t0,
// and closes it when the test ends.
func newRelay(t *testing.T, activeLow bool) (*Relay, *outPin, *clockwork.FakeClock) {
	t.Helper()
	clk := clockwork.NewFakeClockAt(t0)
	pin := newOutPin("RELAY", clk)
	r, err := NewRelay(pin, RelayConfig{Name: "gate", ActiveLow: activeLow, Clock: clk, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	expectLevel(t, pin, gpio.Level(activeLow), t0) // released at start
	return r, pin, clk
}

func TestRelayPulse(t *testing.T) {
	t.Parallel()
	for _, activeLow := range []bool{false, true} {
		on, off := gpio.Level(!activeLow), gpio.Level(activeLow)
		r, pin, clk := newRelay(t, activeLow)
		if err := r.Pulse(t.Context(), 500*ms); err != nil {
			t.Fatal(err)
		}
		expectLevel(t, pin, on, t0) // Pulse returns once the relay is energised

		clk.Advance(499 * ms)
		none(t, pin.levels)
		clk.Advance(ms)
		expectLevel(t, pin, off, t0.Add(500*ms))
	}
}

// A pulse during a pulse extends it to the later end; a shorter one changes
// nothing.
func TestRelayPulseExtends(t *testing.T) {
	t.Parallel()
	r, pin, clk := newRelay(t, true)
	ctx := t.Context()
	if err := r.Pulse(ctx, 500*ms); err != nil {
		t.Fatal(err)
	}
	expectLevel(t, pin, gpio.Low, t0)
	clk.Advance(300 * ms)
	if err := r.Pulse(ctx, 500*ms); err != nil { // now ends at 800 ms
		t.Fatal(err)
	}
	if err := r.Pulse(ctx, 100*ms); err != nil { // within the pulse: no change
		t.Fatal(err)
	}
	none(t, pin.levels)   // no Out: Pulse returned after the owner handled it
	clk.Advance(200 * ms) // 500 ms: the first pulse's end passes
	clk.Advance(299 * ms)
	none(t, pin.levels)
	clk.Advance(ms)
	expectLevel(t, pin, gpio.High, t0.Add(800*ms))
}

func TestRelayCloseReleases(t *testing.T) {
	t.Parallel()
	r, pin, _ := newRelay(t, false)
	if err := r.Pulse(t.Context(), time.Hour); err != nil {
		t.Fatal(err)
	}
	expectLevel(t, pin, gpio.High, t0)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	expectLevel(t, pin, gpio.Low, t0)
	if err := r.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := r.Pulse(t.Context(), time.Second); !errors.Is(err, ErrClosed) {
		t.Fatalf("Pulse after Close: %v", err)
	}
	none(t, pin.levels)
}

func TestRelayPulseErrors(t *testing.T) {
	t.Parallel()
	r, pin, clk := newRelay(t, false)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := r.Pulse(ctx, time.Second); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Pulse: %v", err)
	}
	if err := r.Pulse(t.Context(), 0); err == nil {
		t.Fatal("zero pulse accepted")
	}
	none(t, pin.levels)

	// A pin that fails: Pulse says so and the relay stays released; a
	// failed release is retried until it works.
	pin.broken.Store(true)
	if err := r.Pulse(t.Context(), time.Second); !errors.Is(err, errBroken) {
		t.Fatalf("Pulse on a broken pin: %v", err)
	}
	pin.broken.Store(false)
	if err := r.Pulse(t.Context(), time.Second); err != nil {
		t.Fatal(err)
	}
	expectLevel(t, pin, gpio.High, t0)
	pin.broken.Store(true)
	clk.Advance(time.Second) // the release fails
	// The owner retries in releaseRetry: wait for its timer, the only one.
	if err := clk.BlockUntilContext(t.Context(), 1); err != nil {
		t.Fatal(err)
	}
	pin.broken.Store(false)
	clk.Advance(releaseRetry)
	expectLevel(t, pin, gpio.Low, t0.Add(time.Second+releaseRetry))

	pin.broken.Store(true)
	if _, err := NewRelay(pin, RelayConfig{}); !errors.Is(err, errBroken) {
		t.Fatalf("NewRelay on a broken pin: %v", err)
	}
}
