package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
	"varco.dev/firmware-sim/scenario"
	"varco.dev/firmware-sim/sim"
)

const runHelp = `commands (R is a reader's address):
  card R FORMAT [FC] CN   present a card: card 1 H10301 123 4567
  card R BITS VALUE       present raw bits: card 1 26 0x1ABCDE
  pin R KEYS              type keys: pin 1 1234#
  power R off|on          cut or restore the reader's power
  late R DURATION         answer late from now on: late 1 300ms (0 to stop)
  busy R N                answer the next N commands with BUSY
  fault R drop|corrupt|garble [N]   spoil the next N replies
  expect R ...            wait for what a scenario expects: expect 1 display "Welcome"
  show                    print every reader
  help                    this text
  quit                    stop (so does end of input on a terminal, or a signal)
`

// runCmd is "varco-sim run": an interactive line.
func runCmd(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var lf lineFlags
	lf.register(fs, true)
	readers := fs.Int("readers", 1, "`N` readers at addresses 1..N on the line")
	if pos, err := parseFlags(fs, args); err != nil {
		return err
	} else if len(pos) > 0 {
		return usagef("unexpected argument %q", pos[0])
	}
	if *readers < 1 || *readers > 126 {
		return usagef("--readers %d: want 1–126", *readers)
	}
	s, err := sim.New(lf.config(sim.Config{Readers: sim.Readers(*readers)}, stderr))
	if err != nil {
		return err
	}
	defer s.Close()
	out := &lockedWriter{w: stdout}
	fmt.Fprintln(out, s.Link())
	fmt.Fprintf(out, "# %d reader(s) at address 1..%d on %s; type help for commands\n", *readers, *readers, s.Path())

	ctx, stopCP, err := lf.startCP(ctx, s, stderr)
	if err != nil {
		return err
	}
	defer stopCP()
	ctx, cancel := context.WithCancel(ctx)
	watched := make(chan struct{})
	go func() { defer close(watched); watch(ctx, s, out) }()
	defer func() { cancel(); <-watched }()

	lines := make(chan string)
	go func() { // ends at the end of input; a blocked read on a terminal ends with the process
		defer close(lines)
		sc := bufio.NewScanner(stdin)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-ctx.Done():
				return
			}
		}
	}()
	runner := scenario.NewRunner(s, "stdin", 2*time.Second)
	for {
		var line string
		select {
		case <-ctx.Done():
			return cause(ctx)
		case l, ok := <-lines:
			if !ok {
				if isTerminal(stdin) {
					return nil
				}
				<-ctx.Done() // input ended, the line goes on until a signal
				return cause(ctx)
			}
			line = strings.TrimSpace(l)
		}
		switch line {
		case "":
			continue
		case "quit", "exit":
			return nil
		case "help":
			fmt.Fprint(out, runHelp)
			continue
		case "show":
			fmt.Fprintln(out, s.State())
			continue
		}
		st, err := scenario.ParseStep(line)
		if err == nil {
			err = runner.Do(ctx, st)
		}
		if err != nil {
			fmt.Fprintf(out, "error: %v\n", strings.TrimPrefix(err.Error(), "stdin:1: "))
		} else {
			fmt.Fprintln(out, "ok")
		}
	}
}

// cause returns why ctx ended, nil for a signal.
func cause(ctx context.Context) error {
	if err := context.Cause(ctx); err != context.Canceled {
		return err
	}
	return nil
}

// watch prints every reader whose visible state changes, until ctx ends.
func watch(ctx context.Context, s *sim.Sim, out io.Writer) {
	last := map[int]string{}
	for _, r := range s.State().Readers {
		last[r.Address] = r.String()
	}
	mark := s.Mark()
	differs := func(st sim.State) bool {
		for _, r := range st.Readers {
			if r.String() != last[r.Address] {
				return true
			}
		}
		return false
	}
	for {
		st, err := s.WaitSince(ctx, mark, differs)
		if err != nil {
			return
		}
		mark = st.Seq
		for _, r := range st.Readers {
			if now := r.String(); now != last[r.Address] {
				last[r.Address] = now
				fmt.Fprintf(out, "%s %s\n", st.At.Format("15:04:05.000"), now)
			}
		}
	}
}

func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
