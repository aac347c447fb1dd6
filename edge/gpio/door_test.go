package gpio

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"
)

// TestDoorMonitor runs the door's state machine on scripts of samples,
// grants and ticks: "open@1s" samples the contact open at t0+1s, "press" and
// "release" sample the REX button, "grant" authorises, "tick" only steps.
// Events are written "kind@offset".
func TestDoorMonitor(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		script string
		want   string
	}{
		{"forced, then closed", "open@0 tick@50ms close@1s tick@1.05s", "forced@0s closed@1s"},
		{"bounces are filtered", "open@0 close@10ms open@20ms tick@60ms tick@70ms", "forced@20ms"},
		{"granted, then held open", "grant@0 open@1s tick@1.05s tick@30.99s tick@31s close@40s tick@40.05s",
			"opened@1s held-open@31s closed@40s"},
		{"closed in time: no held-open", "grant@0 open@1s tick@1.05s close@5s tick@5.05s tick@60s", "opened@1s closed@5s"},
		{"grant expired", "grant@0 open@10.001s tick@10.051s", "forced@10.001s"},
		{"grant used by the first opening", "grant@0 open@1s tick@1.05s close@2s tick@2.05s open@3s tick@3.05s",
			"opened@1s closed@2s forced@3s"},
		{"REX authorises", "press@0 tick@50ms release@1s open@2s tick@2.05s", "rex@0s opened@2s"},
		{"REX after the door opened", "open@0 press@10ms tick@50ms tick@60ms", "forced@0s rex@10ms"},
		{"REX and door within one debounce", "press@0 open@5ms tick@55ms", "rex@0s opened@5ms"},
		{"grant after the door opened", "open@0 grant@10ms tick@50ms", "forced@0s"},
		{"a second grant extends the window", "grant@0 grant@8s open@15s tick@15.05s", "opened@15s"},
		{"an expired grant is not renewed backwards", "grant@0 open@59.99s grant@60s tick@60.04s", "forced@59.99s"},
		{"held REX button: one press", "press@0 tick@50ms tick@10s release@20s tick@21s press@30s tick@31s",
			"rex@0s rex@30s"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := doorMonitor{debounce: 50 * ms, held: 30 * time.Second, window: 10 * time.Second}
			var got []string
			for op := range strings.FieldsSeq(c.script) {
				name, offset, _ := strings.Cut(op, "@")
				d, err := time.ParseDuration(offset)
				if err != nil {
					t.Fatal(err)
				}
				at := t0.Add(d)
				switch name {
				case "open", "close":
					m.contact.sample(name == "open", at)
				case "press", "release":
					m.rex.sample(name == "press", at)
				case "grant":
					m.authorise(at)
				case "tick":
				default:
					t.Fatalf("bad op %q", op)
				}
				for _, e := range m.step(at) {
					got = append(got, fmt.Sprintf("%s@%v", e.Kind, e.At.Sub(t0)))
				}
			}
			if want := strings.Fields(c.want); !slices.Equal(got, want) {
				t.Errorf("got  %q\nwant %q", got, want)
			}
		})
	}
}

// doorRig is a Door on gpiotest pins with a relay, a fake clock and the
// events on a channel, running until the test ends.
type doorRig struct {
	door         *Door
	contact, rex *gpiotest.Pin
	relay        *outPin
	clk          *clockwork.FakeClock
	events       chan DoorEvent
	sampled      chan struct{}
}

func newDoorRig(t *testing.T, cfg DoorConfig) *doorRig {
	t.Helper()
	g := &doorRig{contact: inPin("DOOR", 5), rex: inPin("REX", 6), clk: clockwork.NewFakeClockAt(t0),
		events: make(chan DoorEvent, 8), sampled: make(chan struct{})}
	g.relay = newOutPin("LOCK", g.clk)
	relay, err := NewRelay(g.relay, RelayConfig{Name: "lock", Clock: g.clk, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = relay.Close() }) // after the door stopped: cleanups run last first
	expectLevel(t, g.relay, gpio.Low, t0)
	cfg.Name, cfg.Poll, cfg.Clock, cfg.Logger = "front", testPoll, g.clk, testLogger(t)
	g.door, err = NewDoor(g.contact, g.rex, relay, cfg, func(e DoorEvent) { g.events <- e })
	if err != nil {
		t.Fatal(err)
	}
	g.door.sampled = func() { g.sampled <- struct{}{} }
	start(t, g.door.Run)
	return g
}

// expect waits for the next event.
func (g *doorRig) expect(t *testing.T, kind DoorEventKind, at time.Time) {
	t.Helper()
	e := recv(t, g.events)
	if e.Kind != kind || !e.At.Equal(at) || e.Door != "front" {
		t.Fatalf("event %s@%v (%s), want %s@%v", e.Kind, e.At.Sub(t0), e.Door, kind, at.Sub(t0))
	}
}

// Edges pushed into gpiotest pins come out of a running Door as events, and
// grants and REX presses pulse the relay.
func TestDoorRunner(t *testing.T) {
	t.Parallel()
	// The gpiotest pins read high (pull-up) at start: with OpenLow the
	// door is closed and the button released.
	g := newDoorRig(t, DoorConfig{OpenLow: true, HeldOpen: 30 * time.Second, Pulse: 5 * time.Second})
	const deb = DefaultDebounce

	// Forced open, closed again.
	push(t, g.contact, gpio.Low, g.sampled)
	g.clk.Advance(deb) // the runner's next wake-up sees the contact settled
	g.expect(t, DoorForced, t0)
	push(t, g.contact, gpio.High, g.sampled)
	g.clk.Advance(deb)
	g.expect(t, DoorClosed, t0.Add(deb))

	// Granted: the lock opens for the pulse, the door opens, is held open.
	g.clk.Advance(time.Second)
	granted := g.clk.Now()
	if err := g.door.Grant(t.Context()); err != nil {
		t.Fatal(err)
	}
	expectLevel(t, g.relay, gpio.High, granted)
	push(t, g.contact, gpio.Low, g.sampled)
	g.clk.Advance(deb)
	g.expect(t, DoorOpened, granted)
	g.clk.Advance(5*time.Second - deb)
	expectLevel(t, g.relay, gpio.Low, granted.Add(5*time.Second))
	g.clk.Advance(25 * time.Second)
	g.expect(t, DoorHeldOpen, granted.Add(30*time.Second))
	push(t, g.contact, gpio.High, g.sampled)
	closed := g.clk.Now()
	g.clk.Advance(deb)
	g.expect(t, DoorClosed, closed)

	// REX: pressed, the lock opens, the door opens without an alarm.
	push(t, g.rex, gpio.Low, g.sampled)
	pressed := g.clk.Now()
	g.clk.Advance(deb)
	g.expect(t, REXPressed, pressed)
	expectLevel(t, g.relay, gpio.High, pressed.Add(deb))
	push(t, g.rex, gpio.High, g.sampled)
	push(t, g.contact, gpio.Low, g.sampled)
	g.clk.Advance(deb)
	g.expect(t, DoorOpened, pressed.Add(deb))
	none(t, g.events)
}

// A door found open at start counts as opened then: held-open if it stays.
func TestDoorOpenAtStart(t *testing.T) {
	t.Parallel()
	g := newDoorRig(t, DoorConfig{}) // default polarity: the pull-up reads open
	g.clk.Advance(DefaultHeldOpen)
	g.expect(t, DoorHeldOpen, t0.Add(DefaultHeldOpen))
	none(t, g.events)
}

func TestNewDoorErrors(t *testing.T) {
	t.Parallel()
	if _, err := NewDoor(nil, nil, nil, DoorConfig{}, func(DoorEvent) {}); err == nil {
		t.Fatal("door without inputs accepted")
	}
	if _, err := NewDoor(inPin("DOOR", 1), nil, nil, DoorConfig{HeldOpen: -1}, func(DoorEvent) {}); err == nil {
		t.Fatal("negative HeldOpen accepted")
	}
	noEdges := &gpiotest.Pin{N: "REX", Num: 2}
	if _, err := NewDoor(nil, noEdges, nil, DoorConfig{Name: "back"}, func(DoorEvent) {}); err == nil ||
		!strings.Contains(err.Error(), "REX(2)") || !strings.Contains(err.Error(), "back") {
		t.Fatalf("err = %v, want one naming the door and the pin", err)
	}
}
