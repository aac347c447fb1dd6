package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"varco.dev/firmware-sim/sim"
	"varco.dev/protocol/osdp"
	vsync "varco.dev/protocol/sync"
)

// mosquitto is the broker these machines run; CI=true makes its absence a
// failure rather than a skip.
const mosquitto = "127.0.0.1:1883"

func needMosquitto(t testing.TB) {
	t.Helper()
	c, err := net.DialTimeout("tcp", mosquitto, time.Second)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("Mosquitto is not running on %s: %v", mosquitto, err)
		}
		t.Skipf("Mosquitto is not running on %s: %v", mosquitto, err)
	}
	c.Close()
}

// cloudKey signs what the tests publish as the cloud; otherKey is not the
// cloud's.
var (
	cloudKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, ed25519.SeedSize))
	otherKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{2}, ed25519.SeedSize))
)

const cloudKeyID = "acme-1"

// testCloud is a paho client in the cloud's place on the real Mosquitto.
type testCloud struct {
	t      *testing.T
	c      paho.Client
	events chan *vsync.Events
}

// startSyncedEdge starts an edge with its sync agent on Mosquitto, trusting
// cloudKey, and a test cloud that hears its events.
func startSyncedEdge(t *testing.T) (*edgeOnSim, *testCloud) {
	t.Helper()
	needMosquitto(t)
	pw := filepath.Join(t.TempDir(), "mqtt.password")
	if err := os.WriteFile(pw, []byte("secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pub := base64.StdEncoding.EncodeToString(cloudKey.Public().(ed25519.PublicKey))
	e := startEdgeWith(t, sim.Config{Readers: sim.Readers(2)}, "testdata/members.ndjson",
		"[mqtt]\nbroker = \"tcp://"+mosquitto+"\"\nusername = \"e2e\"\npassword_file = \""+pw+"\"\n"+
			"cloud_keys = [\""+cloudKeyID+"="+pub+"\"]\n")

	cl := &testCloud{t: t, events: make(chan *vsync.Events, 64)}
	cl.c = paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + mosquitto).
		SetClientID("varco-e2e-cloud-" + hex.EncodeToString([]byte(t.Name()))[:16]).SetCleanSession(true))
	if tok := cl.c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	t.Cleanup(func() { cl.c.Disconnect(100) })
	eventsTopic, _ := vsync.EventsTopic("acme", "e2e")
	ackTopic, _ := vsync.AckTopic("acme", "e2e")
	if tok := cl.c.Subscribe(eventsTopic, 1, func(c paho.Client, msg paho.Message) {
		m, err := vsync.Unmarshal(msg.Payload())
		ev, ok := m.(*vsync.Events)
		if err != nil || !ok {
			return
		}
		cl.events <- ev
		// Acknowledge, as the cloud does, or the edge's window fills up.
		ack := &vsync.Ack{Header: vsync.Header{Tenant: "acme", Edge: "e2e", Time: now()}, Boot: ev.Boot, Seq: ev.Events[len(ev.Events)-1].Seq}
		env, err := vsync.Seal(ack)
		if err == nil {
			err = env.Sign(cloudKeyID, cloudKey)
		}
		var b []byte
		if err == nil {
			b, err = env.Marshal()
		}
		if err != nil {
			t.Errorf("ack: %v", err)
			return
		}
		c.Publish(ackTopic, 1, false, b) // not waited for: this is paho's delivery goroutine
	}); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	return e, cl
}

// send publishes msg signed with the cloud's key.
func (cl *testCloud) send(topic string, msg vsync.Message) {
	cl.sendAs(topic, msg, cloudKeyID, cloudKey)
}

// sendAs publishes msg signed with key as keyID, or unsigned if keyID is "".
func (cl *testCloud) sendAs(topic string, msg vsync.Message, keyID string, key ed25519.PrivateKey) {
	cl.t.Helper()
	env, err := vsync.Seal(msg)
	if err != nil {
		cl.t.Fatal(err)
	}
	if keyID != "" {
		if err := env.Sign(keyID, key); err != nil {
			cl.t.Fatal(err)
		}
	}
	b, err := env.Marshal()
	if err != nil {
		cl.t.Fatal(err)
	}
	if tok := cl.c.Publish(topic, 1, false, b); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		cl.t.Fatalf("publish %s: %v", topic, tok.Error())
	}
}

// waitEvents waits until every kind of event in want has come up.
func (cl *testCloud) waitEvents(want map[string]func(vsync.Event) bool) {
	cl.t.Helper()
	timeout := time.After(10 * time.Second)
	for len(want) > 0 {
		select {
		case batch := <-cl.events:
			for _, ev := range batch.Events {
				for name, match := range want {
					if match(ev) {
						delete(want, name)
					}
				}
			}
		case <-timeout:
			cl.t.Fatalf("events never came up: %v", slices.Collect(maps.Keys(want)))
		}
	}
}

// waitRejected waits until the edge's metrics count n messages rejected for
// reason.
func (e *edgeOnSim) waitRejected(t *testing.T, reason string, n float64) {
	t.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	timeout := time.After(10 * time.Second)
	for {
		got := testutil.ToFloat64(e.main.Metrics.SyncRejected.WithLabelValues(reason))
		if got == n {
			return
		}
		select {
		case <-tick.C:
		case <-timeout:
			t.Fatalf("varco_edge_sync_rejected_total{reason=%q} = %v, want %v", reason, got, n)
		}
	}
}

func now() vsync.Timestamp { return vsync.TimestampOf(time.Now()) }

// newMember is the delta that adds member 2000 (card 118:2000) at version 1.
func newMember(t *testing.T, policy *vsync.OfflinePolicy) *vsync.Delta {
	key := vsync.CredentialHash(testCredentialKey(t), "card:118:2000")
	return &vsync.Delta{Header: vsync.Header{Tenant: "acme", Site: "milano", Time: now()}, Prev: 0, Version: 1,
		Upserts: []vsync.Record{{Member: 2000, Credentials: []vsync.Credential{{Key: key}}, Valid: []vsync.Window{{}},
			Devices: vsync.AllDevices, Notices: []vsync.Notice{{Text: "Welcome Sara", Priority: 1}}}}, Policy: policy}
}

func (e *edgeOnSim) waitVersion(t *testing.T, want uint64) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case v := <-e.versions:
			if v == want {
				return
			}
		case <-timeout:
			t.Fatalf("the cache never reached version %d (at %d)", want, e.main.cache.Version())
		}
	}
}

// TestCloudReachesTheTurnstile runs the edge with its sync agent on the real
// Mosquitto, and a test client in the cloud's place: a delta adds a member
// who can then pass, a command opens a gate once, and the passages come up.
func TestCloudReachesTheTurnstile(t *testing.T) {
	e, cloud := startSyncedEdge(t)

	// A new member arrives as a delta on the site's state topic.
	state, _ := vsync.StateTopic("acme", "milano")
	cloud.send(state, newMember(t, nil))
	e.waitVersion(t, 1)
	p := e.badge(t, entrance, 2000, osdp.Green, "Welcome Sara")
	e.gateOpens(t, p)

	// Reception opens the gate once for a blocked member.
	cmdTopic, _ := vsync.CommandTopic("acme", "e2e")
	p = passage{addr: entrance, mark: e.sim.Mark(), opened: e.opened(entrance)}
	cloud.send(cmdTopic, &vsync.Command{Header: vsync.Header{Tenant: "acme", Edge: "e2e", Time: now()}, ID: 77, Op: vsync.CmdOpen,
		Reader: "entrance-1", Expires: vsync.TimestampOf(time.Now().Add(time.Minute))})
	e.gateOpens(t, p)
	// A stale command is not carried out.
	p = passage{addr: entrance, mark: e.sim.Mark(), opened: e.opened(entrance)}
	cloud.send(cmdTopic, &vsync.Command{Header: vsync.Header{Tenant: "acme", Edge: "e2e", Time: vsync.TimestampOf(time.Now().Add(-2 * time.Minute))},
		ID: 78, Op: vsync.CmdOpen, Reader: "entrance-1", Expires: vsync.TimestampOf(time.Now().Add(-time.Minute))})
	e.gateStaysClosed(t, p)

	// A text on the exit's display, and a resync.
	mark := e.sim.Mark()
	cloud.send(cmdTopic, &vsync.Command{Header: vsync.Header{Tenant: "acme", Edge: "e2e", Time: now()}, ID: 79, Op: vsync.CmdShow,
		Reader: "exit-1", Text: "Closing in 10 minutes", Seconds: 5, Expires: vsync.TimestampOf(time.Now().Add(time.Minute))})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := e.sim.WaitSince(ctx, mark, sim.Shows(exit, "Closing in 10 minutes")); err != nil {
		t.Fatalf("the text is not on the display: %v", err)
	}
	cloud.send(cmdTopic, &vsync.Command{Header: vsync.Header{Tenant: "acme", Edge: "e2e", Time: now()}, ID: 80, Op: vsync.CmdResync,
		Expires: vsync.TimestampOf(time.Now().Add(time.Minute))})

	// The passage of the new member and the commands' acknowledgements come
	// up as events.
	cloud.waitEvents(map[string]func(vsync.Event) bool{
		"passage": func(ev vsync.Event) bool {
			return ev.Kind == vsync.EventPassage && ev.Member == 2000 && ev.Decision == vsync.DecisionGrant
		},
		"remote open": func(ev vsync.Event) bool { return ev.Kind == vsync.EventRemoteOpen && ev.Command == 77 },
		"show done": func(ev vsync.Event) bool {
			return ev.Kind == vsync.EventCommandDone && ev.Command == 79 && ev.Reader == "exit-1"
		},
		"resync done": func(ev vsync.Event) bool {
			return ev.Kind == vsync.EventCommandDone && ev.Command == 80 && ev.Reader == ""
		},
	})
}

// TestUntrustedMessages publishes what a broker in the wrong hands could:
// an unsigned delta does not change the cache, a forged command does not
// open the gate; both are counted in the metrics.
func TestUntrustedMessages(t *testing.T) {
	e, cloud := startSyncedEdge(t)
	state, _ := vsync.StateTopic("acme", "milano")
	cmdTopic, _ := vsync.CommandTopic("acme", "e2e")

	cloud.sendAs(state, newMember(t, nil), "", nil)
	p := passage{addr: entrance, mark: e.sim.Mark(), opened: e.opened(entrance)}
	cloud.sendAs(cmdTopic, &vsync.Command{Header: vsync.Header{Tenant: "acme", Edge: "e2e", Time: now()}, ID: 91, Op: vsync.CmdOpen,
		Reader: "entrance-1", Expires: vsync.TimestampOf(time.Now().Add(time.Minute))}, cloudKeyID, otherKey)
	e.gateStaysClosed(t, p)
	e.waitRejected(t, "unsigned", 1)
	e.waitRejected(t, "forged", 1)
	if v := e.main.cache.Version(); v != 0 {
		t.Fatalf("cache version %d after an unsigned delta", v)
	}
	e.badge(t, entrance, 2000, osdp.Red, "Unknown badge")

	// The signed delta gets through.
	cloud.send(state, newMember(t, nil))
	e.waitVersion(t, 1)
	e.gateOpens(t, e.badge(t, entrance, 2000, osdp.Green, "Welcome Sara"))
}

// testCredentialKey is the key writeConfig gives the edge.
func testCredentialKey(t *testing.T) []byte {
	k, err := hex.DecodeString("000102030405060708090a0b0c0d0e0f")
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestStaleCacheFailsClosed gives the site a policy that fails blocks closed
// after a second out of sync, then loses a delta: once the edge has been out
// of sync for longer, a member with no block at all is stopped with the
// offline text, and the metrics say how stale the edge is.
func TestStaleCacheFailsClosed(t *testing.T) {
	e, cloud := startSyncedEdge(t)
	state, _ := vsync.StateTopic("acme", "milano")
	policy := &vsync.OfflinePolicy{Limits: []vsync.OfflineLimit{{Rule: vsync.RuleBlock, Mode: vsync.FailClosed, After: 1}}}
	cloud.send(state, newMember(t, policy))
	e.waitVersion(t, 1)
	e.gateOpens(t, e.badge(t, entrance, 2000, osdp.Green, "Welcome Sara"))

	// 1→5 never comes: a gap, the edge asks for a catch-up nobody answers.
	cloud.send(state, &vsync.Delta{Header: vsync.Header{Tenant: "acme", Site: "milano", Time: now()}, Prev: 5, Version: 6})
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	timeout := time.After(10 * time.Second)
	for e.main.agent.Staleness(time.Now()) <= time.Second {
		select {
		case <-tick.C:
		case <-timeout:
			t.Fatalf("the edge is not stale: staleness %v", e.main.agent.Staleness(time.Now()))
		}
	}
	p := e.badge(t, entrance, 2000, osdp.Red, "Offline: please see reception")
	e.gateStaysClosed(t, p)
	if v := stalenessSeconds(t, e); v <= 1 {
		t.Errorf("varco_edge_sync_staleness_seconds = %v, want more than 1", v)
	}
	// The limit is on blocks: the other checks stand, an unknown badge is unknown.
	e.badge(t, entrance, cardUnknown, osdp.Red, "Unknown badge")
}

func stalenessSeconds(t *testing.T, e *edgeOnSim) float64 {
	t.Helper()
	mfs, err := e.main.Metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "varco_edge_sync_staleness_seconds" {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatal("no varco_edge_sync_staleness_seconds")
	return 0
}
