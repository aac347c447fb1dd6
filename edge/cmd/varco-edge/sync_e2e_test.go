package main

import (
	"encoding/hex"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"varco.dev/firmware-sim/sim"
	"varco.dev/protocol/osdp"
	vsync "varco.dev/protocol/sync"
)

// mosquitto is the broker these machines run; CI=true makes its absence a
// failure rather than a skip.
const mosquitto = "127.0.0.1:1883"

func needMosquitto(t *testing.T) {
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

// TestCloudReachesTheTurnstile runs the edge with its sync agent on the real
// Mosquitto, and a test client in the cloud's place: a delta adds a member
// who can then pass, a command opens a gate once, and the passages come up.
func TestCloudReachesTheTurnstile(t *testing.T) {
	needMosquitto(t)
	pw := filepath.Join(t.TempDir(), "mqtt.password")
	if err := os.WriteFile(pw, []byte("secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e := startEdgeWith(t, sim.Config{Readers: sim.Readers(2)}, "testdata/members.ndjson",
		"[mqtt]\nbroker = \"tcp://"+mosquitto+"\"\nusername = \"e2e\"\npassword_file = \""+pw+"\"\n")

	cloud := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + mosquitto).
		SetClientID("varco-e2e-cloud-" + hex.EncodeToString([]byte(t.Name()))[:16]).SetCleanSession(true))
	if tok := cloud.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	defer cloud.Disconnect(100)
	events := make(chan *vsync.Events, 64)
	eventsTopic, _ := vsync.EventsTopic("acme", "e2e")
	if tok := cloud.Subscribe(eventsTopic, 1, func(_ paho.Client, msg paho.Message) {
		if m, err := vsync.Unmarshal(msg.Payload()); err == nil {
			if ev, ok := m.(*vsync.Events); ok {
				events <- ev
			}
		}
	}); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	send := func(topic string, msg vsync.Message) {
		t.Helper()
		b, err := vsync.Marshal(msg)
		if err != nil {
			t.Fatal(err)
		}
		if tok := cloud.Publish(topic, 1, false, b); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("publish %s: %v", topic, tok.Error())
		}
	}

	// A new member arrives as a delta on the site's state topic.
	key := vsync.CredentialHash(testCredentialKey(t), "card:118:2000")
	state, _ := vsync.StateTopic("acme", "milano")
	send(state, &vsync.Delta{Header: vsync.Header{Tenant: "acme", Site: "milano"}, Prev: 0, Version: 1,
		Upserts: []vsync.Record{{Member: 2000, Credentials: []vsync.Credential{{Key: key}}, Valid: []vsync.Window{{}},
			Devices: vsync.AllDevices, Notices: []vsync.Notice{{Text: "Welcome Sara", Priority: 1}}}}})
	select {
	case <-e.versions:
	case <-time.After(10 * time.Second):
		t.Fatal("the delta never reached the cache")
	}
	if v := e.main.cache.Version(); v != 1 {
		t.Fatalf("cache version = %d, want 1", v)
	}
	p := e.badge(t, entrance, 2000, osdp.Green, "Welcome Sara")
	e.gateOpens(t, p)

	// Reception opens the gate once for a blocked member.
	cmdTopic, _ := vsync.CommandTopic("acme", "e2e")
	p = passage{addr: entrance, mark: e.sim.Mark(), opened: e.opened(entrance)}
	send(cmdTopic, &vsync.Command{Header: vsync.Header{Tenant: "acme", Edge: "e2e"}, ID: 77, Op: vsync.CmdOpen,
		Reader: "entrance-1", Expires: vsync.TimestampOf(time.Now().Add(time.Minute))})
	e.gateOpens(t, p)
	// A stale command is not carried out.
	p = passage{addr: entrance, mark: e.sim.Mark(), opened: e.opened(entrance)}
	send(cmdTopic, &vsync.Command{Header: vsync.Header{Tenant: "acme", Edge: "e2e"}, ID: 78, Op: vsync.CmdOpen,
		Reader: "entrance-1", Expires: vsync.TimestampOf(time.Now().Add(-time.Minute))})
	e.gateStaysClosed(t, p)

	// The passage of the new member and the remote opening come up as events.
	var sawPassage, sawRemote bool
	timeout := time.After(10 * time.Second)
	for !sawPassage || !sawRemote {
		select {
		case batch := <-events:
			for _, ev := range batch.Events {
				sawPassage = sawPassage || (ev.Kind == vsync.EventPassage && ev.Member == 2000 && ev.Decision == vsync.DecisionGrant)
				sawRemote = sawRemote || (ev.Kind == vsync.EventRemoteOpen && ev.Command == 77)
			}
		case <-timeout:
			t.Fatalf("events never came up: passage %v, remote open %v", sawPassage, sawRemote)
		}
	}
}

// testCredentialKey is the key writeConfig gives the edge.
func testCredentialKey(t *testing.T) []byte {
	k, err := hex.DecodeString("000102030405060708090a0b0c0d0e0f")
	if err != nil {
		t.Fatal(err)
	}
	return k
}
