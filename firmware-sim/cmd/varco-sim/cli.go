package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"varco.dev/firmware-sim/sim"
	"varco.dev/protocol"
)

const usage = `usage: varco-sim COMMAND [flags]

  run       readers on a pseudo-terminal, physical events typed on stdin
  scenario  run a scenario file against the CP on the line
  load      badges at a steady rate; throughput and latency percentiles
  version   print the version

"varco-sim COMMAND -h" lists a command's flags.
`

// Exit codes.
const (
	exitOK    = 0
	exitFail  = 1 // a scenario failed, the CP exited, the line broke
	exitUsage = 2
)

// Main runs varco-sim with args (without the program name) and returns the
// exit code.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	cmd, args := args[0], args[1:]
	var err error
	switch cmd {
	case "version", "--version", "-version":
		fmt.Fprintf(stdout, "varco-sim %s\n", protocol.Version)
		return exitOK
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	case "run":
		err = runCmd(ctx, args, stdin, stdout, stderr)
	case "scenario":
		err = scenarioCmd(ctx, args, stdout, stderr)
	case "load":
		err = loadCmd(ctx, args, stdout, stderr)
	default:
		fmt.Fprintf(stderr, "varco-sim: unknown command %q\n\n%s", cmd, usage)
		return exitUsage
	}
	var ue usageError
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "varco-sim %s: %v\n", cmd, err)
		return exitUsage
	}
	fmt.Fprintf(stderr, "varco-sim %s: %v\n", cmd, err)
	return exitFail
}

// usageError is a mistake on the command line.
type usageError struct{ error }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// parseFlags parses flags and positional arguments in any order.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, usageError{err}
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos, args = append(pos, fs.Arg(0)), fs.Args()[1:]
	}
}

// lineFlags are the flags of every command that opens a line.
type lineFlags struct {
	link    string
	baud    int
	pacing  bool
	exec    string
	verbose bool
}

func (l *lineFlags) register(fs *flag.FlagSet, baud bool) {
	fs.StringVar(&l.link, "link", "", "make a symlink to the pseudo-terminal at `PATH`")
	if baud {
		fs.IntVar(&l.baud, "baud", 115200, "line rate `B`, for pacing and wire times")
		fs.BoolVar(&l.pacing, "baud-pacing", false, "deliver bytes at the baud rate, 10 bit times a byte")
	}
	fs.StringVar(&l.exec, "exec", "", "start the CP with the shell command `CMD`; {pty} is replaced by the pseudo-terminal's path")
	fs.BoolVar(&l.verbose, "v", false, "log every exchange on stderr")
}

// config applies the flags to a simulator configuration.
func (l *lineFlags) config(cfg sim.Config, stderr io.Writer) sim.Config {
	cfg.Link = l.link
	if l.baud != 0 {
		cfg.Baud, cfg.BaudPacing = l.baud, l.pacing
	}
	if l.verbose {
		cfg.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return cfg
}

// startCP starts the --exec command, if any, and returns a context that
// ends with the CP, and a function that stops the CP.
func (l *lineFlags) startCP(ctx context.Context, s *sim.Sim, out io.Writer) (context.Context, func() error, error) {
	if l.exec == "" {
		return ctx, func() error { return nil }, nil
	}
	cp, err := startCP(l.exec, s.Link(), out)
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	go func() { // ends with the CP or with ctx

		select {
		case <-cp.exited:
			cancel(fmt.Errorf("the CP exited: %v", cp.err))
		case <-ctx.Done():
		}
	}()
	return ctx, func() error { err := cp.stop(); cancel(nil); return err }, nil
}

// cp is a CP process started with --exec.
type cp struct {
	cmd    *exec.Cmd
	exited chan struct{}
	err    error // how it exited, once exited is closed
}

func startCP(cmdline, path string, out io.Writer) (*cp, error) {
	line := strings.ReplaceAll(cmdline, "{pty}", shellQuote(path))
	cmd := exec.Command("/bin/sh", "-c", line)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = append(os.Environ(), "VARCO_SIM_PTY="+path)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // stop it with what it starts
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the CP: %w", err)
	}
	c := &cp{cmd: cmd, exited: make(chan struct{})}
	go func() { c.err = cmd.Wait(); close(c.exited) }()
	return c, nil
}

// stop sends SIGTERM to the CP's process group, and SIGKILL after 5 s.
func (c *cp) stop() error {
	select {
	case <-c.exited:
		return c.err
	default:
	}
	pgid := -c.cmd.Process.Pid
	_ = syscall.Kill(pgid, syscall.SIGTERM)
	t := time.NewTimer(5 * time.Second)
	defer t.Stop()
	select {
	case <-c.exited:
		return nil // ended as asked
	case <-t.C:
		_ = syscall.Kill(pgid, syscall.SIGKILL)
		<-c.exited
		return errors.New("the CP ignored SIGTERM; killed")
	}
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// lockedWriter serialises the lines of several goroutines.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
