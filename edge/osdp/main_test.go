package osdp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	wire "varco.dev/protocol/osdp"
)

// TestMain fails the run if a test leaves a goroutine behind.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// failsafe bounds every wait of a test for something the code under test
// does; it is never reached when the code works.
const failsafe = 10 * time.Second

// t0 is where fake clocks start.
var t0 = time.Date(2025, 11, 25, 7, 30, 0, 0, time.UTC)

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// expect returns the next event of type T that ok accepts (nil: any),
// skipping the others.
func expect[T Event](t testing.TB, events <-chan Event, ok func(T) bool) T {
	t.Helper()
	deadline := time.After(failsafe)
	for {
		select {
		case ev := <-events:
			if e, is := ev.(T); is && (ok == nil || ok(e)) {
				return e
			}
			t.Logf("skipped %T %+v", ev, ev)
		case <-deadline:
			var zero T
			t.Fatalf("no %T in %v", zero, failsafe)
		}
	}
}

// noEvent checks that no event of type T is waiting in events, and drops
// the others.
func noEvent[T Event](t testing.TB, events <-chan Event) {
	t.Helper()
	for {
		select {
		case ev := <-events:
			if _, is := ev.(T); is {
				t.Fatalf("unexpected %T %+v", ev, ev)
			}
		default:
			return
		}
	}
}

func (s seen) String() string {
	r := ""
	if s.Reply != 0 {
		r = " → " + wire.CodeName(s.Reply, true)
	}
	if s.Repeat {
		r += " (repeat)"
	}
	return fmt.Sprintf("%s to 0x%02X seq %d%s", wire.CodeName(s.Code, false), s.Addr, s.Seq, r)
}

func tail(log []seen, n int) string {
	var b strings.Builder
	for _, s := range log[max(len(log)-n, 0):] {
		b.WriteString("\n\t" + s.String())
	}
	return b.String()
}

// to returns the commands of log sent to addr.
func to(log []seen, addr byte) []seen {
	return slices.DeleteFunc(slices.Clone(log), func(s seen) bool { return s.Addr != addr })
}

// scriptPort is a serial port driven by the test: it hands the bus what
// the test gives it and reports each frame the bus writes.
type scriptPort struct {
	in     chan []byte
	out    chan []byte
	closed chan struct{}
	once   sync.Once
}

func newScriptPort() *scriptPort {
	return &scriptPort{in: make(chan []byte), out: make(chan []byte, 64), closed: make(chan struct{})}
}

var errPortClosed = errors.New("script port closed")

func (p *scriptPort) Read(b []byte) (int, error) {
	select {
	case in := <-p.in:
		return copy(b, in), nil
	case <-p.closed:
		return 0, errPortClosed
	}
}

func (p *scriptPort) Write(b []byte) (int, error) {
	p.out <- slices.Clone(b)
	return len(b), nil
}

func (p *scriptPort) Close() error {
	p.once.Do(func() { close(p.closed) })
	return nil
}

// sent returns the next frame the bus wrote.
func (p *scriptPort) sent(t testing.TB) wire.Frame {
	t.Helper()
	select {
	case b := <-p.out:
		f, err := wire.ParseFrame(b)
		if err != nil {
			t.Fatalf("bus wrote % X: %v", b, err)
		}
		return f
	case <-time.After(failsafe):
		t.Fatalf("bus wrote nothing in %v", failsafe)
		panic("unreachable")
	}
}

// nothingSent checks that the bus wrote nothing yet.
func (p *scriptPort) nothingSent(t testing.TB) {
	t.Helper()
	select {
	case b := <-p.out:
		t.Fatalf("bus wrote % X", b)
	default:
	}
}

// reply gives the bus the reply m to command f.
func (p *scriptPort) reply(t testing.TB, f wire.Frame, m wire.Reply) {
	t.Helper()
	select {
	case p.in <- encodeReply(&f, m):
	case <-time.After(failsafe):
		t.Fatalf("bus did not read")
	}
}

// runBus runs b until the test ends.
func runBus(t testing.TB, b *Bus) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}
