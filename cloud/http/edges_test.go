package http_test

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/alexedwards/argon2id"
	paho "github.com/eclipse/paho.mqtt.golang"

	"varco.dev/cloud"
	cloudhttp "varco.dev/cloud/http"
	"varco.dev/cloud/mqtt"
	"varco.dev/cloud/postgres"
	vsync "varco.dev/protocol/sync"
)

// wait bounds every wait for something that must happen.
const wait = 10 * time.Second

// brokerEnv is the API with the real MQTT side behind it: the embedded
// broker with the edges' credentials from the database, and the cloud's
// client running the ingester and the commander.
type brokerEnv struct {
	*env
	broker   *mqtt.Broker
	ingester *mqtt.Ingester
	sealer   *mqtt.MemSealer
}

func setupBroker(t *testing.T) *brokerEnv {
	t.Helper()
	be := &brokerEnv{sealer: mqtt.NewMemSealer()}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	be.env = setupWith(t, func(s *cloudhttp.Server, db *postgres.DB) {
		cloudUser := mqtt.NewMemCredentials(&argon2id.Params{Memory: 1024, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32})
		if err := cloudUser.AddCloud("cloud", password); err != nil {
			t.Fatal(err)
		}
		b, err := mqtt.New(mqtt.Config{Addr: "127.0.0.1:0", Logger: s.Logger,
			Credentials: mqtt.CredentialsChain{postgres.NewEdgeCredentials(db), cloudUser}})
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		be.broker = b
		client, err := mqtt.NewClient(mqtt.ClientConfig{Broker: "tcp://" + b.Addr(), ClientID: "cloud-test", Username: "cloud",
			Password: password, Logger: s.Logger})
		if err != nil {
			t.Fatal(err)
		}
		if be.ingester, err = mqtt.NewIngester(mqtt.IngesterConfig{Store: postgres.NewEventStore(db), Sealer: be.sealer, Logger: s.Logger}); err != nil {
			t.Fatal(err)
		}
		be.ingester.Register(client)
		if s.CommandService, err = mqtt.NewCommander(mqtt.CommanderConfig{Store: postgres.NewCommandStore(db), Sealer: be.sealer,
			Client: client, Logger: s.Logger}); err != nil {
			t.Fatal(err)
		}
		s.EdgeService = postgres.NewEdgeService(db, "tcp://"+b.Addr())
		go func() { done <- client.Run(ctx) }()
	})
	// Registered after setupWith's cleanups, so run before them: the
	// client and the broker stop before the database goes.
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
		be.broker.Stop()
	})
	return be
}

// edgeSecret is the body of POST /edges and POST /edges/{id}/password.
type edgeSecret struct {
	Edge      cloud.Edge `json:"edge"`
	Username  string     `json:"mqtt_username"`
	Password  string     `json:"mqtt_password"`
	BrokerURL string     `json:"broker_url"`
}

// edgeConn is an edge on the broker: a paho client with the credentials the
// API gave, publishing what an edge publishes.
type edgeConn struct {
	t          *testing.T
	paho       paho.Client
	h          vsync.Header
	acks, cmds chan vsync.Message
}

func dialEdge(t *testing.T, sec edgeSecret, tenant string, pass string) (*edgeConn, error) {
	t.Helper()
	u, err := url.Parse(sec.BrokerURL)
	if err != nil {
		t.Fatal(err)
	}
	c := &edgeConn{t: t, acks: make(chan vsync.Message, 10), cmds: make(chan vsync.Message, 10),
		h: vsync.Header{Tenant: tenant, Site: strconv.FormatInt(sec.Edge.SiteID, 10), Edge: sec.Edge.Code}}
	o := paho.NewClientOptions().AddBroker("tcp://" + u.Host).SetClientID(sec.Username).SetUsername(sec.Username).SetPassword(pass).
		SetProtocolVersion(4).SetAutoReconnect(false).SetConnectTimeout(wait).
		SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) {
			msg, err := vsync.Unmarshal(m.Payload())
			switch {
			case err != nil:
				t.Errorf("edge received %q: %v", m.Payload(), err)
			case msg.Kind() == vsync.KindAck:
				c.acks <- msg
			default:
				c.cmds <- msg
			}
		})
	c.paho = paho.NewClient(o)
	if tok := c.paho.Connect(); !tok.WaitTimeout(wait) || tok.Error() != nil {
		return nil, fmt.Errorf("connect: %v", tok.Error())
	}
	t.Cleanup(func() { c.paho.Disconnect(100) })
	ack, _ := vsync.AckTopic(tenant, sec.Edge.Code)
	cmd, _ := vsync.CommandTopic(tenant, sec.Edge.Code)
	if tok := c.paho.SubscribeMultiple(map[string]byte{ack: 1, cmd: 1}, nil); !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	return c, nil
}

func (c *edgeConn) send(msg vsync.Message) {
	c.t.Helper()
	topic, err := vsync.TopicFor(msg)
	if err != nil {
		c.t.Fatal(err)
	}
	b, err := vsync.Marshal(msg)
	if err != nil {
		c.t.Fatal(err)
	}
	if tok := c.paho.Publish(topic.String(), 1, false, b); !tok.WaitTimeout(wait) || tok.Error() != nil {
		c.t.Fatal(tok.Error())
	}
}

func (c *edgeConn) next(ch chan vsync.Message) vsync.Message {
	c.t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(wait):
		c.t.Fatal("nothing received")
		return nil
	}
}

// birth sends Births until the ingester has one: the cloud's client
// subscribes on connect, in paho's goroutine.
func (c *edgeConn) birth(in *mqtt.Ingester) {
	c.t.Helper()
	deadline := time.Now().Add(wait)
	for in.Stats().Births == 0 {
		if time.Now().After(deadline) {
			c.t.Fatal("the ingester never recorded a birth")
		}
		h := c.h
		h.Time = vsync.TimestampOf(time.Now())
		c.send(&vsync.Birth{Header: h, Boot: 5, CacheVersion: 1, Software: "test", Readers: []vsync.Reader{{ID: "r1", Device: vsync.DeviceEntrance}}})
		time.Sleep(20 * time.Millisecond)
	}
}

// events is a batch of passages of member (grants) at times t0+seq seconds.
func (c *edgeConn) events(first uint64, n int, member int64) *vsync.Events {
	h := c.h
	h.Time = vsync.TimestampOf(time.Now())
	m := &vsync.Events{Header: h, Boot: 5}
	for i := range n {
		seq := first + uint64(i)
		m.Events = append(m.Events, vsync.Event{Seq: seq, Time: vsync.TimestampOf(t0.Add(time.Duration(seq) * time.Second)),
			Kind: vsync.EventPassage, Reader: "r1", Credential: vsync.CredentialKey{9, byte(seq)}, Member: vsync.MemberRef(member),
			Decision: vsync.DecisionGrant})
	}
	return m
}

// TestEdgesOverHTTP: an admin registers an edge; the edge logs in to the
// broker with what the API gave and sends its passages; staff see it online
// and its passages, send it a command that it carries out, and retire it.
func TestEdgesOverHTTP(t *testing.T) {
	t.Parallel()
	e := setupBroker(t)
	a := e.tenant("club-a")
	f := populate(t, a, "A")
	var sec edgeSecret
	status, body, hdr := a.do("POST", "/api/v1/edges", map[string]any{"site_id": f.siteID, "code": "front-1", "name": "Front turnstiles"})
	if status != 201 || decodeInto(t, body, &sec).Edge.ID == 0 || hdr.Get("ETag") != `"1"` || hdr.Get("Location") != fmt.Sprintf("/api/v1/edges/%d", sec.Edge.ID) ||
		hdr.Get("Cache-Control") != "no-store" {
		t.Fatalf("create = %d %s %v", status, body, hdr)
	}
	if sec.Username != "club-a/front-1" || len(sec.Password) < 30 || sec.BrokerURL != "tcp://"+e.broker.Addr() || sec.Edge.Status.Online {
		t.Fatalf("secret = %+v", sec)
	}
	// Refused input.
	for _, tc := range []struct {
		body   any
		status int
		field  string
	}{
		{`{"site_id":`, 400, ""},
		{map[string]any{"site_id": f.siteID, "code": "x", "name": "x", "password": "mine"}, 400, "password"},
		{map[string]any{"site_id": f.siteID, "code": "Front 1", "name": "x"}, 400, "code"},
		{map[string]any{"site_id": f.siteID, "code": "front-1", "name": "again"}, 400, "code"},
		{map[string]any{"site_id": 987654, "code": "front-2", "name": "x"}, 400, "site_id"},
		{map[string]any{"code": "front-2", "name": "x"}, 400, "site_id"},
	} {
		status, body, _ := a.do("POST", "/api/v1/edges", tc.body)
		if status != tc.status || decodeErr(t, body).Error.Field != tc.field {
			t.Errorf("POST /edges %v = %d %s, want %d %q", tc.body, status, body, tc.status, tc.field)
		}
	}
	op := e.login("op-A@x.test", password)
	if status, body, _ := op.do("POST", "/api/v1/edges", map[string]any{"site_id": f.siteID, "code": "front-3", "name": "x"}); status != 403 {
		t.Errorf("operator creates an edge: %d %s", status, body)
	}

	// The edge connects and reports.
	edge, err := dialEdge(t, sec, "club-a", sec.Password)
	if err != nil {
		t.Fatal(err)
	}
	edge.birth(e.ingester)
	edge.send(edge.events(1, 5, f.memberID))
	if ack := edge.next(edge.acks).(*vsync.Ack); ack.Seq != 5 {
		t.Fatalf("ack = %+v", ack)
	}
	var list struct{ Items []cloud.Edge }
	op.must("GET", "/api/v1/edges", nil, 200, &list)
	if len(list.Items) != 1 || !list.Items[0].Status.Online || list.Items[0].Status.AckedSeq != 5 || list.Items[0].Status.Software != "test" ||
		list.Items[0].Status.BootID != "5" || len(list.Items[0].Status.Readers) != 1 || list.Items[0].Status.LastSeenAt == nil {
		t.Fatalf("edges = %+v", list.Items)
	}
	var member cloud.Member
	op.must("GET", fmt.Sprintf("/api/v1/members/%d", f.memberID), nil, 200, &member)
	if member.LastVisitAt == nil || !member.LastVisitAt.Equal(t0.Add(5*time.Second)) {
		t.Errorf("last visit = %v, want the 5th passage's time", member.LastVisitAt)
	}
	var passages struct {
		Items      []cloud.Passage
		NextCursor *string `json:"next_cursor"`
	}
	op.must("GET", fmt.Sprintf("/api/v1/members/%d/passages?limit=2", f.memberID), nil, 200, &passages)
	if len(passages.Items) != 2 || passages.Items[0].Seq != 5 || passages.NextCursor == nil || passages.Items[0].Decision != "grant" ||
		passages.Items[0].EdgeID != sec.Edge.ID {
		t.Fatalf("member passages = %+v", passages)
	}
	op.must("GET", fmt.Sprintf("/api/v1/members/%d/passages?limit=2&cursor=%s", f.memberID, url.QueryEscape(*passages.NextCursor)), nil, 200, &passages)
	if len(passages.Items) != 2 || passages.Items[0].Seq != 3 {
		t.Fatalf("second page = %+v", passages.Items)
	}
	for path, want := range map[string]int{
		"/api/v1/passages":               5,
		"/api/v1/passages?decision=deny": 0,
		fmt.Sprintf("/api/v1/passages?edge_id=%d&reader=r1", sec.Edge.ID):                5,
		"/api/v1/passages?reader=r2":                                                     0,
		"/api/v1/passages?from=2025-03-04T08:30:02Z&to=2025-03-04T08:30:04Z":             2,
		"/api/v1/passages?from=2025-03-04&to=2025-03-05":                                 5,
		fmt.Sprintf("/api/v1/passages?member_id=%d&decision=grant", f.memberID):          5,
		fmt.Sprintf("/api/v1/passages?member_id=%d", f.memberID+1000):                    0,
		fmt.Sprintf("/api/v1/members/%d/passages?from=2025-03-04T08:30:04Z", f.memberID): 2,
	} {
		op.must("GET", path, nil, 200, &passages)
		if len(passages.Items) != want {
			t.Errorf("GET %s: %d passages, want %d", path, len(passages.Items), want)
		}
	}
	for _, path := range []string{"/api/v1/passages?limit=0", "/api/v1/passages?limit=x", "/api/v1/passages?cursor=abc",
		"/api/v1/passages?from=yesterday", "/api/v1/passages?decision=maybe", "/api/v1/passages?member_id=-1",
		"/api/v1/passages?reader=R%201", "/api/v1/passages?from=2025-03-05&to=2025-03-04"} {
		if status, body, _ := op.do("GET", path, nil); status != 400 {
			t.Errorf("GET %s = %d %s, want 400", path, status, body)
		}
	}

	// A command: the staff override opens the gate once.
	var cmd cloud.EdgeCommand
	path := fmt.Sprintf("/api/v1/edges/%d/commands", sec.Edge.ID)
	op.must("POST", path, map[string]any{"op": "open", "reader": "r1", "expires_in": 30}, 201, &cmd)
	if cmd.Status != cloud.CommandSent || cmd.Op != cloud.CommandOpen {
		t.Fatalf("command = %+v", cmd)
	}
	got := edge.next(edge.cmds).(*vsync.Command)
	if got.ID != uint64(cmd.ID) || got.Op != vsync.CmdOpen || got.Reader != "r1" {
		t.Fatalf("edge received %+v", got)
	}
	h := edge.h
	h.Time = vsync.TimestampOf(time.Now())
	edge.send(&vsync.Events{Header: h, Boot: 5, Events: []vsync.Event{{Seq: 6, Time: vsync.TimestampOf(time.Now()), Kind: vsync.EventRemoteOpen,
		Reader: "r1", Command: got.ID}}})
	if ack := edge.next(edge.acks).(*vsync.Ack); ack.Seq != 6 {
		t.Fatalf("ack = %+v", ack)
	}
	var cmds struct{ Items []cloud.EdgeCommand }
	op.must("GET", path, nil, 200, &cmds)
	if len(cmds.Items) != 1 || cmds.Items[0].Status != cloud.CommandDone || cmds.Items[0].DoneAt == nil {
		t.Errorf("commands = %+v", cmds.Items)
	}
	for _, body := range []any{map[string]any{"op": "fly"}, map[string]any{"op": "show", "reader": "r1", "text": "hi"},
		map[string]any{"op": "open", "reader": "r1", "extra": 1}, "[]"} {
		if status, b, _ := op.do("POST", path, body); status != 400 {
			t.Errorf("command %v = %d %s, want 400", body, status, b)
		}
	}
	var audit struct{ Items []cloud.AuditEntry }
	a.must("GET", fmt.Sprintf("/api/v1/audit?entity=edge&entity_id=%d", sec.Edge.ID), nil, 200, &audit)
	if len(audit.Items) != 2 || audit.Items[0].Action != "edge.command" || audit.Items[1].Action != "edge.create" {
		t.Errorf("audit = %+v", audit.Items)
	}

	// Rename, rotate the password, retire.
	var ed cloud.Edge
	a.must("PATCH", fmt.Sprintf("/api/v1/edges/%d", sec.Edge.ID), map[string]any{"name": "Main entrance", "version": 1}, 200, &ed)
	if ed.Name != "Main entrance" || ed.Version != 2 || !ed.Status.Online {
		t.Errorf("renamed = %+v", ed)
	}
	// The installer's edge.toml values: ids, the tenant's credential key
	// (the one the access records were hashed with), the signing keys.
	var ec cloud.EdgeConfig
	a.must("GET", fmt.Sprintf("/api/v1/edges/%d/config", sec.Edge.ID), nil, 200, &ec)
	if ec.Tenant != "club-a" || ec.Site != strconv.FormatInt(f.siteID, 10) || ec.EdgeID != sec.Edge.Code ||
		len(ec.CredentialKey) != 64 || len(ec.CloudKeys) != 1 || !strings.HasPrefix(ec.CloudKeys[0], "club-a-1=") ||
		ec.MQTTUsername != "club-a/"+sec.Edge.Code {
		t.Errorf("edge config = %+v", ec)
	}
	if status, _, _ := op.do("GET", fmt.Sprintf("/api/v1/edges/%d/config", sec.Edge.ID), nil); status != 403 {
		t.Errorf("operator GET edge config = %d, want 403: it holds the credential key", status)
	}
	var rotated edgeSecret
	a.must("POST", fmt.Sprintf("/api/v1/edges/%d/password", sec.Edge.ID), nil, 200, &rotated)
	if rotated.Password == sec.Password || rotated.Edge.Version != 3 {
		t.Errorf("rotated = %+v", rotated)
	}
	if _, err := dialEdge(t, sec, "club-a", sec.Password); err == nil {
		t.Error("the old password still connects")
	}
	if _, err := dialEdge(t, sec, "club-a", rotated.Password); err != nil {
		t.Errorf("the new password: %v", err)
	}
	del := fmt.Sprintf("/api/v1/edges/%d", sec.Edge.ID)
	if status, _, _ := a.do("DELETE", del, nil); status != 428 {
		t.Errorf("DELETE without a version = %d", status)
	}
	if status, _, _ := a.do("DELETE", del, nil, "If-Match", `"2"`); status != 412 {
		t.Errorf("DELETE with a stale version = %d", status)
	}
	if status, _, _ := op.do("DELETE", del, nil, "If-Match", `"3"`); status != 403 {
		t.Errorf("operator DELETE = %d", status)
	}
	if status, b, _ := a.do("DELETE", del, nil, "If-Match", `"3"`); status != 204 {
		t.Fatalf("DELETE = %d %s", status, b)
	}
	if status, _, _ := a.do("GET", del, nil); status != 404 {
		t.Errorf("GET a retired edge = %d", status)
	}
	if _, err := dialEdge(t, sec, "club-a", rotated.Password); err == nil {
		t.Error("a retired edge connects")
	}
	// Its passages stay.
	op.must("GET", "/api/v1/passages", nil, 200, &passages)
	if len(passages.Items) != 5 {
		t.Errorf("%d passages after the edge was retired, want 5", len(passages.Items))
	}
}

// TestEdgesTenantIsolation: tenant B can neither see nor touch tenant A's
// edges, commands or passages, whatever ids it sends.
func TestEdgesTenantIsolation(t *testing.T) {
	t.Parallel()
	e := setup(t)
	a, b := e.tenant("club-a"), e.tenant("club-b")
	fa, fb := populate(t, a, "A"), populate(t, b, "B")
	var sec edgeSecret
	a.must("POST", "/api/v1/edges", map[string]any{"site_id": fa.siteID, "code": "gate-a", "name": "Secret gate A"}, 201, &sec)
	var cmd cloud.EdgeCommand
	a.must("POST", fmt.Sprintf("/api/v1/edges/%d/commands", sec.Edge.ID), map[string]any{"op": "show", "reader": "r1",
		"text": "secret A", "seconds": 5}, 202, &cmd) // no broker in this test: queued
	if cmd.Status != cloud.CommandQueued {
		t.Fatalf("command = %+v", cmd)
	}
	// A passage of A's member at A's edge.
	events := postgres.NewEventStore(e.db)
	if _, err := events.StoreEvents(context.Background(), &vsync.Events{Header: vsync.Header{Tenant: "club-a", Site: strconv.FormatInt(fa.siteID, 10),
		Edge: "gate-a"}, Boot: 1, Events: []vsync.Event{{Seq: 1, Time: vsync.TimestampOf(t0), Kind: vsync.EventPassage, Reader: "r1",
		Credential: vsync.CredentialKey{1}, Member: vsync.MemberRef(fa.memberID), Decision: vsync.DecisionGrant}}}); err != nil {
		t.Fatal(err)
	}
	hostile := []string{fmt.Sprint(sec.Edge.ID), "0", "-1", "9223372036854775807", "9223372036854775808", "abc", "1;DROP TABLE edges",
		"1%20OR%201=1", "%00", "01", "1e3"}
	for _, id := range hostile {
		for _, rt := range []struct {
			method, path string
			body         any
		}{
			{"GET", "/api/v1/edges/%s", nil},
			{"PATCH", "/api/v1/edges/%s", map[string]any{"name": "pwned", "version": 1}},
			{"DELETE", "/api/v1/edges/%s", nil},
			{"POST", "/api/v1/edges/%s/password", nil},
			{"GET", "/api/v1/edges/%s/config", nil},
			{"GET", "/api/v1/edges/%s/commands", nil},
			{"POST", "/api/v1/edges/%s/commands", map[string]any{"op": "open", "reader": "r1"}},
		} {
			path := fmt.Sprintf(rt.path, id)
			status, resp, _ := b.do(rt.method, path, rt.body, "If-Match", `"1"`)
			if status != 404 {
				t.Errorf("B %s %s = %d %s, want 404", rt.method, path, status, resp)
			}
			if bytes.Contains(resp, []byte("gate-a")) || bytes.Contains(resp, []byte("secret A")) {
				t.Errorf("B %s %s leaks: %s", rt.method, path, resp)
			}
		}
	}
	for _, id := range []string{fmt.Sprint(fa.memberID), "0", "abc", "9223372036854775808"} {
		if status, resp, _ := b.do("GET", "/api/v1/members/"+id+"/passages", nil); status != 404 {
			t.Errorf("B GET member %s passages = %d %s, want 404", id, status, resp)
		}
	}
	for _, path := range []string{"/api/v1/edges", "/api/v1/passages", fmt.Sprintf("/api/v1/passages?member_id=%d", fa.memberID),
		fmt.Sprintf("/api/v1/passages?edge_id=%d", sec.Edge.ID), "/api/v1/passages?reader=r1",
		fmt.Sprintf("/api/v1/members/%d/passages", fb.memberID)} {
		status, resp, _ := b.do("GET", path, nil)
		if status != 200 || !bytes.Contains(resp, []byte(`"items":[]`)) {
			t.Errorf("B GET %s = %d %s, want an empty page", path, status, resp)
		}
	}
	// B cannot put an edge at A's site.
	status, resp, _ := b.do("POST", "/api/v1/edges", map[string]any{"site_id": fa.siteID, "code": "gate-b", "name": "x"})
	if status != 400 || decodeErr(t, resp).Error.Field != "site_id" {
		t.Errorf("B creates an edge at A's site: %d %s", status, resp)
	}
	// A's edge and command are untouched.
	var ed cloud.Edge
	a.must("GET", fmt.Sprintf("/api/v1/edges/%d", sec.Edge.ID), nil, 200, &ed)
	if ed.Version != 1 || ed.Name != "Secret gate A" {
		t.Errorf("A's edge changed: %+v", ed)
	}
	var cmds struct{ Items []cloud.EdgeCommand }
	a.must("GET", fmt.Sprintf("/api/v1/edges/%d/commands", sec.Edge.ID), nil, 200, &cmds)
	if len(cmds.Items) != 1 {
		t.Errorf("A's edge has %d commands, want 1", len(cmds.Items))
	}
	if !strings.Contains(fmt.Sprint(cmds.Items[0].Text), "secret A") {
		t.Errorf("A's command = %+v", cmds.Items[0])
	}
}
