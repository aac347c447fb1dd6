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

	"varco.dev/firmware-sim/load"
	"varco.dev/firmware-sim/sim"
	"varco.dev/protocol/wiegand"
)

// loadCmd is "varco-sim load".
func loadCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var lf lineFlags
	lf.register(fs, true)
	var (
		readers  = fs.Int("readers", 4, "`N` readers at addresses 1..N on the line")
		rate     = fs.Float64("rate", 10, "`M` badges per second, over all readers")
		duration = fs.Duration("duration", 30*time.Second, "how long to present badges")
		cards    = fs.String("cards", "", "credential `FILE`: one card a line, as \"H10301 123 4567\" or \"26 0x1ABCDE\"")
		members  = fs.Int("members", 0, "instead of --cards, `K` cards numbered --first.. in --format and --facility")
		format   = fs.String("format", "H10301", "card format of --members")
		facility = fs.Uint("facility", 1, "facility code of --members")
		first    = fs.Uint64("first", 1, "first card number of --members")
		timeout  = fs.Duration("answer-timeout", time.Second, "a badge without an answer by then counts as unanswered")
		connect  = fs.Duration("connect", 30*time.Second, "how long to wait for the CP to poll every reader")
		seed     = fs.Uint64("seed", 1, "seed of the choice of cards")
	)
	if pos, err := parseFlags(fs, args); err != nil {
		return err
	} else if len(pos) > 0 {
		return usagef("unexpected argument %q", pos[0])
	}
	if *readers < 1 || *readers > 126 {
		return usagef("--readers %d: want 1–126", *readers)
	}
	credentials, err := loadCards(*cards, *members, *format, uint32(*facility), *first)
	if err != nil {
		return usageError{err}
	}

	rec := load.NewRecorder()
	s, err := sim.New(lf.config(sim.Config{Readers: sim.Readers(*readers), Trace: rec.Trace}, stderr))
	if err != nil {
		return err
	}
	defer s.Close()
	fmt.Fprintf(stdout, "%s\n# waiting up to %v for a CP to poll readers 1..%d\n", s.Link(), *connect, *readers)
	ctx, stopCP, err := lf.startCP(ctx, s, stderr)
	if err != nil {
		return err
	}
	defer stopCP()
	var polled []func(sim.State) bool
	for a := 1; a <= *readers; a++ {
		polled = append(polled, sim.Polled(a, 1))
	}
	cctx, cancel := context.WithTimeout(ctx, *connect)
	_, err = s.Wait(cctx, sim.All(polled...))
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return cause(ctx)
		}
		return fmt.Errorf("no CP polled every reader within %v:\n%v", *connect, s.State())
	}
	rep, err := load.Run(ctx, s, rec, load.Config{
		Rate: *rate, Duration: *duration, Cards: credentials, AnswerTimeout: *timeout, Seed: *seed,
	})
	if err != nil {
		if ctx.Err() != nil {
			return cause(ctx)
		}
		return usageError{err}
	}
	_, err = rep.WriteTo(stdout)
	return err
}

// loadCards reads the credential file, or numbers members cards.
func loadCards(file string, members int, format string, facility uint32, first uint64) ([]wiegand.Frame, error) {
	switch {
	case (file == "") == (members == 0):
		return nil, fmt.Errorf("want one of --cards FILE or --members K")
	case members < 0:
		return nil, fmt.Errorf("--members %d", members)
	case members > 0:
		f, err := wiegand.ParseFormat(format)
		if err != nil || f == wiegand.Raw {
			return nil, fmt.Errorf("--format %q: want H10301, H10306, Corp1000, H10304 or H10302", format)
		}
		if last := first + uint64(members) - 1; last > f.MaxNumber() || facility > f.MaxFacility() {
			return nil, fmt.Errorf("%v holds card numbers up to %d and facility codes up to %d: %d members from %d do not fit",
				f, f.MaxNumber(), f.MaxFacility(), members, first)
		}
		cards := make([]wiegand.Frame, members)
		for i := range cards {
			var err error
			if cards[i], err = wiegand.Encode(f, facility, first+uint64(i)); err != nil {
				return nil, err
			}
		}
		return cards, nil
	}
	fh, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	var cards []wiegand.Frame
	sc := bufio.NewScanner(fh)
	for n := 1; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		if fields := strings.Fields(line); len(fields) > 0 {
			c, err := sim.ParseCard(fields)
			if err != nil {
				return nil, fmt.Errorf("%s:%d: %v", file, n, err)
			}
			cards = append(cards, c)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(cards) == 0 {
		return nil, fmt.Errorf("%s: no cards", file)
	}
	return cards, nil
}
