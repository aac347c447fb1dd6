package latency

import (
	"testing"
	"time"
)

func TestQuantile(t *testing.T) {
	var h Histogram
	if h.Quantile(0.5) != 0 {
		t.Error("empty histogram")
	}
	for i := 1; i <= 1000; i++ {
		h.Record(time.Duration(i) * time.Microsecond)
	}
	h.Record(time.Minute)
	for _, tc := range []struct {
		q        float64
		min, max time.Duration
	}{{0.5, 500 * time.Microsecond, 510 * time.Microsecond}, {0.99, 990 * time.Microsecond, 1000 * time.Microsecond}, {1, time.Hour, 1<<63 - 1}} {
		if got := h.Quantile(tc.q); got < tc.min || got > tc.max {
			t.Errorf("Quantile(%v) = %v, want %v..%v", tc.q, got, tc.min, tc.max)
		}
	}
	var small Histogram
	for _, d := range []time.Duration{0, 5, 15, 999, 1000, 99_999, 100_000, 9_999_999, 10_000_000, 9_999_999_999} {
		small.Record(d)
		if u := upper(bucket(int64(d))); u <= d {
			t.Errorf("bucket of %v ends at %v", d, u)
		}
	}
	h.Add(&small)
	if h.Count() != 1001+10 {
		t.Errorf("count %d", h.Count())
	}
}
