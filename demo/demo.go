// Package demo is varco's one-command demo (make demo): it starts
// varco-cloud with its embedded MQTT broker on a PostgreSQL database, seeds
// a club through the API, starts two simulated OSDP readers on a
// pseudo-terminal (varco-sim) and varco-edge on that line, then tells the
// story the product exists for: a member passes; staff create a
// message-and-block CRM action; the member is stopped at the turnstile with
// its text; staff close it; the member passes again. Every step is checked:
// the demo fails, with the logs' tails, if the system does not do what the
// story says.
//
// It uses only the programs' real interfaces: the cloud's HTTP API, the
// edge's configuration file and its /healthz, and the readers' OSDP line.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"varco.dev/firmware-sim/scenario"
	"varco.dev/firmware-sim/sim"
)

// Config configures a demo run.
type Config struct {
	// BinDir holds varco-cloud and varco-edge (make build puts them in bin/).
	BinDir string
	// WorkDir is where the demo keeps its files (configs, caches, logs); it
	// is emptied at start.
	WorkDir string
	// AdminURL is a PostgreSQL URL with the right to create databases.
	AdminURL string
	// Stay keeps everything running after the story, until ctx is done
	// (Ctrl-C), for a look at the API, the edge's /metrics and the logs.
	Stay bool
	Out  io.Writer

	// For the system tests: Throwaway always starts a throwaway PostgreSQL
	// cluster (so that a test may restart it); Pulse is how long a grant
	// holds a gate open (1s when zero).
	Throwaway bool
	Pulse     time.Duration
	// Database is the name of the demo's database; varco_demo when empty.
	Database string
}

// Run runs the demo and stops everything it started before it returns,
// also when ctx is cancelled midway.
func Run(ctx context.Context, cfg Config) (err error) {
	d := &run{cfg: cfg, out: cfg.Out}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if cerr := d.cleanup(cctx); cerr != nil {
			err = errors.Join(err, cerr)
		}
		if err == nil || ctx.Err() != nil {
			return
		}
		for _, name := range []string{"varco-cloud", "varco-edge"} {
			log := filepath.Join(cfg.WorkDir, name+".log")
			fmt.Fprintf(d.out, "\n%s's log (%s) ends with:\n%s\n", name, log, tail(log, 20))
		}
	}()
	if err := d.prepare(ctx); err != nil {
		return err
	}
	if err := d.story(ctx); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return err
	}
	if cfg.Stay {
		d.say("everything keeps running: the API on %s (POST /api/v1/auth/login as %s, password %q),", d.api.base, adminEmail, adminPassword)
		d.say("the edge's /healthz and /metrics on http://%s, logs in %s; Ctrl-C stops it all", d.edgeHTTP, cfg.WorkDir)
		<-ctx.Done()
	}
	return nil
}

// run is the state of one demo run.
type run struct {
	cfg      Config
	out      io.Writer
	step     int
	cleanups []func(context.Context) error // in the order of what they undo
	cloud    *process                      // running, or nil
	edge     *process                      // running, or nil
	cloudEnv []string                      // varco-cloud's environment
	// edgeAccount, when set, gives the edge its broker and password
	// instead of the cloud's embedded broker (a test's external broker).
	edgeAccount func(context.Context, edgeConfig) (broker, password string, err error)

	api      *api
	edgeHTTP string
	club     club
	sim      *sim.Sim
	runner   *scenario.Runner
	db       *database
}

// heading starts a numbered step of the story.
func (d *run) heading(format string, args ...any) {
	d.step++
	fmt.Fprintf(d.out, "\n[%d] %s\n", d.step, fmt.Sprintf(format, args...))
}

// say prints a line under the current step.
func (d *run) say(format string, args ...any) {
	fmt.Fprintf(d.out, "    %s\n", fmt.Sprintf(format, args...))
}

// onCleanup registers f to run at cleanup, before what was registered earlier.
func (d *run) onCleanup(f func(context.Context) error) { d.cleanups = append(d.cleanups, f) }

func (d *run) cleanup(ctx context.Context) error {
	if len(d.cleanups) > 0 {
		fmt.Fprintf(d.out, "\nstopping: ")
	}
	var errs []error
	for i := len(d.cleanups) - 1; i >= 0; i-- {
		errs = append(errs, d.cleanups[i](ctx))
	}
	if len(d.cleanups) > 0 {
		fmt.Fprintln(d.out, "done, nothing left running.")
	}
	d.cleanups = nil
	return errors.Join(errs...)
}

// startProcess starts a program from BinDir; its output is appended to
// its log in the work directory.
func (d *run) startProcess(name string, args, env []string) (*process, error) {
	bin := filepath.Join(d.cfg.BinDir, name)
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("%s is missing (%w): run `make build` first, or `make demo`, which builds", bin, err)
	}
	return start(name, bin, args, env, d.cfg.WorkDir)
}

// stopProcesses stops the edge, then the cloud, whichever runs; at cleanup.
func (d *run) stopProcesses(context.Context) error {
	return errors.Join(d.stopProcess(&d.edge), d.stopProcess(&d.cloud))
}

// stopProcess stops *p if it runs, and forgets it.
func (d *run) stopProcess(p **process) error {
	if *p == nil {
		return nil
	}
	fmt.Fprintf(d.out, "%s ", (*p).name)
	err := (*p).stop(10 * time.Second)
	*p = nil
	return err
}

// waitFor polls cond every interval until it returns true, an error, or
// timeout passes; what names the awaited thing in the error. The processes
// are checked too: a crashed cloud or edge ends the wait at once.
func (d *run) waitFor(ctx context.Context, what string, timeout, interval time.Duration, cond func(context.Context) (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		for _, p := range []*process{d.cloud, d.edge} {
			if p == nil {
				continue
			}
			if err := p.exited(); err != nil {
				return fmt.Errorf("waiting for %s: %w", what, err)
			}
		}
		ok, err := cond(ctx)
		if ok {
			return nil
		}
		if err != nil {
			last = err
		}
		select {
		case <-ctx.Done():
			if last != nil {
				return fmt.Errorf("%s did not happen within %v: %w", what, timeout, last)
			}
			return fmt.Errorf("%s did not happen within %v", what, timeout)
		case <-time.After(interval):
		}
	}
}
