// Command varco-edge is the access-control daemon of a turnstile controller:
// it reads badges from OSDP readers (serial) and Wiegand readers (GPIO),
// decides from its local cache, answers on the reader, opens the gate and
// journals every passage.
//
//	varco-edge run --config edge.toml           run the daemon
//	varco-edge check-config --config edge.toml  check a configuration and exit
//	varco-edge import --config edge.toml FILE   fill the cache from access records
//	varco-edge version                          print the version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"varco.dev/edge/config"
	"varco.dev/protocol"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "varco-edge:", err)
		}
		os.Exit(exitCode(err))
	}
}

const usage = `usage: varco-edge <command> [flags]

commands:
  run            run the daemon
  check-config   check the configuration file and exit
  import FILE    fill the cache from access records (NDJSON or a sync snapshot)
  version        print the version (also --version)

flags:
  --config FILE  the configuration file (default /etc/varco-edge/edge.toml)
`

// usageError is a bad command line: exit status 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func exitCode(err error) int {
	var u usageError
	if errors.As(err, &u) || errors.Is(err, flag.ErrHelp) {
		return 2
	}
	return 1
}

// run dispatches a command line; main and the tests call it.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return usageError{"no command"}
	}
	cmd, args := args[0], args[1:]
	switch cmd {
	case "version", "--version", "-version":
		fmt.Fprintf(stdout, "varco-edge %s\n", protocol.Version)
		return nil
	case "help", "--help", "-h":
		fmt.Fprint(stdout, usage)
		return nil
	}

	fs := flag.NewFlagSet("varco-edge "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "/etc/varco-edge/edge.toml", "configuration file")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err.Error()}
	}
	switch cmd {
	case "run", "check-config":
		if fs.NArg() != 0 {
			return usageError{fmt.Sprintf("%s takes no arguments, got %q", cmd, fs.Args())}
		}
	case "import":
		if fs.NArg() != 1 {
			return usageError{"usage: varco-edge import [--config FILE] FILE"}
		}
	default:
		fmt.Fprint(stderr, usage)
		return usageError{fmt.Sprintf("unknown command %q", cmd)}
	}

	cfg, err := config.Load(*path)
	if err != nil {
		return err
	}
	switch cmd {
	case "check-config":
		fmt.Fprintln(stdout, summary(cfg))
		return nil
	case "import":
		return importFile(ctx, cfg, fs.Arg(0), stderr)
	}
	m, err := Open(ctx, cfg, stderr)
	if err != nil {
		return err
	}
	runErr := m.Run(ctx)
	return errors.Join(runErr, m.Close())
}

// summary is check-config's one line about a valid configuration.
func summary(cfg *config.Config) string {
	readers := 0
	for _, p := range cfg.Serial {
		readers += len(p.Readers)
	}
	return fmt.Sprintf("config ok: edge %s of %s/%s, %d serial line(s) with %d OSDP reader(s), %d Wiegand reader(s)",
		cfg.EdgeID, cfg.Tenant, cfg.Site, len(cfg.Serial), readers, len(cfg.Wiegand))
}
