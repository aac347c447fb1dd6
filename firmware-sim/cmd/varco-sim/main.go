// Command varco-sim runs simulated OSDP readers and turnstiles on a
// pseudo-terminal, for varco-edge to open as its serial port.
//
//	varco-sim run [--readers N] [--link PATH] [--baud B] [--baud-pacing] [--exec CMD]
//	varco-sim scenario [--link PATH] [--exec CMD] FILE
//	varco-sim load --readers N --rate M --duration D (--cards FILE | --members K) [...]
//	varco-sim version
//
// run answers on the line and takes physical events on standard input
// (card, pin, power, late, busy, fault, expect, show, help, quit), printing
// every change of a display, LED, buzzer or gate. scenario runs a scenario
// file (see package varco.dev/firmware-sim/scenario) and exits 1 at the
// first expectation that fails. load presents badges at a steady rate and
// reports throughput and latency percentiles. With --exec, the simulator
// starts the CP itself: {pty} in the command line is replaced by the
// pseudo-terminal's path (also in $VARCO_SIM_PTY), and the CP is stopped
// with SIGTERM at the end. "varco-sim help" prints every flag.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := Main(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
