package sim

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"varco.dev/firmware-sim/pd"
	"varco.dev/protocol/osdp"
)

// State is the line at one moment: what a person sees at each reader.
type State struct {
	At      time.Time
	Seq     uint64        // number of the last change; see Sim.Mark
	Readers []ReaderState // in configuration order
}

// ReaderState is one reader and its gate. The embedded pd.State has the
// display, LEDs, buzzer, outputs and counters.
type ReaderState struct {
	Address int // configured address: the reader's name
	pd.State
	Gate Gate
}

// Reader returns the reader at addr; ok is false if there is none.
func (s State) Reader(addr int) (r ReaderState, ok bool) {
	for _, r := range s.Readers {
		if r.Address == addr {
			return r, true
		}
	}
	return ReaderState{}, false
}

// Text returns the display as one string, rows joined with newlines.
func (r ReaderState) Text() string { return strings.Join(r.Display, "\n") }

// Shows reports whether the display shows text: in one row, or across rows
// the way a CP splits a message (at a space, or hard at the last column).
// Runs of spaces match one space.
func (r ReaderState) Shows(text string) bool {
	want := squeeze(text)
	return strings.Contains(squeeze(strings.Join(r.Display, " ")), want) ||
		strings.Contains(squeeze(strings.Join(r.Display, "")), want)
}

func squeeze(s string) string { return strings.Join(strings.Fields(s), " ") }

// LED returns the state of the reader's first LED, the zero LEDState (black)
// if it has none.
func (r ReaderState) LED() pd.LEDState {
	if len(r.LEDs) == 0 {
		return pd.LEDState{}
	}
	return r.LEDs[0]
}

// String describes what a person sees, for logs and failure messages:
//
//	reader 1: "Please see recep" "tion" (temporary) · LED red · buzzer off · gate closed, 0 passages
func (r ReaderState) String() string {
	head := fmt.Sprintf("reader %d", r.Address)
	if !r.Powered {
		return head + ": powered off"
	}
	if r.Addr != byte(r.Address) {
		head += fmt.Sprintf(" (now at address %d)", r.Addr)
	}
	var parts []string
	if r.Display != nil {
		rows := make([]string, len(r.Display))
		for i, row := range r.Display {
			rows[i] = strconv.Quote(row)
		}
		if r.Temporary {
			rows = append(rows, "(temporary)")
		}
		parts = append(parts, strings.Join(rows, " "))
	}
	for i, l := range r.LEDs {
		led := "LED"
		if len(r.LEDs) > 1 {
			led += " " + strconv.Itoa(i)
		}
		led += " " + l.Color.String()
		if l.Flashing {
			led += " flashing"
		}
		parts = append(parts, led)
	}
	parts = append(parts, map[bool]string{true: "buzzer on", false: "buzzer off"}[r.Buzzer.Sounding])
	if r.Gate.Present {
		parts = append(parts, fmt.Sprintf("gate %s, %d passages", map[bool]string{true: "open", false: "closed"}[r.Gate.Open], r.Gate.Opened))
	}
	return head + ": " + strings.Join(parts, " · ")
}

func (s State) String() string {
	var b strings.Builder
	for i, r := range s.Readers {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(r.String())
	}
	return b.String()
}

// State returns the line as it is now.
func (s *Sim) State() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stateLocked()
}

// Reader returns the reader at addr as it is now.
func (s *Sim) Reader(addr int) (ReaderState, error) {
	r, ok := s.State().Reader(addr)
	if !ok {
		return r, fmt.Errorf("%w %d", ErrNoReader, addr)
	}
	return r, nil
}

// Display returns the rows of the display at addr as a person reads them
// now, nil if there is no such reader or display.
func (s *Sim) Display(addr int) []string {
	r, _ := s.State().Reader(addr)
	return r.Display
}

// LED returns the first LED of the reader at addr.
func (s *Sim) LED(addr int) pd.LEDState {
	r, _ := s.State().Reader(addr)
	return r.LED()
}

// Buzzer returns the buzzer of the reader at addr.
func (s *Sim) Buzzer(addr int) pd.BuzzerState {
	r, _ := s.State().Reader(addr)
	return r.Buzzer
}

// Outputs returns the outputs of the reader at addr.
func (s *Sim) Outputs(addr int) []pd.OutputState {
	r, _ := s.State().Reader(addr)
	return r.Outputs
}

// Gate returns the turnstile of the reader at addr.
func (s *Sim) Gate(addr int) Gate {
	r, _ := s.State().Reader(addr)
	return r.Gate
}

func (s *Sim) stateLocked() State {
	now := s.now()
	st := State{At: now, Seq: s.seq, Readers: make([]ReaderState, len(s.readers))}
	for i, r := range s.readers {
		ds := r.dev.State(now)
		st.Readers[i] = ReaderState{Address: r.addr, State: ds, Gate: gateOf(ds)}
	}
	return st
}

// histLen bounds the changes kept for WaitSince.
const histLen = 256

// changeLocked records a change: the state after it is kept when it is
// visible (not a mere POLL), and waiters look again.
func (s *Sim) changeLocked(visible bool) {
	if s.closed {
		return
	}
	s.seq++
	if visible {
		if len(s.hist) == histLen {
			s.hist = append(s.hist[:0], s.hist[1:]...)
		}
		s.hist = append(s.hist, s.stateLocked())
	}
	close(s.changed)
	s.changed = make(chan struct{})
}

// Tick makes waiters look at the state again. Call it after moving the
// clock injected with Config.Now.
func (s *Sim) Tick() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.changeLocked(false)
}

// Mark returns the number of the last change, for WaitSince.
func (s *Sim) Mark() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seq
}

// Wait blocks until cond holds for the state of the line, and returns that
// state. It tests the current state first, then the state after each
// change, in order, and when a timer (temporary text, LED pattern, output
// pulse) runs out. It fails with a *WaitError when ctx ends first, or
// ErrClosed when the Sim is closed.
func (s *Sim) Wait(ctx context.Context, cond func(State) bool) (State, error) {
	return s.WaitSince(ctx, s.Mark(), cond)
}

// WaitSince is Wait that also tests the states after each visible change
// since mark (from Mark), the last 256 of them at most: a test takes a mark,
// presents a card and waits for what the CP did about it, however fast the
// CP was.
func (s *Sim) WaitSince(ctx context.Context, mark uint64, cond func(State) bool) (State, error) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		s.mu.Lock()
		var past []State
		for _, h := range s.hist {
			if h.Seq > mark {
				past = append(past, h)
			}
		}
		live, changed, closed := s.stateLocked(), s.changed, s.closed
		var next time.Time
		for _, r := range s.readers {
			if t := r.dev.NextChange(live.At); !t.IsZero() && (next.IsZero() || t.Before(next)) {
				next = t
			}
		}
		s.mu.Unlock()

		mark = live.Seq
		for _, st := range append(past, live) {
			if cond(st) {
				return st, nil
			}
		}
		if closed {
			return live, ErrClosed
		}
		var wake <-chan time.Time
		if !next.IsZero() {
			timer.Reset(next.Sub(live.At))
			wake = timer.C
		}
		select {
		case <-ctx.Done():
			return live, &WaitError{Err: context.Cause(ctx), Last: live}
		case <-changed:
		case <-wake:
		}
		timer.Stop()
	}
}

// Never checks that cond does not hold, in any state since mark, until
// ctx ends: "the gate stays closed for a second". It returns nil when ctx
// ends, and an error that shows the state otherwise.
func (s *Sim) Never(ctx context.Context, mark uint64, cond func(State) bool) error {
	st, err := s.WaitSince(ctx, mark, cond)
	var we *WaitError
	switch {
	case errors.As(err, &we):
		return nil
	case err != nil:
		return err
	}
	return fmt.Errorf("sim: the condition held; the line:\n%s", st)
}

// WaitError is a condition that did not hold in time, with the last state
// seen.
type WaitError struct {
	Err  error // why the wait ended: the context's cause
	Last State
}

func (e *WaitError) Error() string {
	return fmt.Sprintf("sim: condition not met (%v); the line:\n%s", e.Err, e.Last)
}

func (e *WaitError) Unwrap() error { return e.Err }

// Conditions for Wait, each about the reader at addr. A missing reader
// meets none of them.

// Shows holds when the display at addr shows text (see ReaderState.Shows).
func Shows(addr int, text string) func(State) bool {
	return func(s State) bool { r, ok := s.Reader(addr); return ok && r.Shows(text) }
}

// LEDColor holds when the first LED at addr shows colour c.
func LEDColor(addr int, c osdp.Color) func(State) bool {
	return func(s State) bool { r, ok := s.Reader(addr); return ok && r.Powered && r.LED().Color == c }
}

// GateOpened holds when the gate at addr has opened at least n times.
func GateOpened(addr int, n uint64) func(State) bool {
	return func(s State) bool { r, ok := s.Reader(addr); return ok && r.Gate.Opened >= n }
}

// Polled holds when the reader at addr has answered at least n POLLs.
func Polled(addr int, n uint64) func(State) bool {
	return func(s State) bool { r, ok := s.Reader(addr); return ok && r.Counters.Polls >= n }
}

// All holds when every one of conds holds in the same state.
func All(conds ...func(State) bool) func(State) bool {
	return func(s State) bool {
		for _, c := range conds {
			if !c(s) {
				return false
			}
		}
		return true
	}
}
