package postgres

import (
	"context"
	"sync"
	"time"
)

// worker is the background loop shared by the job services (member imports,
// communications): one goroutine, owned by the service's Start and Stop,
// that runs the service's pending jobs when kicked (a job was queued or
// released in this process) and every poll interval (jobs queued by another
// replica, or left by a dead process whose lease expired).
type worker struct {
	kick chan struct{}

	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
}

func newWorker() worker { return worker{kick: make(chan struct{}, 1)} }

// notify wakes the loop without blocking.
func (w *worker) notify() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// start runs runPending in the background until stop or until ctx ends.
// Starting a started worker does nothing.
func (w *worker) start(ctx context.Context, poll time.Duration, runPending func(ctx context.Context)) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done != nil {
		return
	}
	ctx, w.cancel = context.WithCancel(ctx)
	w.done = make(chan struct{})
	go func(done chan struct{}) {
		defer close(done)
		tick := time.NewTicker(poll)
		defer tick.Stop()
		for {
			runPending(ctx)
			select {
			case <-ctx.Done():
				return
			case <-w.kick:
			case <-tick.C:
			}
		}
	}(w.done)
}

// stop cancels the loop and waits for it. It is safe on a worker that was
// not started.
func (w *worker) stop() {
	w.mu.Lock()
	cancel, done := w.cancel, w.done
	w.cancel, w.done = nil, nil
	w.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	<-done
}
