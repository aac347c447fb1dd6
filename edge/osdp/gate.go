package osdp

import (
	"context"
	"sync/atomic"
	"time"

	"varco.dev/edge"
)

// Gate is a reader of the bus as edge.Gatekeeper drives it: a decision
// becomes one Answer (display lines, LED, buzzer, and on a grant the
// reader's output), and Open, when set, opens a gate wired elsewhere (a
// GPIO relay).
type Gate struct {
	bus    atomic.Pointer[Bus]
	addr   byte
	reader atomic.Pointer[edge.Reader]
	// Output is the reader's output pulsed on a grant, -1 for none.
	Output int
	// Pulse is how long a grant holds the gate open.
	Pulse time.Duration
	// Open, when set, is called on a grant besides the output.
	Open func(ctx context.Context) error
}

// NewGate returns the gate of the reader at addr; r describes it until its
// discovery tells the display size (SetCaps).
func NewGate(bus *Bus, addr byte, r edge.Reader, output int, pulse time.Duration) *Gate {
	g := &Gate{addr: addr, Output: output, Pulse: pulse}
	g.bus.Store(bus)
	g.reader.Store(&r)
	return g
}

// SetBus moves the gate to a new bus on the same line, opened after the
// previous one failed (a USB adapter unplugged and plugged in again).
func (g *Gate) SetBus(b *Bus) { g.bus.Store(b) }

// Addr is the reader's OSDP address.
func (g *Gate) Addr() byte { return g.addr }

// Reader implements edge.Gate.
func (g *Gate) Reader() edge.Reader { return *g.reader.Load() }

// SetCaps records the display size the reader reported in its discovery.
func (g *Gate) SetCaps(c Capabilities) {
	r := *g.reader.Load()
	r.Rows, r.Cols = c.Rows, c.Cols
	g.reader.Store(&r)
}

// Show implements edge.Gate: it queues the answer for the reader's next
// slot on the line and, on a grant, calls Open.
func (g *Gate) Show(ctx context.Context, d *edge.Decision) error {
	a := Answer{
		Lines: d.Display.Lines(),
		LED:   LED{Color: ledColor(d.LED.Color), On: d.LED.On, Off: d.LED.Off, For: DefaultHold},
		Beep:  Beep{On: d.Beep.On, Off: d.Beep.Off, Count: d.Beep.Count},
	}
	if d.Grant && g.Output >= 0 {
		a.Output = Pulse{Output: byte(g.Output), For: g.Pulse}
	}
	err := g.bus.Load().Answer(g.addr, a)
	if d.Grant && g.Open != nil {
		if openErr := g.Open(ctx); openErr != nil && err == nil {
			err = openErr
		}
	}
	return err
}

func ledColor(c edge.Color) Color {
	switch c {
	case edge.Red:
		return Red
	case edge.Green:
		return Green
	case edge.Amber:
		return Amber
	}
	return Black
}

// Remote carries out a cloud command at this reader: it shows lines for
// hold and, when open is set, opens the gate once (a staff override).
func (g *Gate) Remote(ctx context.Context, lines []string, hold time.Duration, open bool) error {
	a := Answer{Lines: lines, Hold: hold}
	if open {
		a.LED = LED{Color: Green, For: DefaultHold}
		if g.Output >= 0 {
			a.Output = Pulse{Output: byte(g.Output), For: g.Pulse}
		}
	}
	err := g.bus.Load().Answer(g.addr, a)
	if open && g.Open != nil {
		if openErr := g.Open(ctx); openErr != nil && err == nil {
			err = openErr
		}
	}
	return err
}
