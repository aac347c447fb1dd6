package gpio

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"go.uber.org/goleak"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"
)

// TestMain fails the run if a test leaves a goroutine behind.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// t0 is where fake clocks start.
var t0 = time.Date(2025, 11, 25, 7, 30, 0, 0, time.UTC)

// failsafe bounds every wait of a test for something the code under test
// does; it is never reached when the code works.
const failsafe = 10 * time.Second

// testPoll is the Poll of runners in tests: the longest real-time wait for
// an edge, hence how soon a runner notices that the fake clock moved.
const testPoll = 5 * time.Millisecond

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// inPin is a gpiotest input pin. Its edge channel is unbuffered, so a push
// returns once the runner's WaitForEdge took the edge. Its WaitForEdge
// timeouts run on the real clock (Pin.Clock nil): they only bound how long a
// runner sleeps before it looks at the fake clock again.
func inPin(name string, num int) *gpiotest.Pin {
	return &gpiotest.Pin{N: name, Num: num, EdgesChan: make(chan gpio.Level)}
}

// push sends an edge to pin (the level after it) and waits until the runner
// has handled it, which signals on done.
func push(t *testing.T, pin *gpiotest.Pin, l gpio.Level, done <-chan struct{}) {
	t.Helper()
	select {
	case pin.EdgesChan <- l:
	case <-time.After(failsafe):
		t.Fatalf("%s: edge not taken", pin)
	}
	recv(t, done)
}

// recv returns the next value of ch.
func recv[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(failsafe):
		t.Fatalf("nothing received in %v", failsafe)
		panic("unreachable")
	}
}

// none checks that ch holds nothing now.
func none[T any](t *testing.T, ch <-chan T) {
	t.Helper()
	select {
	case v := <-ch:
		t.Fatalf("unexpected %+v", v)
	default:
	}
}

// start runs run(ctx) in a goroutine until the test ends, then checks that it
// returned nil.
func start(t *testing.T, run func(context.Context) error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := recv(t, done); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

// levelAt is a level driven on an outPin and the (fake) time it was driven.
type levelAt struct {
	L  gpio.Level
	At time.Time
}

// outPin is a gpiotest pin that also reports every Out on a channel.
type outPin struct {
	*gpiotest.Pin
	clk    clockwork.Clock
	levels chan levelAt
	broken atomic.Bool // Out fails with errBroken
}

var errBroken = errors.New("pin broken")

func newOutPin(name string, clk clockwork.Clock) *outPin {
	return &outPin{Pin: &gpiotest.Pin{N: name}, clk: clk, levels: make(chan levelAt, 16)}
}

func (p *outPin) Out(l gpio.Level) error {
	if p.broken.Load() {
		return errBroken
	}
	if err := p.Pin.Out(l); err != nil {
		return err
	}
	p.levels <- levelAt{l, p.clk.Now()}
	return nil
}

// expectLevel checks the next level driven on p and when.
func expectLevel(t *testing.T, p *outPin, l gpio.Level, at time.Time) {
	t.Helper()
	got := recv(t, p.levels)
	if got.L != l || !got.At.Equal(at) {
		t.Fatalf("%s: driven %s at %v, want %s at %v", p, got.L, got.At.Sub(t0), l, at.Sub(t0))
	}
	if p.Read() != l {
		t.Fatalf("%s: reads %s, want %s", p, p.Read(), l)
	}
}
