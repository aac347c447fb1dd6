package sim_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"varco.dev/firmware-sim/sim"
	"varco.dev/protocol/osdp"
	"varco.dev/protocol/wiegand"
)

// An end-to-end test of varco-edge: two readers on a pseudo-terminal, the
// edge started on s.Path(), a member with a blocking action badges at
// reader 1.
func Example() {
	s, err := sim.New(sim.Config{Readers: sim.Readers(2)})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	// ... start varco-edge with its serial port at s.Path() ...

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := s.Wait(ctx, sim.All(sim.Polled(1, 1), sim.Polled(2, 1))); err != nil {
		log.Fatal("the edge does not poll: ", err)
	}
	mark := s.Mark()
	if err := s.PresentCard(1, wiegand.H10301, 123, 4567); err != nil {
		log.Fatal(err)
	}
	st, err := s.WaitSince(ctx, mark, sim.All(sim.Shows(1, "Please see reception"), sim.LEDColor(1, osdp.Red)))
	if err != nil {
		log.Fatal(err) // the error shows what each reader displayed instead
	}
	fmt.Println(st)
	// The gate stays closed: it does not open for a second.
	hold, stop := context.WithTimeout(ctx, time.Second)
	defer stop()
	if err := s.Never(hold, mark, sim.GateOpened(1, 1)); err != nil {
		log.Fatal(err)
	}
}
