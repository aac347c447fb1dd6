// Package latency records durations in a fixed histogram, for benchmarks
// that report percentiles (b.ReportMetric) beside ns/op: recording does not
// allocate, and a histogram of any number of operations takes 24 KiB.
package latency

import (
	"testing"
	"time"
)

// Buckets: 10 ns wide below 1 µs, 100 ns below 100 µs, 10 µs below 10 ms,
// 10 ms below 10 s, and one for everything longer. A percentile is the
// bucket's upper bound, so it is at most one bucket width above the true
// value.
const (
	fine   = 1000 / 10
	medium = fine + (100_000-1000)/100
	coarse = medium + (10_000_000-100_000)/10_000
	slow   = coarse + (10_000_000_000-10_000_000)/10_000_000
)

// Histogram counts durations. The zero value is ready to use; it is not
// safe for concurrent use (merge per-goroutine histograms with Add).
type Histogram struct {
	counts [slow + 1]uint64
	n      uint64
}

func bucket(ns int64) int {
	switch {
	case ns < 1000:
		return int(max(ns, 0) / 10)
	case ns < 100_000:
		return fine + int((ns-1000)/100)
	case ns < 10_000_000:
		return medium + int((ns-100_000)/10_000)
	case ns < 10_000_000_000:
		return coarse + int((ns-10_000_000)/10_000_000)
	}
	return slow
}

func upper(i int) time.Duration {
	switch {
	case i < fine:
		return time.Duration(i+1) * 10
	case i < medium:
		return 1000 + time.Duration(i-fine+1)*100 // Duration arithmetic: int is 32 bits on armv7
	case i < coarse:
		return 100_000 + time.Duration(i-medium+1)*10_000
	case i < slow:
		return 10_000_000 + time.Duration(i-coarse+1)*10_000_000
	}
	return time.Duration(1<<63 - 1)
}

// Record counts one duration.
func (h *Histogram) Record(d time.Duration) {
	h.counts[bucket(int64(d))]++
	h.n++
}

// Add adds o's counts to h.
func (h *Histogram) Add(o *Histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
}

// Count is the number of durations recorded.
func (h *Histogram) Count() uint64 { return h.n }

// Quantile returns the duration below which a fraction q of the recorded
// ones fall (q = 0.99 for the 99th percentile), 0 if none was recorded.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q * float64(h.n))
	var seen uint64
	for i, c := range h.counts {
		if seen += c; seen > rank {
			return upper(i)
		}
	}
	return upper(slow)
}

// Report adds p50, p99 and p99.9 in microseconds to b's results.
func (h *Histogram) Report(b *testing.B) {
	for _, p := range []struct {
		q    float64
		name string
	}{{0.5, "p50-µs"}, {0.99, "p99-µs"}, {0.999, "p99.9-µs"}} {
		b.ReportMetric(float64(h.Quantile(p.q))/1e3, p.name)
	}
}
