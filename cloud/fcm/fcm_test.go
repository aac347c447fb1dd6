package fcm_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"go.uber.org/goleak"

	"varco.dev/cloud"
	"varco.dev/cloud/fcm"
	"varco.dev/cloud/internal/gatewaytest"
	"varco.dev/cloud/internal/retry"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func setup(t *testing.T) (*gatewaytest.FCM, *fcm.Client, *[]time.Duration) {
	t.Helper()
	gw := gatewaytest.NewFCM(t)
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	waits := &[]time.Duration{}
	c := &fcm.Client{BaseURL: gw.URL, ProjectID: gw.ProjectID, AccessToken: fcm.StaticToken(gw.AccessToken),
		HTTPClient: &http.Client{Transport: tr}, Timeout: 2 * time.Second,
		Retry: retry.Policy{Attempts: 4, Sleep: func(_ context.Context, d time.Duration) error { *waits = append(*waits, d); return nil }}}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	return gw, c, waits
}

func push(key string) *cloud.OutboundPush {
	return &cloud.OutboundPush{Token: "device-token-1", Title: "Ciao Anna", Subtitle: "Palestra Roma", Text: "Il tuo abbonamento scade il 31/12/2025",
		ImageURL: "https://club.test/img.png", Link: "https://club.test/renew", IdempotencyKey: key}
}

func TestSendPush(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		faults     []gatewaytest.Fault
		unregister bool
		badToken   bool
		wantErr    func(*cloud.SendError) bool
		requests   int
		waits      []time.Duration
		deliveries int
	}{
		{name: "sent", requests: 1, deliveries: 1},
		{name: "503 then sent", faults: []gatewaytest.Fault{{Status: 503}}, requests: 2, deliveries: 1},
		{name: "429 QUOTA_EXCEEDED honours Retry-After", faults: []gatewaytest.Fault{{Status: 429, RetryAfter: "2"}}, requests: 2,
			waits: []time.Duration{2 * time.Second}, deliveries: 1},
		{name: "timeout after accepting: same message id, delivered once", faults: []gatewaytest.Fault{{Hang: true}}, requests: 2, deliveries: 1},
		{name: "500 until the attempts run out", faults: []gatewaytest.Fault{{Status: 500}, {Status: 500}, {Status: 500}, {Status: 500}}, requests: 4,
			wantErr: func(e *cloud.SendError) bool { return e.Status == 500 && e.Code == "INTERNAL" && e.Temporary }},
		{name: "app removed", unregister: true, requests: 1, waits: []time.Duration{},
			wantErr: func(e *cloud.SendError) bool { return e.Status == 404 && e.Unregistered && !e.Temporary }},
		{name: "bad access token", badToken: true, requests: 0, waits: []time.Duration{},
			wantErr: func(e *cloud.SendError) bool { return e.Status == 401 && e.Code == "THIRD_PARTY_AUTH_ERROR" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			gw, c, waits := setup(t)
			gw.Push(tc.faults...)
			if tc.unregister {
				gw.Unregister("device-token-1")
			}
			if tc.badToken {
				c.AccessToken = fcm.StaticToken("expired")
			}
			if len(tc.faults) > 0 && tc.faults[0].Hang {
				c.Timeout = 300 * time.Millisecond
			}
			msg := push("key-1")
			name, err := c.SendPush(context.Background(), msg)
			if tc.wantErr != nil {
				var se *cloud.SendError
				if !errors.As(err, &se) || !tc.wantErr(se) {
					t.Fatalf("err = %#v", err)
				}
			} else if err != nil || name != "projects/varco-test/messages/0:1" {
				t.Fatalf("SendPush = %q, %v", name, err)
			}
			if reqs := gw.Requests(); len(reqs) != tc.requests {
				t.Errorf("gateway saw %d requests, want %d", len(reqs), tc.requests)
			} else {
				for _, id := range reqs {
					if id != "key-1" {
						t.Errorf("message_id %q on a try, want key-1", id)
					}
				}
			}
			d := gw.Delivered()
			if len(d) != tc.deliveries {
				t.Fatalf("delivered %d, want %d", len(d), tc.deliveries)
			}
			if len(d) == 1 {
				m := d[0]
				aps := m.APNS.Payload["aps"].(map[string]any)["alert"].(map[string]any)
				if m.Notification.Title != msg.Title || m.Notification.Body != msg.Text || m.Notification.Image != msg.ImageURL ||
					aps["subtitle"] != msg.Subtitle || m.Data["link"] != msg.Link || m.Webpush.FCMOptions["link"] != msg.Link ||
					m.Android.CollapseKey != "key-1" || m.APNS.Headers["apns-collapse-id"] != "key-1" {
					t.Errorf("delivered %+v", m)
				}
			}
			if tc.waits != nil && len(*waits) != len(tc.waits) {
				t.Errorf("waits %v, want %v", *waits, tc.waits)
			}
			for i := range tc.waits {
				if i < len(*waits) && (*waits)[i] != tc.waits[i] {
					t.Errorf("wait %d = %v, want %v", i, (*waits)[i], tc.waits[i])
				}
			}
		})
	}
}
