package scenario

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"varco.dev/firmware-sim/sim"
	"varco.dev/protocol/osdp"
)

// Failure is a step that did not go as the script says.
type Failure struct {
	File string
	Step Step
	Want string // what the step expected
	Got  string // what the reader showed instead
	Err  error  // for a step that could not be carried out
}

func (f *Failure) Error() string {
	if f.Err != nil {
		return fmt.Sprintf("%s:%d: %s: %v", f.File, f.Step.Line, f.Step.Source, f.Err)
	}
	return fmt.Sprintf("%s:%d: %s\n  want: %s\n  got:  %s", f.File, f.Step.Line, f.Step.Source, f.Want, f.Got)
}

// baseline is a reader as it was when the last card or PIN was presented
// there: what expectations count from.
type baseline struct {
	mark uint64
	r    sim.ReaderState
}

// Run runs the script against s, whose line a CP drives, and writes a line
// per step to out. It returns nil when every step went as written, a
// *Failure for the first that did not, or the context's error.
func (sc *Script) Run(ctx context.Context, s *sim.Sim, out io.Writer) error {
	if sc.Connect > 0 {
		if err := sc.connect(ctx, s, out); err != nil {
			return err
		}
	}
	r := NewRunner(s, sc.Name, sc.Timeout)
	for _, st := range sc.Steps {
		began := time.Now()
		err := r.Do(ctx, st)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			fmt.Fprintf(out, "FAIL %4d  %s\n", st.Line, st.Source)
			return err
		}
		took := ""
		if st.Verb == "expect" {
			took = fmt.Sprintf("  (%v)", time.Since(began).Round(100*time.Microsecond))
		}
		fmt.Fprintf(out, "ok   %4d  %s%s\n", st.Line, st.Source, took)
	}
	return nil
}

// Runner carries out steps one at a time on a Sim, remembering each
// reader's last card or PIN for the expectations that follow.
type Runner struct {
	sim     *sim.Sim
	file    string
	timeout time.Duration
	base    map[int]baseline
}

// NewRunner returns a runner whose expectations count from now and wait
// timeout unless a step says otherwise. file names the steps' source in
// failures.
func NewRunner(s *sim.Sim, file string, timeout time.Duration) *Runner {
	r := &Runner{sim: s, file: file, timeout: timeout, base: map[int]baseline{}}
	mark := s.Mark()
	for _, rs := range s.State().Readers {
		r.base[rs.Address] = baseline{mark, rs}
	}
	return r
}

// connect waits for the CP to poll every reader.
func (sc *Script) connect(ctx context.Context, s *sim.Sim, out io.Writer) error {
	var conds []func(sim.State) bool
	var addrs []string
	for _, r := range sc.Readers {
		conds = append(conds, sim.Polled(int(r.Address), 1))
		addrs = append(addrs, fmt.Sprint(r.Address))
	}
	fmt.Fprintf(out, "waiting up to %v for a CP to poll reader %s on %s\n", sc.Connect, strings.Join(addrs, ", "), s.Link())
	cctx, cancel := context.WithTimeout(ctx, sc.Connect)
	defer cancel()
	if _, err := s.Wait(cctx, sim.All(conds...)); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var we *sim.WaitError
		errors.As(err, &we)
		return &Failure{File: sc.Name, Step: Step{Line: 0, Source: "connect"},
			Want: fmt.Sprintf("a CP polling every reader within %v", sc.Connect), Got: describe(we)}
	}
	return nil
}

func describe(we *sim.WaitError) string {
	if we == nil {
		return "?"
	}
	return strings.ReplaceAll(we.Last.String(), "\n", "\n        ")
}

// Do carries out one step. It returns a *Failure for a step that did not go
// as written, or the context's error.
func (rn *Runner) Do(ctx context.Context, st Step) error {
	s, base := rn.sim, rn.base
	fail := func(err error) error {
		if err == nil {
			return nil
		}
		return &Failure{File: rn.file, Step: st, Err: err}
	}
	r := st.Reader
	switch st.Verb {
	case "card", "pin":
		mark := s.Mark()
		cur, err := s.Reader(r)
		if err != nil {
			return fail(err)
		}
		if st.Verb == "card" {
			err = s.PresentBits(r, st.Card)
		} else {
			err = s.TypePIN(r, st.Keys)
		}
		base[r] = baseline{mark, cur}
		return fail(err)
	case "sleep":
		t := time.NewTimer(st.D)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
		}
		return nil
	case "power":
		if st.On {
			return fail(s.PowerOn(r))
		}
		return fail(s.PowerOff(r))
	case "late":
		return fail(s.AnswerLate(r, st.D))
	case "busy":
		return fail(s.Busy(r, st.N))
	case "fault":
		return fail(s.Inject(r, st.Fault, st.N))
	case "expect":
		b, ok := base[r]
		if !ok {
			return fail(fmt.Errorf("%w %d", sim.ErrNoReader, r))
		}
		return rn.expect(ctx, st, b)
	}
	return fail(fmt.Errorf("unknown step %q", st.Verb))
}

// expect waits for st's expectation at its reader, counting from b.
func (rn *Runner) expect(ctx context.Context, st Step, b baseline) error {
	s := rn.sim
	limit := cmp.Or(st.D, rn.timeout)
	wctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	on := func(cond func(r sim.ReaderState) bool) func(sim.State) bool {
		return func(s sim.State) bool { r, ok := s.Reader(st.Reader); return ok && cond(r) }
	}
	opened := func(r sim.ReaderState) bool { return r.Gate.Opened > b.r.Gate.Opened }
	var (
		want string
		cond func(sim.ReaderState) bool
		mark = b.mark
	)
	switch st.What {
	case "display":
		want = fmt.Sprintf("display showing %q", st.Text)
		cond = func(r sim.ReaderState) bool { return r.Counters.Texts > b.r.Counters.Texts && r.Shows(st.Text) }
	case "led":
		want, cond = "LED "+st.Color.String(), ledSet(b, st.Color)
	case "buzzer":
		want, cond = "the buzzer sounding", func(r sim.ReaderState) bool { return r.Buzzer.Beeps > b.r.Buzzer.Beeps }
	case "grant", "gate-open":
		want, cond = "the gate opening", opened
		if st.What == "grant" && !b.r.Gate.Present {
			want, cond = "LED green", ledSet(b, osdp.Green)
		}
	case "deny":
		want = "LED red, the gate closed"
		cond = func(r sim.ReaderState) bool { return ledSet(b, osdp.Red)(r) && !opened(r) }
	case "gate-closed":
		if err := s.Never(wctx, mark, on(opened)); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			cur, _ := s.Reader(st.Reader)
			return &Failure{File: rn.file, Step: st, Want: fmt.Sprintf("the gate closed for %v", limit), Got: "the gate opened: " + cur.String()}
		}
		return ctx.Err()
	case "polled":
		cur, _ := s.Reader(st.Reader)
		want, mark = "a POLL", s.Mark()
		cond = func(r sim.ReaderState) bool { return r.Counters.Polls > cur.Counters.Polls }
	}
	if _, err := s.WaitSince(wctx, mark, on(cond)); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var we *sim.WaitError
		if !errors.As(err, &we) {
			return &Failure{File: rn.file, Step: st, Err: err}
		}
		r, _ := we.Last.Reader(st.Reader)
		return &Failure{File: rn.file, Step: st, Want: want + " within " + limit.String(), Got: r.String()}
	}
	return nil
}

// ledSet holds when the CP has set the LEDs since b and the first one shows c.
func ledSet(b baseline, c osdp.Color) func(sim.ReaderState) bool {
	return func(r sim.ReaderState) bool {
		return r.Counters.LEDs > b.r.Counters.LEDs && len(r.LEDs) > 0 && r.LED().Color == c
	}
}
