package load

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"time"

	"varco.dev/firmware-sim/sim"
	"varco.dev/protocol/osdp"
	"varco.dev/protocol/wiegand"
)

// Recorder pairs each badge's RAW reply with the CP's answer. Its Trace
// method goes into sim.Config.Trace.
type Recorder struct {
	mu         sync.Mutex
	pending    map[int]*visit // by reader address
	samples    []time.Duration
	wire       []int // bytes on the wire of each sample's exchange: RAW + answer
	unanswered int
}

// visit is one badge awaiting its answer.
type visit struct {
	presented time.Time
	rawAt     time.Time // when the RAW reply started on the wire; zero until then
	rawLen    int
}

// NewRecorder returns an empty recorder.
func NewRecorder() *Recorder { return &Recorder{pending: map[int]*visit{}} }

// Trace takes the simulator's events.
func (r *Recorder) Trace(ev sim.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	v := r.pending[ev.Addr]
	if v == nil {
		return
	}
	switch {
	case ev.Kind == sim.Sent && ev.Code == osdp.ReplyRaw && v.rawAt.IsZero():
		v.rawAt, v.rawLen = ev.At, ev.Len
	case ev.Kind == sim.Received && answers(ev.Code) && !v.rawAt.IsZero():
		r.samples = append(r.samples, ev.At.Sub(v.rawAt))
		r.wire = append(r.wire, v.rawLen+ev.Len)
		delete(r.pending, ev.Addr)
	}
}

// answers reports whether a command code is the CP's answer to a badge.
func answers(code byte) bool {
	return code == osdp.CmdLED || code == osdp.CmdText || code == osdp.CmdOut
}

// present starts a visit at addr, unless one is pending there.
func (r *Recorder) present(addr int, at time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.pending[addr] != nil {
		return false
	}
	r.pending[addr] = &visit{presented: at}
	return true
}

// cancel drops the visit at addr: the card could not be presented.
func (r *Recorder) cancel(addr int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.pending, addr)
}

// expire counts the visits presented before cutoff as unanswered, and
// returns how many visits are still pending.
func (r *Recorder) expire(cutoff time.Time) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	for addr, v := range r.pending {
		if v.presented.Before(cutoff) {
			r.unanswered++
			delete(r.pending, addr)
		}
	}
	return len(r.pending)
}

// Config configures a load run.
type Config struct {
	Readers  []int         // reader addresses to badge at; empty means all
	Rate     float64       // badges per second, over all readers
	Duration time.Duration // how long to present badges
	Cards    []wiegand.Frame
	// AnswerTimeout is how long a badge waits for its answer before it
	// counts as unanswered and the reader takes the next one; 0 means 1 s.
	AnswerTimeout time.Duration
	Seed          uint64 // for the choice of cards
}

// Report is the outcome of a run.
type Report struct {
	Readers    int
	Rate       float64
	Duration   time.Duration // how long badges were presented
	Cards      int
	Presented  int
	Answered   int
	Unanswered int
	Skipped    int // every reader was busy
	Failed     int // the reader refused the card: powered off, queue full
	Latency    Summary
	Histogram  []Bucket
	Baud       int
	Pacing     bool
	// WireBytes is the shortest exchange seen, RAW reply plus answering
	// command, in bytes; WireBound is its time on the wire.
	WireBytes int
	WireBound time.Duration
}

// Throughput is the badges answered per second.
func (r Report) Throughput() float64 {
	if r.Duration <= 0 {
		return 0
	}
	return float64(r.Answered) / r.Duration.Seconds()
}

// Run presents badges at s for cfg.Duration, then waits for the last
// answers, and reports. rec must be the Recorder in s's Config.Trace.
func Run(ctx context.Context, s *sim.Sim, rec *Recorder, cfg Config) (Report, error) {
	switch {
	case cfg.Rate <= 0 || cfg.Duration <= 0:
		return Report{}, errors.New("load: rate and duration must be positive")
	case len(cfg.Cards) == 0:
		return Report{}, errors.New("load: no cards")
	}
	timeout := cmp.Or(cfg.AnswerTimeout, time.Second)
	readers := cfg.Readers
	if len(readers) == 0 {
		for _, r := range s.State().Readers {
			readers = append(readers, r.Address)
		}
	}
	rep := Report{Readers: len(readers), Rate: cfg.Rate, Cards: len(cfg.Cards), Baud: s.Baud(), Pacing: s.Paced()}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x10ad))
	start := time.Now()
	end := start.Add(cfg.Duration)
	tick := time.NewTicker(time.Duration(float64(time.Second) / cfg.Rate))
	defer tick.Stop()
	next := 0 // round robin over readers
	for now := start; now.Before(end); {
		rec.expire(now.Add(-timeout))
		presented := false
		for i := range readers {
			addr := readers[(next+i)%len(readers)]
			if !rec.present(addr, now) {
				continue
			}
			next = (next + i + 1) % len(readers)
			if err := s.PresentBits(addr, cfg.Cards[rng.IntN(len(cfg.Cards))]); err != nil {
				rec.cancel(addr)
				rep.Failed++
			} else {
				rep.Presented++
			}
			presented = true
			break
		}
		if !presented {
			rep.Skipped++
		}
		select {
		case <-ctx.Done():
			return rep, ctx.Err()
		case now = <-tick.C:
		}
	}
	rep.Duration = time.Since(start)
	// The last badges get their answer timeout.
	for deadline := time.Now().Add(timeout); rec.expire(time.Now().Add(-timeout)) > 0 && time.Now().Before(deadline); {
		select {
		case <-ctx.Done():
			return rep, ctx.Err()
		case <-tick.C:
		}
	}
	rec.expire(time.Now().Add(time.Hour))

	rec.mu.Lock()
	defer rec.mu.Unlock()
	rep.Answered, rep.Unanswered = len(rec.samples), rec.unanswered
	rep.Latency, rep.Histogram = Summarize(rec.samples), Histogram(rec.samples)
	for i, n := range rec.wire {
		if i == 0 || n < rep.WireBytes {
			rep.WireBytes = n
		}
	}
	rep.WireBound = sim.WireTime(rep.WireBytes, rep.Baud)
	return rep, nil
}

// WriteTo writes the report for a person.
func (r Report) WriteTo(w io.Writer) (int64, error) {
	cw := &countWriter{w: w}
	fmt.Fprintf(cw, "%d readers at %d baud%s, %.4g badges/s offered for %v over %d cards\n",
		r.Readers, r.Baud, map[bool]string{true: " (paced)", false: ""}[r.Pacing], r.Rate, r.Duration.Round(time.Millisecond), r.Cards)
	fmt.Fprintf(cw, "presented %d, answered %d, unanswered %d, skipped %d (every reader busy), refused %d\n",
		r.Presented, r.Answered, r.Unanswered, r.Skipped, r.Failed)
	fmt.Fprintf(cw, "throughput %.2f badges/s\n", r.Throughput())
	l := r.Latency
	fmt.Fprintf(cw, "latency, RAW reply on the wire → first LED/TEXT/OUT received (%d badges):\n", l.N)
	fmt.Fprintf(cw, "  p50 %v  p90 %v  p99 %v  max %v  (min %v, mean %v)\n",
		round(l.P50), round(l.P90), round(l.P99), round(l.Max), round(l.Min), round(l.Mean))
	if r.Pacing && r.WireBytes > 0 {
		fmt.Fprintf(cw, "  wire-time lower bound %v: %d bytes (RAW and answer) at %d baud, 10 bits a byte\n",
			round(r.WireBound), r.WireBytes, r.Baud)
	}
	writeHistogram(cw, r.Histogram)
	return cw.n, cw.err
}

func round(d time.Duration) time.Duration { return d.Round(10 * time.Microsecond) }

type countWriter struct {
	w   io.Writer
	n   int64
	err error
}

func (c *countWriter) Write(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.w.Write(p)
	c.n += int64(n)
	c.err = err
	return n, err
}
