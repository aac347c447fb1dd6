package load

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// Summary is the distribution of a set of latencies.
type Summary struct {
	N                  int
	Min, Mean          time.Duration
	P50, P90, P99, Max time.Duration
}

// Summarize computes the summary of samples, with nearest-rank percentiles:
// P90 is the smallest sample that at least 90% of the samples do not
// exceed. It does not modify samples.
func Summarize(samples []time.Duration) Summary {
	if len(samples) == 0 {
		return Summary{}
	}
	s := slices.Clone(samples)
	slices.Sort(s)
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	return Summary{
		N: len(s), Min: s[0], Mean: sum / time.Duration(len(s)),
		P50: Percentile(s, 50), P90: Percentile(s, 90), P99: Percentile(s, 99), Max: s[len(s)-1],
	}
}

// Percentile returns the nearest-rank p-th percentile (0 < p ≤ 100) of the
// sorted samples, 0 for none.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	x := p * float64(len(sorted)) / 100 // the rank is ceil(x); its index ceil(x) − 1
	rank := int(x)
	if float64(rank) == x {
		rank--
	}
	return sorted[min(max(rank, 0), len(sorted)-1)]
}

// Bucket is one bar of a histogram: the samples in (previous Le, Le].
type Bucket struct {
	Le    time.Duration // upper bound; the last bucket's is 0, meaning none
	Count int
}

// bounds are the upper bounds of the histogram's buckets.
var bounds = []time.Duration{
	time.Millisecond, 2 * time.Millisecond, 5 * time.Millisecond, 10 * time.Millisecond,
	25 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond,
	500 * time.Millisecond, time.Second,
}

// Histogram counts samples into buckets of 1, 2, 5, 10, 25 (the goal for
// p99), 50, 100, 200, 500 ms, 1 s and above.
func Histogram(samples []time.Duration) []Bucket {
	h := make([]Bucket, len(bounds)+1)
	for i, b := range bounds {
		h[i].Le = b
	}
	for _, d := range samples {
		i, _ := slices.BinarySearch(bounds, d) // first bound ≥ d
		h[i].Count++
	}
	return h
}

// writeHistogram draws h with bars of at most 40 characters.
func writeHistogram(w io.Writer, h []Bucket) {
	most := 0
	for _, b := range h {
		most = max(most, b.Count)
	}
	for _, b := range h {
		label := "> " + bounds[len(bounds)-1].String()
		if b.Le > 0 {
			label = "≤ " + b.Le.String()
		}
		bar := ""
		if most > 0 {
			bar = strings.Repeat("█", (b.Count*40+most-1)/most)
		}
		fmt.Fprintf(w, "  %8s %7d %s\n", label, b.Count, bar)
	}
}
