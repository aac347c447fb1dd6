package mqtt_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"varco.dev/cloud"
	"varco.dev/cloud/internal/pgtest"
	"varco.dev/cloud/mqtt"
	"varco.dev/cloud/postgres"
	vsync "varco.dev/protocol/sync"
)

// ingestEnv is a real database with two tenants and their edges, a broker,
// and the cloud's client running an Ingester and a Commander.
type ingestEnv struct {
	db        *postgres.DB
	admin     context.Context // tenant A's admin
	tenant    string          // tenant A's slug
	site      *cloud.Site
	edge      *cloud.Edge
	password  string
	member    *cloud.Member
	edgeB     *cloud.Edge // tenant B's edge, at B's site
	passwordB string
	tenantB   string
	siteB     *cloud.Site
	broker    string // URL
	embedded  *mqtt.Broker
	sealer    *mqtt.MemSealer
	ingester  *mqtt.Ingester
	commander *mqtt.Commander
	client    *mqtt.Client
}

// randomSlug is a tenant slug of its own, so that tests sharing the system
// Mosquitto do not hear each other's edges.
func randomSlug(prefix string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

// setupIngest starts everything on the embedded broker (with the edges'
// credentials from the database) or, with mosquitto, on the system
// Mosquitto (anonymous).
func setupIngest(t testing.TB, mosquitto bool) *ingestEnv {
	t.Helper()
	db := pgtest.NewDB(t, nil)
	e := &ingestEnv{db: db, tenant: randomSlug("a"), tenantB: randomSlug("b"), sealer: mqtt.NewMemSealer()}
	tenants, sites := postgres.NewTenantService(db), postgres.NewSiteService(db)
	edges := postgres.NewEdgeService(db, "")
	newTenant := func(slug string) (context.Context, *cloud.Site) {
		admin := &cloud.Operator{Email: "admin@" + slug + ".test", Name: "Admin"}
		if err := tenants.CreateTenant(context.Background(), &cloud.Tenant{Name: slug, Slug: slug}, admin, "correct horse battery"); err != nil {
			t.Fatal(err)
		}
		ctx := cloud.NewContextWithOperator(context.Background(), admin)
		site := &cloud.Site{Name: "Site " + slug}
		if err := sites.CreateSite(ctx, site); err != nil {
			t.Fatal(err)
		}
		return ctx, site
	}
	var bctx context.Context
	e.admin, e.site = newTenant(e.tenant)
	bctx, e.siteB = newTenant(e.tenantB)
	e.edge = &cloud.Edge{SiteID: e.site.ID, Code: "e1", Name: "Front"}
	sec, err := edges.CreateEdge(e.admin, e.edge)
	if err != nil {
		t.Fatal(err)
	}
	e.password = sec.Password
	e.edgeB = &cloud.Edge{SiteID: e.siteB.ID, Code: "e1", Name: "B's front"}
	if sec, err = edges.CreateEdge(bctx, e.edgeB); err != nil {
		t.Fatal(err)
	}
	e.passwordB = sec.Password
	e.member = &cloud.Member{Kind: cloud.KindPerson, FirstName: "Anna", LastName: "Rossi"}
	if err := postgres.NewMemberService(db).CreateMember(e.admin, e.member); err != nil {
		t.Fatal(err)
	}

	cfg := mqtt.ClientConfig{ClientID: "cloud-" + e.tenant, Logger: logFor(t)}
	if mosquitto {
		requireMosquitto(t)
		e.broker = "tcp://127.0.0.1:1883"
	} else {
		mem := mqtt.NewMemCredentials(cheap)
		if err := mem.AddCloud("cloud", password); err != nil {
			t.Fatal(err)
		}
		b, err := mqtt.New(mqtt.Config{Addr: "127.0.0.1:0", Logger: logFor(t),
			Credentials: mqtt.CredentialsChain{postgres.NewEdgeCredentials(db), mem}})
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(b.Stop)
		e.embedded, e.broker = b, "tcp://"+b.Addr()
		cfg.Username, cfg.Password = "cloud", password
	}
	cfg.Broker = e.broker
	if e.client, err = mqtt.NewClient(cfg); err != nil {
		t.Fatal(err)
	}
	if e.ingester, err = mqtt.NewIngester(mqtt.IngesterConfig{Store: postgres.NewEventStore(db), Sealer: e.sealer, Logger: logFor(t)}); err != nil {
		t.Fatal(err)
	}
	e.ingester.Register(e.client)
	if e.commander, err = mqtt.NewCommander(mqtt.CommanderConfig{Store: postgres.NewCommandStore(db), Sealer: e.sealer,
		Client: e.client, Logger: logFor(t)}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.client.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return e
}

// edgeClient is an edge as the broker sees it: a plain paho client (the
// cloud module must not import the edge's agent) that publishes the
// protocol's messages and collects the Acks and Commands sent to it, with
// their signatures checked.
type edgeClient struct {
	t                  testing.TB
	paho               paho.Client
	tenant, site, code string
	acks               chan *vsync.Ack
	cmds               chan *vsync.Command
	bad                chan error
	seq                uint64 // Header.Seq
}

func (e *ingestEnv) dialEdge(t testing.TB, tenant string, site int64, code, username, pass string) (*edgeClient, error) {
	t.Helper()
	c := &edgeClient{t: t, tenant: tenant, site: strconv.FormatInt(site, 10), code: code,
		acks: make(chan *vsync.Ack, 1024), cmds: make(chan *vsync.Command, 100), bad: make(chan error, 100)}
	o := paho.NewClientOptions().AddBroker(e.broker).SetClientID(username).SetCleanSession(true).SetProtocolVersion(4).
		SetAutoReconnect(false).SetConnectRetry(false).SetConnectTimeout(wait).
		SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) { c.receive(e.sealer, m.Payload()) })
	if e.embedded != nil {
		o.SetUsername(username).SetPassword(pass)
	}
	c.paho = paho.NewClient(o)
	tok := c.paho.Connect()
	if !tok.WaitTimeout(wait) {
		return nil, errors.New("connect: timeout")
	}
	if err := tok.Error(); err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.paho.Disconnect(100) })
	ack, _ := vsync.AckTopic(tenant, code)
	cmd, _ := vsync.CommandTopic(tenant, code)
	sub := c.paho.SubscribeMultiple(map[string]byte{ack: 1, cmd: 1}, nil)
	if !sub.WaitTimeout(wait) || sub.Error() != nil {
		return nil, fmt.Errorf("subscribe: %v", sub.Error())
	}
	return c, nil
}

func (e *ingestEnv) mustDialEdge(t testing.TB) *edgeClient {
	t.Helper()
	c, err := e.dialEdge(t, e.tenant, e.site.ID, e.edge.Code, e.edge.MQTTUsername, e.password)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// receive checks a message's signature against the tenant's key and hands
// it on.
func (c *edgeClient) receive(sealer *mqtt.MemSealer, b []byte) {
	env, err := vsync.UnmarshalEnvelope(b)
	if err == nil {
		var key ed25519.PublicKey
		var id string
		if id, key, err = sealer.PublicKey(c.tenant); err == nil && env.KeyID != id {
			err = fmt.Errorf("key id %q, want %q", env.KeyID, id)
		}
		if err == nil {
			err = env.Verify(key)
		}
	}
	var msg vsync.Message
	if err == nil {
		msg, err = env.Open()
	}
	switch m := msg.(type) {
	case *vsync.Ack:
		c.acks <- m
	case *vsync.Command:
		c.cmds <- m
	default:
		c.bad <- fmt.Errorf("received %T: %v", msg, err)
	}
}

func (c *edgeClient) header() vsync.Header {
	c.seq++
	return vsync.Header{Tenant: c.tenant, Site: c.site, Edge: c.code, Seq: c.seq, Time: vsync.TimestampOf(time.Now())}
}

// send publishes msg on its topic at QoS 1 and waits for the PUBACK.
func (c *edgeClient) send(msg vsync.Message) {
	c.t.Helper()
	topic, err := vsync.TopicFor(msg)
	if err != nil {
		c.t.Fatal(err)
	}
	b, err := vsync.Marshal(msg)
	if err != nil {
		c.t.Fatal(err)
	}
	c.publishRaw(topic.String(), b)
}

func (c *edgeClient) publishRaw(topic string, b []byte) {
	c.t.Helper()
	tok := c.paho.Publish(topic, 1, false, b)
	if !tok.WaitTimeout(wait) || tok.Error() != nil {
		c.t.Fatalf("publish on %s: %v", topic, tok.Error())
	}
}

// passages is a batch of n grants of member from seq first.
func (c *edgeClient) passages(first uint64, n int, member int64) *vsync.Events {
	m := &vsync.Events{Header: c.header(), Boot: 1}
	for i := range n {
		m.Events = append(m.Events, vsync.Event{Seq: first + uint64(i), Time: vsync.TimestampOf(time.Now()), Kind: vsync.EventPassage,
			Reader: "r1", Credential: vsync.CredentialKey{byte(i + 1)}, Member: vsync.MemberRef(member),
			Decision: vsync.DecisionGrant})
	}
	return m
}

func (c *edgeClient) birth(lastSeq uint64) *vsync.Birth {
	return &vsync.Birth{Header: c.header(), Boot: 1, CacheVersion: 3, Software: "test", LastSeq: lastSeq,
		Readers: []vsync.Reader{{ID: "r1", Device: vsync.DeviceEntrance, Online: true}}}
}

// births sends Births until the ingester has recorded one: the cloud's
// client subscribes on connect, in paho's goroutine.
func (c *edgeClient) births(in *mqtt.Ingester, lastSeq uint64) {
	c.t.Helper()
	before := in.Stats().Births
	deadline := time.Now().Add(wait)
	for in.Stats().Births == before {
		if time.Now().After(deadline) {
			c.t.Fatal("the ingester never recorded a birth")
		}
		c.send(c.birth(lastSeq))
		for range 10 {
			if in.Stats().Births != before {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

func (c *edgeClient) nextAck() *vsync.Ack {
	c.t.Helper()
	select {
	case a := <-c.acks:
		return a
	case err := <-c.bad:
		c.t.Fatal(err)
	case <-time.After(wait):
		c.t.Fatal("no ack")
	}
	return nil
}

func (c *edgeClient) nextCommand() *vsync.Command {
	c.t.Helper()
	select {
	case m := <-c.cmds:
		return m
	case err := <-c.bad:
		c.t.Fatal(err)
	case <-time.After(wait):
		c.t.Fatal("no command")
	}
	return nil
}

func (c *edgeClient) noAck() {
	c.t.Helper()
	select {
	case a := <-c.acks:
		c.t.Fatalf("unexpected ack %d", a.Seq)
	default:
	}
}

func (e *ingestEnv) count(t testing.TB, query string, args ...any) int {
	t.Helper()
	var n int
	if err := e.db.Pool.QueryRow(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestIngest runs an edge's uplink through each broker: batches duplicated,
// reordered and overlapping are stored once each and acknowledged up to the
// high-water mark; forged, foreign and malformed messages are counted and
// dropped and the next batch is still served; a new journal starts a new
// epoch; commands reach the edge signed and are marked done by its report.
func TestIngest(t *testing.T) {
	for _, name := range []string{"embedded", "mosquitto"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := setupIngest(t, name == "mosquitto")
			// A command stored while nothing could send it goes out on the birth.
			queued, _, err := postgres.NewCommandStore(e.db).CreateCommand(e.admin, e.edge.ID,
				cloud.CommandRequest{Op: cloud.CommandShow, Reader: "r1", Text: "Benvenuti", Seconds: 5})
			if err != nil {
				t.Fatal(err)
			}
			edge := e.mustDialEdge(t)
			edge.births(e.ingester, 0)
			if c := edge.nextCommand(); c.ID != uint64(queued.ID) || c.Op != vsync.CmdShow || c.Text != "Benvenuti" {
				t.Fatalf("pending command = %+v", c)
			}
			edge.noAck() // nothing stored yet: nothing to acknowledge

			m := e.member.ID
			for _, step := range []struct {
				first uint64
				n     int
				acked uint64
			}{
				{1, 10, 10},
				{1, 10, 10},  // a duplicate
				{21, 10, 10}, // ahead of a gap
				{11, 10, 30}, // the gap filled
				{25, 11, 35}, // overlapping
			} {
				edge.send(edge.passages(step.first, step.n, m))
				if a := edge.nextAck(); a.Seq != step.acked || a.Boot != 1 || a.Edge != "e1" || a.Tenant != e.tenant {
					t.Fatalf("batch %d+%d: ack %+v, want seq %d", step.first, step.n, a, step.acked)
				}
			}
			if n := e.count(t, `SELECT count(DISTINCT seq) FROM edge_events WHERE edge_id = $1`, e.edge.ID); n != 35 ||
				e.count(t, `SELECT count(*) FROM edge_events`) != 35 {
				t.Fatalf("%d events stored, want 35 once each", n)
			}
			if e.count(t, `SELECT count(*) FROM members WHERE id = $1 AND last_visit_at IS NOT NULL`, m) != 1 {
				t.Error("the member's last visit was not set")
			}

			// Forged, foreign and malformed messages, published where the
			// broker lets them through: the cloud's own account on the
			// embedded broker, anyone on the anonymous Mosquitto.
			rogue := edge
			if e.embedded != nil {
				rogue = &edgeClient{t: t, tenant: e.tenant, site: edge.site, code: "e1", acks: make(chan *vsync.Ack, 10),
					cmds: make(chan *vsync.Command, 10), bad: make(chan error, 10)}
				o := paho.NewClientOptions().AddBroker(e.broker).SetClientID("rogue-cloud").SetUsername("cloud").SetPassword(password).
					SetProtocolVersion(4).SetAutoReconnect(false)
				rogue.paho = paho.NewClient(o)
				if tok := rogue.paho.Connect(); !tok.WaitTimeout(wait) || tok.Error() != nil {
					t.Fatal(tok.Error())
				}
				defer rogue.paho.Disconnect(100)
			}
			before := e.ingester.Stats()
			events, _ := vsync.EventsTopic(e.tenant, "e1")
			rogue.publishRaw(events, []byte("not cbor"))
			other := rogue.passages(36, 1, m)
			other.Edge = "e2" // another edge's batch on e1's topic
			b, _ := vsync.Marshal(other)
			rogue.publishRaw(events, b)
			wrongTenant := rogue.passages(36, 1, m)
			wrongTenant.Tenant = e.tenantB // B's edge e1 speaking on A's topic
			b, _ = vsync.Marshal(wrongTenant)
			rogue.publishRaw(events, b)
			wrongSite := rogue.passages(36, 1, m)
			wrongSite.Site = strconv.FormatInt(e.siteB.ID, 10)
			rogue.send(wrongSite) // A's edge claiming B's site
			ghost := rogue.passages(36, 1, m)
			ghost.Edge = "ghost" // an edge the cloud does not know, on its own topic
			rogue.send(ghost)
			ack := &vsync.Ack{Header: rogue.header(), Boot: 1, Seq: 99}
			b, _ = vsync.Marshal(ack)
			rogue.publishRaw(events, b) // an Ack on an events topic
			// The next honest batch is served: the ingester did not stop.
			edge.send(edge.passages(36, 1, m))
			if a := edge.nextAck(); a.Seq != 36 {
				t.Fatalf("ack after the rejects = %d, want 36", a.Seq)
			}
			after := e.ingester.Stats()
			malformed, foreign, unknown := after.Malformed-before.Malformed, after.Foreign-before.Foreign, after.Unknown-before.Unknown
			if malformed < 1 || foreign < 4 || unknown < 1 || (e.embedded != nil && (malformed != 1 || foreign != 4 || unknown != 1)) {
				t.Errorf("rejects: %d malformed, %d foreign, %d unknown; want 1, 4, 1", malformed, foreign, unknown)
			}
			if n := e.count(t, `SELECT count(*) FROM edge_events`); n != 36 {
				t.Errorf("%d events stored, want 36", n)
			}

			// A command: published signed, carried out, reported, done.
			cmd, err := e.commander.SendCommand(e.admin, e.edge.ID, cloud.CommandRequest{Op: cloud.CommandOpen, Reader: "r1"})
			if err != nil || cmd.Status != cloud.CommandSent {
				t.Fatalf("send = %+v, %v", cmd, err)
			}
			c := edge.nextCommand()
			if c.ID != uint64(cmd.ID) || c.Op != vsync.CmdOpen || c.Reader != "r1" || c.Expires.Time().Before(time.Now()) {
				t.Fatalf("command received = %+v", c)
			}
			done := &vsync.Events{Header: edge.header(), Boot: 1, Events: []vsync.Event{
				{Seq: 37, Time: vsync.TimestampOf(time.Now()), Kind: vsync.EventRemoteOpen, Reader: "r1", Command: c.ID},
				{Seq: 38, Time: vsync.TimestampOf(time.Now()), Kind: vsync.EventCommandDone, Reader: "r1", Command: uint64(queued.ID)},
			}}
			edge.send(done)
			if a := edge.nextAck(); a.Seq != 38 {
				t.Fatalf("ack of the reports = %d", a.Seq)
			}
			cmds, err := e.commander.FindCommands(e.admin, e.edge.ID, 0, 0)
			if err != nil || len(cmds) != 2 || cmds[0].Status != cloud.CommandDone || cmds[1].Status != cloud.CommandDone {
				t.Errorf("commands = %+v, %v", cmds, err)
			}

			// The edge restarts with its journal: the birth is acknowledged.
			edge.send(edge.birth(40))
			if a := edge.nextAck(); a.Seq != 38 {
				t.Fatalf("ack of the birth = %d, want 38", a.Seq)
			}
			// A new disk: the journal restarts at 1, in a new epoch.
			edge.send(edge.birth(2))
			edge.send(edge.passages(1, 2, m))
			if a := edge.nextAck(); a.Seq != 2 {
				t.Fatalf("ack in the new journal = %d, want 2", a.Seq)
			}
			if n := e.count(t, `SELECT count(*) FROM edge_events WHERE journal_epoch = 1`); n != 2 {
				t.Errorf("%d events in the new epoch, want 2", n)
			}
			if st := e.ingester.Stats(); st.Failed != 0 {
				t.Errorf("stats = %+v", st)
			}
		})
	}
}

// TestIngestStatus: the edge's retained online status, then the last will
// the broker publishes when the edge's connection drops without a word,
// reach the edge's row.
func TestIngestStatus(t *testing.T) {
	t.Parallel()
	e := setupIngest(t, false)
	edges := postgres.NewEdgeService(e.db, "")
	statusTopic, _ := vsync.StatusTopic(e.tenant, "e1")
	c := e.mustDialEdge(t)
	c.births(e.ingester, 0)
	online, _ := vsync.Marshal(&vsync.Status{Header: c.header(), Online: true, Boot: 1, CacheVersion: 9})
	if tok := c.paho.Publish(statusTopic, 1, true, online); !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	edgeOnline := func(want bool) func() bool {
		return func() bool {
			ed, err := edges.FindEdgeByID(e.admin, e.edge.ID)
			return err == nil && ed.Status.Online == want && ed.Status.CacheVersion == 9
		}
	}
	waitFor(t, edgeOnline(true))
	// The edge reconnects with a last will (made now, after its birth),
	// then its connection breaks: the broker publishes the will.
	will, _ := vsync.Marshal(&vsync.Status{Header: c.header(), Online: false, Boot: 1, CacheVersion: 9})
	conns := make(chan net.Conn, 1)
	o := paho.NewClientOptions().AddBroker(e.broker).SetClientID(e.edge.MQTTUsername).SetUsername(e.edge.MQTTUsername).
		SetPassword(e.password).SetProtocolVersion(4).SetAutoReconnect(false).SetBinaryWill(statusTopic, will, 1, true).
		SetCustomOpenConnectionFn(func(uri *url.URL, _ paho.ClientOptions) (net.Conn, error) {
			conn, err := net.Dial("tcp", uri.Host)
			if err == nil {
				conns <- conn
			}
			return conn, err
		})
	crash := paho.NewClient(o)
	if tok := crash.Connect(); !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	(<-conns).Close()
	waitFor(t, edgeOnline(false))
	crash.Disconnect(0)
}

// TestIngestBrokerRefuses: on the embedded broker with the database's
// credentials, unknown edges, wrong passwords and deleted edges cannot
// connect, and an edge cannot publish on another tenant's topics.
func TestIngestBrokerRefuses(t *testing.T) {
	t.Parallel()
	e := setupIngest(t, false)
	for _, tc := range []struct{ username, password string }{
		{e.tenant + "/ghost", e.password},
		{e.edge.MQTTUsername, "wrong"},
		{e.edge.MQTTUsername, e.passwordB},
		{e.tenant + "/e1/x", e.password},
	} {
		if _, err := e.dialEdge(t, e.tenant, e.site.ID, "e1", tc.username, tc.password); err == nil {
			t.Errorf("%s with %q connected", tc.username, tc.password)
		}
	}
	// B's edge, connected with its own credentials, publishes on A's topic:
	// the broker drops its connection (MQTT 3.1.1 has no negative PUBACK).
	b, err := e.dialEdge(t, e.tenantB, e.siteB.ID, "e1", e.edgeB.MQTTUsername, e.passwordB)
	if err != nil {
		t.Fatal(err)
	}
	a := e.mustDialEdge(t)
	a.births(e.ingester, 0)
	forged := b.passages(5, 1, e.member.ID) // stored, it would be a second event
	forged.Tenant, forged.Site = e.tenant, strconv.FormatInt(e.site.ID, 10)
	topic, _ := vsync.EventsTopic(e.tenant, "e1")
	payload, _ := vsync.Marshal(forged)
	tok := b.paho.Publish(topic, 1, false, payload)
	tok.WaitTimeout(wait)
	// A's own next batch is the first thing stored.
	a.send(a.passages(1, 1, e.member.ID))
	if ack := a.nextAck(); ack.Seq != 1 {
		t.Fatalf("ack = %d", ack.Seq)
	}
	if n := e.count(t, `SELECT count(*) FROM edge_events`); n != 1 {
		t.Errorf("%d events stored, want A's 1", n)
	}
	// A deleted edge cannot connect any more.
	if err := postgres.NewEdgeService(e.db, "").DeleteEdge(e.admin, e.edge.ID, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := e.dialEdge(t, e.tenant, e.site.ID, "e1", e.edge.MQTTUsername, e.password); err == nil {
		t.Error("a deleted edge connected")
	}
}

// logFor logs into a test's log, and nowhere for a benchmark.
func logFor(t testing.TB) *slog.Logger {
	if tt, ok := t.(*testing.T); ok {
		return testLogger(tt)
	}
	return slog.New(slog.DiscardHandler)
}

// waitFor waits until cond holds, for something another goroutine does.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition never held")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
