package twilio_test

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"varco.dev/cloud"
	"varco.dev/cloud/internal/gatewaytest"
	"varco.dev/cloud/internal/retry"
	"varco.dev/cloud/twilio"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type bundle struct {
	gw     *gatewaytest.Twilio
	client *twilio.Client
	mu     sync.Mutex
	waits  []time.Duration
}

func setup(t *testing.T) *bundle {
	t.Helper()
	b := &bundle{gw: gatewaytest.NewTwilio(t)}
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	b.client = &twilio.Client{BaseURL: b.gw.URL, AccountSID: b.gw.AccountSID, AuthToken: b.gw.AuthToken, From: "+15005550006",
		HTTPClient: &http.Client{Transport: tr}, Timeout: 2 * time.Second,
		Retry: retry.Policy{Attempts: 4, Sleep: func(_ context.Context, d time.Duration) error {
			b.mu.Lock()
			defer b.mu.Unlock()
			b.waits = append(b.waits, d)
			return nil
		}}}
	if err := b.client.Validate(); err != nil {
		t.Fatal(err)
	}
	return b
}

func sms(key string) *cloud.OutboundSMS {
	return &cloud.OutboundSMS{To: "+393331234567", Text: "Ciao Anna, il tuo abbonamento scade il 31/12/2025", IdempotencyKey: key}
}

func TestSendSMS(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		faults     []gatewaytest.Fault
		msg        *cloud.OutboundSMS
		badAuth    bool
		wantErr    func(*cloud.SendError) bool
		requests   int
		waits      []time.Duration // exact waits; nil: as many backoffs as retries
		deliveries int
	}{
		{name: "created", msg: sms("k1"), requests: 1, deliveries: 1},
		{name: "500 then created", faults: []gatewaytest.Fault{{Status: 500}}, msg: sms("k1"), requests: 2, deliveries: 1},
		{name: "503 twice then created", faults: []gatewaytest.Fault{{Status: 503}, {Status: 503}}, msg: sms("k1"), requests: 3, deliveries: 1},
		{name: "429 honours Retry-After", faults: []gatewaytest.Fault{{Status: 429, RetryAfter: "3"}}, msg: sms("k1"), requests: 2,
			waits: []time.Duration{3 * time.Second}, deliveries: 1},
		{name: "429 with a Retry-After too long gives up", faults: []gatewaytest.Fault{{Status: 429, RetryAfter: "3600"}}, msg: sms("k1"), requests: 1,
			waits: []time.Duration{}, wantErr: func(e *cloud.SendError) bool { return e.Status == 429 && e.Code == "20429" && e.Temporary }},
		{name: "500 until the attempts run out", faults: []gatewaytest.Fault{{Status: 500}, {Status: 500}, {Status: 500}, {Status: 500}}, msg: sms("k1"),
			requests: 4, wantErr: func(e *cloud.SendError) bool { return e.Status == 500 && e.Temporary }},
		{name: "timeout after accepting: same token, delivered once", faults: []gatewaytest.Fault{{Hang: true}}, msg: sms("k1"), requests: 2, deliveries: 1},
		{name: "invalid number is final", msg: &cloud.OutboundSMS{To: "333", Text: "x", IdempotencyKey: "k1"}, requests: 1, waits: []time.Duration{},
			wantErr: func(e *cloud.SendError) bool { return e.Status == 400 && e.Code == "21211" && !e.Temporary }},
		{name: "bad credentials", badAuth: true, msg: sms("k1"), requests: 0, waits: []time.Duration{},
			wantErr: func(e *cloud.SendError) bool { return e.Status == 401 && e.Code == "20003" && !e.Temporary }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			b.gw.Push(tc.faults...)
			if tc.badAuth {
				b.client.AuthToken = "wrong"
			}
			if len(tc.faults) > 0 && tc.faults[0].Hang {
				b.client.Timeout = 300 * time.Millisecond // the gateway never answers the first try
			}
			sid, err := b.client.SendSMS(context.Background(), tc.msg)
			if tc.wantErr != nil {
				var se *cloud.SendError
				if !errors.As(err, &se) || !tc.wantErr(se) {
					t.Fatalf("err = %#v", err)
				}
			} else if err != nil || sid == "" {
				t.Fatalf("SendSMS = %q, %v", sid, err)
			}
			reqs := b.gw.Requests()
			if len(reqs) != tc.requests {
				t.Errorf("gateway saw %d requests, want %d", len(reqs), tc.requests)
			}
			for _, tok := range reqs {
				if tok != tc.msg.IdempotencyKey {
					t.Errorf("request with idempotency token %q, want %q on every try", tok, tc.msg.IdempotencyKey)
				}
			}
			if d := b.gw.Delivered(); len(d) != tc.deliveries {
				t.Errorf("delivered %d, want %d", len(d), tc.deliveries)
			} else if len(d) == 1 && (d[0].SID != sid || d[0].Body != tc.msg.Text || d[0].From != "+15005550006") {
				t.Errorf("delivered %+v, sid %q", d[0], sid)
			}
			if tc.waits != nil {
				if len(b.waits) != len(tc.waits) {
					t.Fatalf("waits %v, want %v", b.waits, tc.waits)
				}
				for i := range tc.waits {
					if b.waits[i] != tc.waits[i] {
						t.Errorf("wait %d = %v, want %v", i, b.waits[i], tc.waits[i])
					}
				}
			} else if want := max(tc.requests-1, 0); len(b.waits) != want {
				t.Errorf("waited %d times, want %d backoffs", len(b.waits), want)
			}
		})
	}
}

func TestSendSMSUnknownOutcome(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.client.Timeout = 200 * time.Millisecond
	b.client.Retry.Attempts = 2
	b.gw.Push(gatewaytest.Fault{Hang: true}, gatewaytest.Fault{Hang: true})
	_, err := b.client.SendSMS(context.Background(), sms("k9"))
	var se *cloud.SendError
	if !errors.As(err, &se) || !se.Unknown || !se.Temporary {
		t.Fatalf("err = %#v, want an unknown outcome", err)
	}
	if d := b.gw.Delivered(); len(d) != 1 {
		t.Errorf("delivered %d, want 1", len(d))
	}
}
