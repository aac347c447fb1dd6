// Package retry is the backoff loop the gateway adapters (cloud/smtp,
// cloud/twilio, cloud/fcm) share: what to retry, how long to wait, and how
// to tell a request that never left from one whose answer was lost.
//
// Waits grow exponentially from Base with jitter, capped at Max; a gateway's
// Retry-After (a 429 or a 503) is honoured as given, unless it is longer
// than Max, in which case the send gives up and reports the answer: the
// worker does not hold a lease for an hour.
package retry

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"time"
)

// Policy says how often and how long to retry.
type Policy struct {
	// Attempts is how many tries in all (default 5).
	Attempts int
	// Base is the first backoff (default 500ms); Max the longest wait,
	// backoff or Retry-After (default 30s).
	Base, Max time.Duration
	// Sleep waits d or until ctx ends; tests replace it to record waits.
	Sleep func(ctx context.Context, d time.Duration) error
}

func (p Policy) attempts() int       { return cmp.Or(p.Attempts, 5) }
func (p Policy) base() time.Duration { return cmp.Or(p.Base, 500*time.Millisecond) }
func (p Policy) max() time.Duration  { return cmp.Or(p.Max, 30*time.Second) }

func (p Policy) sleep(ctx context.Context, d time.Duration) error {
	if p.Sleep != nil {
		return p.Sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Backoff is the wait before try n+1 after n failed tries: Base·2^(n-1),
// at most Max, the upper half of it random so that senders spread out.
func (p Policy) Backoff(n int) time.Duration {
	d := p.base() << min(n-1, 20)
	d = min(d, p.max())
	return d/2 + rand.N(d/2+1)
}

// Outcome is what one try tells the loop.
type Outcome struct {
	// Retry asks for another try; RetryAfter, when set, is the wait the
	// gateway asked for instead of the backoff.
	Retry      bool
	RetryAfter time.Duration
}

// Do calls try until it returns Retry false, the attempts run out, the
// gateway asks to wait longer than Max, or ctx ends, and returns try's
// last error.
func (p Policy) Do(ctx context.Context, try func(ctx context.Context, attempt int) (Outcome, error)) error {
	for n := 1; ; n++ {
		out, err := try(ctx, n)
		if !out.Retry || n >= p.attempts() {
			return err
		}
		wait := p.Backoff(n)
		if out.RetryAfter > 0 {
			if out.RetryAfter > p.max() {
				return err
			}
			wait = out.RetryAfter
		}
		if serr := p.sleep(ctx, wait); serr != nil {
			return errors.Join(err, serr)
		}
	}
}

// Response is a gateway's last answer to an HTTP request.
type Response struct {
	Status   int
	Header   http.Header
	Body     []byte
	Attempts int
}

// TransportError is an HTTP try that got no answer. Written reports whether
// the request had been written in full: the gateway may have acted on it.
type TransportError struct {
	Err     error
	Written bool
}

func (e *TransportError) Error() string { return e.Err.Error() }
func (e *TransportError) Unwrap() error { return e.Err }

// Written reports whether err is a *TransportError of a request that was
// written: its outcome is unknown.
func Written(err error) bool {
	var te *TransportError
	return errors.As(err, &te) && te.Written
}

// Retryable reports whether an HTTP status is worth another try: 429 and
// the 5xx that mean "not now" (500, 502, 503, 504).
func Retryable(status int) bool {
	switch status {
	case http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusBadGateway,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// RetryAfter parses a Retry-After header: seconds or an HTTP date.
func RetryAfter(h string, now time.Time) time.Duration {
	if h == "" {
		return 0
	}
	if s, err := strconv.Atoi(h); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// MaxBody bounds what is read of a gateway's answer.
const MaxBody = 1 << 20

// DoHTTP sends the request build makes (anew for every try, with the same
// idempotency headers), each try bounded by timeout, and retries transport
// errors and Retryable statuses per p, honouring Retry-After. It returns the
// last answer, or a *TransportError when the last try got none.
func DoHTTP(ctx context.Context, client *http.Client, p Policy, timeout time.Duration,
	build func(ctx context.Context) (*http.Request, error)) (*Response, error) {
	var (
		resp    *Response // the last answer
		lastErr error     // the last try's transport error, nil when it got an answer
	)
	err := p.Do(ctx, func(ctx context.Context, attempt int) (Outcome, error) {
		r, err := tryHTTP(ctx, client, timeout, build)
		if err != nil {
			lastErr = err
			var te *TransportError
			return Outcome{Retry: errors.As(err, &te) && ctx.Err() == nil}, err
		}
		r.Attempts, resp, lastErr = attempt, r, nil
		if !Retryable(r.Status) {
			return Outcome{}, nil
		}
		return Outcome{Retry: true, RetryAfter: RetryAfter(r.Header.Get("Retry-After"), time.Now())}, nil
	})
	switch {
	case lastErr != nil:
		return nil, lastErr
	case resp == nil:
		return nil, err // cancelled before any answer
	}
	return resp, nil
}

func tryHTTP(ctx context.Context, client *http.Client, timeout time.Duration, build func(ctx context.Context) (*http.Request, error)) (*Response, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	written := false
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		WroteRequest: func(i httptrace.WroteRequestInfo) { written = written || i.Err == nil },
	})
	req, err := build(ctx)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	res, err := client.Do(req)
	if err != nil {
		return nil, &TransportError{Err: err, Written: written}
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, MaxBody))
	if err != nil {
		return nil, &TransportError{Err: fmt.Errorf("read answer: %w", err), Written: true}
	}
	return &Response{Status: res.StatusCode, Header: res.Header, Body: bytes.TrimSpace(body)}, nil
}
