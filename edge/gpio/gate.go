package gpio

import (
	"context"
	"time"

	"varco.dev/edge"
)

// Gate is a Wiegand reader's gate as edge.Gatekeeper drives it. A Wiegand
// reader has no display and its LED is wired to itself, so a decision only
// opens the gate on a grant.
type Gate struct {
	reader edge.Reader
	open   func(ctx context.Context) error
}

// NewGate returns the gate of reader r, opened by open (Door.Grant, or a
// Relay's Pulse).
func NewGate(r edge.Reader, open func(ctx context.Context) error) *Gate {
	return &Gate{reader: r, open: open}
}

// Reader implements edge.Gate.
func (g *Gate) Reader() edge.Reader { return g.reader }

// Show implements edge.Gate.
func (g *Gate) Show(ctx context.Context, d *edge.Decision) error {
	if !d.Grant || g.open == nil {
		return nil
	}
	return g.open(ctx)
}

// Remote carries out a cloud command at this gate: a Wiegand reader has no
// display, so only open (a staff override) does anything.
func (g *Gate) Remote(ctx context.Context, _ []string, _ time.Duration, open bool) error {
	if !open || g.open == nil {
		return nil
	}
	return g.open(ctx)
}
