package gpio

import (
	"context"
	"errors"
	"time"

	"periph.io/x/conn/v3/gpio"
)

// Clock is where the package takes time from: SystemClock in production, a
// fake in tests (github.com/jonboulle/clockwork's FakeClock fits).
type Clock interface {
	Now() time.Time
	// After is time.After: the channel receives once d has passed.
	After(d time.Duration) <-chan time.Time
}

// SystemClock is the Clock of time.Now and time.After.
var SystemClock Clock = systemClock{}

type systemClock struct{}

func (systemClock) Now() time.Time                         { return time.Now() }
func (systemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// DefaultPoll is the default longest single wait for an edge (the Poll of
// WiegandConfig and DoorConfig). It bounds how long Run takes to return after
// its context is done, and the idle wake-ups: two per pin per second.
const DefaultPoll = 500 * time.Millisecond

// errRunning is returned by a second concurrent Run.
var errRunning = errors.New("gpio: Run called twice")

// watch waits for edges on pin until ctx is done. Before each wait it calls
// wait for the longest time to wait (at least 1 µs is waited: WaitForEdge
// treats 0 and negative timeouts specially); after each wait it calls woke,
// with edge reporting whether an edge ended it.
func watch(ctx context.Context, pin gpio.PinIn, wait func() time.Duration, woke func(edge bool)) {
	for ctx.Err() == nil {
		woke(pin.WaitForEdge(max(wait(), time.Microsecond)))
	}
}

// nextWait is how long to wait for an edge: until deadline when there is one
// before poll, else poll.
func nextWait(now, deadline time.Time, ok bool, poll time.Duration) time.Duration {
	if ok {
		return min(deadline.Sub(now), poll)
	}
	return poll
}
