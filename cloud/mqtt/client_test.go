package mqtt_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"testing"
	"time"

	"varco.dev/cloud/mqtt"
)

func TestMatchTopic(t *testing.T) {
	tests := []struct {
		filter, topic string
		want          bool
	}{
		{"a/b", "a/b", true},
		{"a/b", "a/c", false},
		{"a/b", "a/b/c", false},
		{"a/b/c", "a/b", false},
		{"a/+", "a/b", true},
		{"a/+", "a/b/c", false},
		{"a/+/c", "a/b/c", true},
		{"a/+/c", "a//c", true},
		{"+", "a", true},
		{"+", "", true},
		{"a/#", "a", true},
		{"a/#", "a/b/c", true},
		{"#", "a/b", true},
		{"#", "$SYS/x", false},
		{"+/x", "$SYS/x", false},
		{"$SYS/#", "$SYS/x", true},
		{"varco/v1/+/site/+/edge/+/events", "varco/v1/t1/site/s1/edge/e1/events", true},
		{"varco/v1/+/site/+/edge/+/events", "varco/v1/t1/site/s1/edge/e1/birth", false},
	}
	for _, tt := range tests {
		if got := mqtt.MatchTopic(tt.filter, tt.topic); got != tt.want {
			t.Errorf("MatchTopic(%q, %q) = %v, want %v", tt.filter, tt.topic, got, tt.want)
		}
	}
}

// TestClient runs the cloud's client against the embedded broker and the
// real Mosquitto: two handlers on overlapping filters both get a message,
// a third does not, in order.
func TestClient(t *testing.T) {
	b := setup(t)
	brokers := map[string]mqtt.ClientConfig{
		"embedded":  {Broker: "tcp://" + b.Addr(), Username: "cloud", Password: password},
		"mosquitto": {Broker: "tcp://127.0.0.1:1883"},
	}
	for name, cfg := range brokers {
		t.Run(name, func(t *testing.T) {
			if name == "mosquitto" {
				requireMosquitto(t)
			}
			prefix := fmt.Sprintf("varco-test/%s/%d", name, time.Now().UnixNano())
			cfg.ClientID = "cloud-test-" + name
			cfg.Logger = testLogger(t)
			c, err := mqtt.NewClient(cfg)
			if err != nil {
				t.Fatal(err)
			}
			all, events, other := make(chan string, 10), make(chan string, 10), make(chan string, 10)
			c.Handle(prefix+"/#", 1, func(_ context.Context, topic string, p []byte) { all <- topic + "=" + string(p) })
			c.Handle(prefix+"/+/events", 1, func(_ context.Context, topic string, p []byte) { events <- string(p) })
			c.Handle(prefix+"/+/birth", 1, func(_ context.Context, topic string, p []byte) { other <- string(p) })
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan error, 1)
			go func() { done <- c.Run(ctx) }()
			defer func() {
				cancel()
				if err := <-done; err != nil {
					t.Error(err)
				}
			}()
			publishWhenSubscribed(t, c, prefix+"/e1/events", all)
			for i := range 3 {
				if err := c.Publish(t.Context(), prefix+"/e1/events", 1, false, fmt.Appendf(nil, "%d", i)); err != nil {
					t.Fatal(err)
				}
			}
			for i := range 3 {
				if got, want := recv(t, events), fmt.Sprint(i); got != want {
					t.Errorf("events handler got %q, want %q", got, want)
				}
				if got, want := recv(t, all), prefix+"/e1/events="+fmt.Sprint(i); got != want {
					t.Errorf("# handler got %q, want %q", got, want)
				}
			}
			select {
			case m := <-other:
				t.Errorf("birth handler got %q", m)
			default:
			}
		})
	}
}

// publishWhenSubscribed publishes a probe until the # handler sees it: the
// subscription is made on connect, in paho's goroutine.
func publishWhenSubscribed(t *testing.T, c *mqtt.Client, topic string, all chan string) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		if err := c.Publish(t.Context(), topic+"-probe", 1, false, []byte("probe")); err == nil {
			select {
			case <-all:
				return
			case <-time.After(100 * time.Millisecond):
			}
		} else {
			time.Sleep(20 * time.Millisecond)
		}
	}
	t.Fatal("the client never received its own probe")
}

func recv(t *testing.T, ch chan string) string {
	t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(wait):
		t.Fatal("no message")
		return ""
	}
}

// requireMosquitto skips the test when no Mosquitto listens on 1883, and
// fails it under CI, where .ci/run starts one.
func requireMosquitto(t testing.TB) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", "127.0.0.1:1883", 2*time.Second)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("Mosquitto on 127.0.0.1:1883: %v", err)
		}
		t.Skipf("no Mosquitto on 127.0.0.1:1883: %v", err)
	}
	conn.Close()
}
