package retry_test

import (
	"net/http"
	"testing"
	"time"

	"varco.dev/cloud/internal/retry"
)

func TestBackoffGrows(t *testing.T) {
	t.Parallel()
	p := retry.Policy{Base: 100 * time.Millisecond, Max: time.Second}
	for n, hi := range []time.Duration{100, 200, 400, 800, 1000, 1000} {
		hi *= time.Millisecond
		if d := p.Backoff(n + 1); d < hi/2 || d > hi {
			t.Errorf("Backoff(%d) = %v, want within [%v, %v]", n+1, d, hi/2, hi)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 3, 4, 9, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"", 0}, {"0", 0}, {"7", 7 * time.Second}, {"-3", 0}, {"soon", 0},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
	} {
		if got := retry.RetryAfter(tc.in, now); got != tc.want {
			t.Errorf("RetryAfter(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}
