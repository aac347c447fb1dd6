// Command varco-demo runs varco end to end on one machine and tells its
// story: see package varco.dev/demo. make demo builds the programs and runs
// it.
//
//	varco-demo [--bin bin] [--work /tmp/varco-demo] [--stay]
//
// DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres) names a
// PostgreSQL where it may create and drop the database varco_demo; when none
// answers there, a throwaway cluster is started from the installed server
// binaries and removed at the end. Ctrl-C stops everything.
package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"varco.dev/demo"
)

func main() {
	cfg := demo.Config{Out: os.Stdout}
	flag.StringVar(&cfg.BinDir, "bin", "bin", "directory of varco-cloud and varco-edge")
	flag.StringVar(&cfg.WorkDir, "work", "/tmp/varco-demo", "work directory (emptied at start): configs, caches, logs")
	flag.BoolVar(&cfg.Stay, "stay", false, "keep everything running after the story, until Ctrl-C")
	flag.Parse()
	cfg.AdminURL = cmp.Or(os.Getenv("DATABASE_URL"), "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable")
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := demo.Run(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "\nvarco-demo:", err)
		os.Exit(1)
	}
}
