package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"varco.dev/cloud/internal/pgtest"
	"varco.dev/cloud/postgres"
	vsync "varco.dev/protocol/sync"
)

// wait bounds every wait for something that must happen.
const wait = 10 * time.Second

// api is a logged-in admin of a served cloud.
type api struct {
	t      *testing.T
	base   string
	token  string
	client *http.Client
}

func (a *api) call(method, path string, body any, out any) int {
	a.t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, a.base+path, r)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	resp, err := a.client.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			a.t.Fatalf("%s %s = %d %s: %v", method, path, resp.StatusCode, b, err)
		}
	}
	return resp.StatusCode
}

// serveWith runs serve with args on a fresh database, bootstraps a tenant
// and logs its admin in.
func serveWith(t *testing.T, args ...string) (*Main, *api) {
	t.Helper()
	m := NewMain(&syncBuffer{})
	m.configureDB = func(db *postgres.DB) { db.PasswordParams = pgtest.FastPasswords }
	args = append([]string{"-database-url", pgtest.NewURL(t), "-http-addr", "127.0.0.1:0"}, args...)
	if err := m.ParseFlags("serve", args); err != nil {
		t.Fatal(err)
	}
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Error(err)
		}
	})
	if _, err := m.Bootstrap(context.Background(), bootstrapConfig{TenantName: "Club", TenantSlug: "club-" + strconv.FormatInt(time.Now().UnixNano(), 36),
		AdminEmail: "boss@club.test", AdminPassword: "correct horse battery"}); err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	a := &api{t: t, base: m.HTTPServer.URL(), client: &http.Client{Transport: tr}}
	var login struct{ Token string }
	if code := a.call("POST", "/api/v1/auth/login", map[string]string{"email": "boss@club.test", "password": "correct horse battery"}, &login); code != 200 {
		t.Fatalf("login = %d", code)
	}
	a.token = login.Token
	return m, a
}

// TestServeMQTT boots serve with its embedded broker and no other MQTT
// configuration, registers an edge through the API, and has it connect with
// the credentials the API gave, send a batch and get it acknowledged, and
// receive a command.
func TestServeMQTT(t *testing.T) {
	for _, name := range []string{"embedded", "mosquitto"} {
		t.Run(name, func(t *testing.T) {
			args := []string{"-mqtt-addr", "127.0.0.1:0"}
			if name == "mosquitto" {
				requireMosquitto(t)
				args = []string{"-mqtt-url", "tcp://127.0.0.1:1883", "-mqtt-public-url", "tcp://mqtt.club.test:1883"}
			}
			m, a := serveWith(t, args...)
			var me struct {
				Tenant struct{ Slug string }
			}
			a.call("GET", "/api/v1/me", nil, &me)
			var site struct{ ID int64 }
			if code := a.call("POST", "/api/v1/sites", map[string]string{"name": "Centro"}, &site); code != 201 {
				t.Fatalf("create site = %d", code)
			}
			var sec struct {
				Edge struct {
					ID   int64
					Code string
				}
				Username  string `json:"mqtt_username"`
				Password  string `json:"mqtt_password"`
				BrokerURL string `json:"broker_url"`
			}
			if code := a.call("POST", "/api/v1/edges", map[string]any{"site_id": site.ID, "code": "e1", "name": "Front"}, &sec); code != 201 {
				t.Fatalf("create edge = %d", code)
			}
			broker := sec.BrokerURL
			if name == "mosquitto" {
				if sec.BrokerURL != "tcp://mqtt.club.test:1883" {
					t.Errorf("advertised broker = %q", sec.BrokerURL)
				}
				broker = "tcp://127.0.0.1:1883"
			} else if sec.BrokerURL != "tcp://"+m.mqtt.broker.Addr() {
				t.Errorf("advertised broker = %q, want the embedded one", sec.BrokerURL)
			}
			if u, err := url.Parse(broker); err != nil || u.Host == "" {
				t.Fatalf("broker URL %q: %v", broker, err)
			}
			msgs := make(chan vsync.Message, 10)
			o := paho.NewClientOptions().AddBroker(broker).SetClientID(sec.Username).SetUsername(sec.Username).SetPassword(sec.Password).
				SetProtocolVersion(4).SetAutoReconnect(false).SetDefaultPublishHandler(func(_ paho.Client, pm paho.Message) {
				if msg, err := vsync.Unmarshal(pm.Payload()); err == nil {
					msgs <- msg
				}
			})
			edge := paho.NewClient(o)
			if tok := edge.Connect(); !tok.WaitTimeout(wait) || tok.Error() != nil {
				t.Fatalf("edge connect: %v", tok.Error())
			}
			defer edge.Disconnect(100)
			tenant := me.Tenant.Slug
			ack, _ := vsync.AckTopic(tenant, "e1")
			cmd, _ := vsync.CommandTopic(tenant, "e1")
			if tok := edge.SubscribeMultiple(map[string]byte{ack: 1, cmd: 1}, nil); !tok.WaitTimeout(wait) || tok.Error() != nil {
				t.Fatal(tok.Error())
			}
			h := vsync.Header{Tenant: tenant, Site: strconv.FormatInt(site.ID, 10), Edge: "e1", Time: vsync.TimestampOf(time.Now())}
			publish := func(msg vsync.Message) {
				topic, _ := vsync.TopicFor(msg)
				b, err := vsync.Marshal(msg)
				if err != nil {
					t.Fatal(err)
				}
				if tok := edge.Publish(topic.String(), 1, false, b); !tok.WaitTimeout(wait) || tok.Error() != nil {
					t.Fatal(tok.Error())
				}
			}
			batch := &vsync.Events{Header: h, Boot: 1, Events: []vsync.Event{{Seq: 1, Time: h.Time, Kind: vsync.EventDoorHeld, Reader: "r1"}}}
			// The cloud's client subscribes once connected: send until acknowledged.
			var got *vsync.Ack
			deadline := time.Now().Add(wait)
			for got == nil && time.Now().Before(deadline) {
				publish(batch)
				select {
				case msg := <-msgs:
					got, _ = msg.(*vsync.Ack)
				case <-time.After(200 * time.Millisecond):
				}
			}
			if got == nil || got.Seq != 1 {
				t.Fatalf("ack = %+v", got)
			}
			resp, err := a.client.Get(a.base + "/metrics")
			if err != nil {
				t.Fatal(err)
			}
			metrics, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if !bytes.Contains(metrics, []byte("varco_ingest_events_stored_total 1\n")) ||
				!bytes.Contains(metrics, []byte(`varco_ingest_rejected_total{reason="malformed"}`)) {
				t.Errorf("/metrics lacks the ingest counters:\n%s", metrics)
			}
			var command struct {
				ID     int64
				Status string
			}
			if code := a.call("POST", fmt.Sprintf("/api/v1/edges/%d/commands", sec.Edge.ID), map[string]any{"op": "resync"}, &command); code != 201 || command.Status != "sent" {
				t.Fatalf("command = %d %+v", code, command)
			}
			select {
			case msg := <-msgs:
				if c, ok := msg.(*vsync.Command); !ok || c.ID != uint64(command.ID) || c.Op != vsync.CmdResync {
					t.Errorf("edge received %+v", msg)
				}
			case <-time.After(wait):
				t.Fatal("no command")
			}
		})
	}
}

// TestServeMQTTConfig: no broker at all is an error; the password of the
// cloud's account comes only from the environment.
func TestServeMQTTConfig(t *testing.T) {
	m := NewMain(io.Discard)
	if err := m.ParseFlags("serve", []string{"-database-url", "postgres://x", "-mqtt-embedded=false"}); err != nil {
		t.Fatal(err)
	}
	if err := m.startMQTT(); err == nil || !strings.Contains(err.Error(), "VARCO_MQTT_URL") {
		t.Errorf("no broker: %v", err)
	}
	m.stopMQTT()
	if err := m.ParseFlags("serve", []string{"-database-url", "postgres://x", "-mqtt-password", "x"}); err == nil {
		t.Error("a -mqtt-password flag exists")
	}
	t.Setenv("VARCO_MQTT_URL", "tcp://broker:1883")
	t.Setenv("VARCO_MQTT_PASSWORD", "s3cret")
	t.Setenv("VARCO_MQTT_EMBEDDED", "false")
	if c := NewMain(io.Discard).Config.MQTT; c.URL != "tcp://broker:1883" || c.Password != "s3cret" || c.Embedded || c.Username != "cloud" ||
		c.Addr != "127.0.0.1:1884" {
		t.Errorf("config from the environment = %+v", c)
	}
}

// requireMosquitto skips the test when no Mosquitto listens on 1883, and
// fails it under CI.
func requireMosquitto(t *testing.T) {
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
