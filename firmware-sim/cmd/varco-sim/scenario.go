package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"varco.dev/firmware-sim/scenario"
	"varco.dev/firmware-sim/sim"
)

// scenarioCmd is "varco-sim scenario FILE".
func scenarioCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("scenario", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var lf lineFlags
	lf.register(fs, false) // baud and pacing come from the file
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("want one scenario file, got %d arguments", len(pos))
	}
	f, err := os.Open(pos[0])
	if err != nil {
		return usageError{err}
	}
	sc, err := scenario.Parse(pos[0], f)
	f.Close()
	if err != nil {
		return usageError{err}
	}
	s, err := sim.New(lf.config(sc.Config(), stderr))
	if err != nil {
		return err
	}
	defer s.Close()
	ctx, stopCP, err := lf.startCP(ctx, s, stderr)
	if err != nil {
		return err
	}
	err = sc.Run(ctx, s, stdout)
	if cerr := stopCP(); err == nil && cerr != nil {
		err = cerr
	}
	var failure *scenario.Failure
	switch {
	case errors.As(err, &failure):
		return fmt.Errorf("FAIL\n%v", failure)
	case err != nil:
		return cause(ctx)
	}
	fmt.Fprintf(stdout, "PASS %s: %d steps\n", pos[0], len(sc.Steps))
	return nil
}
