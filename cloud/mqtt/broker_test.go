package mqtt_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	gosync "sync"
	"testing"
	"time"

	"github.com/alexedwards/argon2id"
	paho "github.com/eclipse/paho.mqtt.golang"
	pahopackets "github.com/eclipse/paho.mqtt.golang/packets"
	"go.uber.org/goleak"

	"log/slog"

	"varco.dev/cloud/mqtt"
	vsync "varco.dev/protocol/sync"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// wait bounds every wait for something that must happen.
const wait = 10 * time.Second

// cheap argon2id parameters, so that tests do not spend 64 MiB per connect.
var cheap = &argon2id.Params{Memory: 1024, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32}

const password = "correct horse"

// testLogger writes into t.Log until the test ends, and drops what
// goroutines log afterwards.
func testLogger(t testing.TB) *slog.Logger {
	if _, bench := t.(*testing.B); bench {
		return slog.New(slog.DiscardHandler)
	}
	w := &tWriter{t: t}
	t.Cleanup(func() { w.mu.Lock(); w.done = true; w.mu.Unlock() })
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct {
	mu   gosync.Mutex
	t    testing.TB
	done bool
}

func (w *tWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimSuffix(string(p), "\n"))
	}
	return len(p), nil
}

// users are the fixture's users, every one with the password `password`:
// edges t1/e1 and t1/e2 at site s1, t1/e3 at s2, t2/e1 at s1, and two cloud
// users (two replicas, or the test's own cloud client beside the one under
// test: Mosquitto allows one connection per username).
var users = []mqtt.Credential{
	{Username: "t1/e1", Tenant: "t1", Site: "s1", Edge: "e1"},
	{Username: "t1/e2", Tenant: "t1", Site: "s1", Edge: "e2"},
	{Username: "t1/e3", Tenant: "t1", Site: "s2", Edge: "e3"},
	{Username: "t2/e1", Tenant: "t2", Site: "s1", Edge: "e1"},
	{Username: "cloud", Cloud: true},
	{Username: "cloud2", Cloud: true},
}

// user returns the fixture's credential of username, the zero one for "".
func user(t *testing.T, username string) mqtt.Credential {
	t.Helper()
	for _, c := range users {
		if c.Username == username {
			return c
		}
	}
	if username != "" {
		t.Fatalf("no fixture user %q", username)
	}
	return mqtt.Credential{}
}

// server is a broker under test that serves the fixture's users, and how
// it enforces the policy where the two brokers differ (the README of
// deploy/mosquitto lists the differences).
type server struct {
	addr string
	// checksConnect: an edge whose client id is not its username, or whose
	// will is not on its status topic, is refused at connect. Mosquitto
	// accepts both: it replaces the client id with the username
	// (use_username_as_clientid) and drops, when it would publish it, a
	// will its ACL refuses.
	checksConnect bool
	// refusesSubscribe: a subscription the ACL refuses gets 0x80 in its
	// SUBACK. Mosquitto's acl_file grants every subscription and checks
	// the read ACL on each message it would deliver.
	refusesSubscribe bool
}

// setup starts an embedded broker on a free port with the fixture's users.
func setup(t *testing.T) *mqtt.Broker {
	t.Helper()
	creds := mqtt.NewMemCredentials(cheap)
	for _, c := range users {
		var err error
		if c.Cloud {
			err = creds.AddCloud(c.Username, password)
		} else {
			_, err = creds.AddEdge(c.Tenant, c.Site, c.Edge, password)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	b, err := mqtt.New(mqtt.Config{Addr: "127.0.0.1:0", Credentials: creds, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Stop)
	return b
}

// TestEmbedded runs the tests that TestMosquitto runs too.
func TestEmbedded(t *testing.T) {
	t.Parallel()
	testBroker(t, func(t *testing.T) server {
		return server{addr: setup(t).Addr(), checksConnect: true, refusesSubscribe: true}
	})
}

// testBroker runs the tests shared by both brokers, each on a broker of its
// own that start starts. (mochi v2.7.9 may drop from its clients, and so
// deliver nothing to, a client that connects while an older connection with
// its client id is closing: the tests do not reconnect a client id they
// have just disconnected, except where they check nothing after the CONNACK
// (testConnect) or where mochi refused the first connection.)
func testBroker(t *testing.T, start func(*testing.T) server) {
	for _, tc := range []struct {
		name string
		test func(*testing.T, server)
	}{
		{"Connect", testConnect},
		{"ACL", testACL},
		{"NoTakeover", testNoTakeover},
		{"ForeignWill", testForeignWill},
		{"StatusAndWill", testStatusAndWill},
		{"LargestMessage", testLargestMessage},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.test(t, start(t))
		})
	}
}

// client is a paho client with what the test observed.
type client struct {
	paho.Client
	msgs chan msg      // messages received by any subscription
	lost chan error    // connection lost
	conn chan net.Conn // the TCP connection, for an abrupt close
}

type msg struct {
	topic    string
	payload  string
	retained bool
}

// dial connects as username with client id id (username when empty); edit
// adjusts the options. It returns the connect error.
func dial(t *testing.T, addr, username, pass, id string, edit func(*paho.ClientOptions)) (*client, error) {
	t.Helper()
	c := &client{msgs: make(chan msg, 1000), lost: make(chan error, 1), conn: make(chan net.Conn, 1)}
	o := paho.NewClientOptions().
		AddBroker("tcp://" + addr).
		SetClientID(cmpOr(id, username)).
		SetUsername(username).
		SetPassword(pass).
		SetCleanSession(true).
		SetProtocolVersion(4).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetConnectTimeout(wait).
		SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) {
			c.msgs <- msg{m.Topic(), string(m.Payload()), m.Retained()}
		}).
		SetConnectionLostHandler(func(_ paho.Client, err error) { c.lost <- err }).
		SetCustomOpenConnectionFn(func(uri *url.URL, _ paho.ClientOptions) (net.Conn, error) {
			conn, err := net.Dial("tcp", uri.Host)
			if err == nil {
				select { // paho may retry with MQTT 3.1 after a refusal
				case c.conn <- conn:
				default:
				}
			}
			return conn, err
		})
	if edit != nil {
		edit(o)
	}
	c.Client = paho.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(wait) {
		t.Fatalf("connect %s: timeout", username)
	}
	if err := tok.Error(); err != nil {
		return nil, err
	}
	t.Cleanup(c.close)
	return c, nil
}

// close disconnects gracefully: it returns once the DISCONNECT is sent, so
// that the broker discards the will rather than publish it.
func (c *client) close() { c.Disconnect(uint(wait / time.Millisecond)) }

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// mustDial connects or fails the test.
func mustDial(t *testing.T, addr, username string, edit func(*paho.ClientOptions)) *client {
	t.Helper()
	c, err := dial(t, addr, username, password, "", edit)
	if err != nil {
		t.Fatalf("connect %s: %v", username, err)
	}
	return c
}

// subscribe subscribes at QoS 1 and returns the SUBACK return code.
func (c *client) subscribe(t *testing.T, filter string) byte {
	t.Helper()
	tok := c.Subscribe(filter, 1, nil)
	if !tok.WaitTimeout(wait) {
		t.Fatalf("subscribe %s: timeout", filter)
	}
	res := tok.(*paho.SubscribeToken).Result() // keyed without a $share/ prefix
	if len(res) != 1 {
		t.Fatalf("subscribe %s: return codes %v (error %v)", filter, res, tok.Error())
	}
	for _, code := range res {
		return code
	}
	return 0
}

// unsubscribe unsubscribes and waits for the UNSUBACK.
func (c *client) unsubscribe(t *testing.T, filters ...string) {
	t.Helper()
	tok := c.Unsubscribe(filters...)
	if !tok.WaitTimeout(wait) {
		t.Fatalf("unsubscribe %s: timeout", filters)
	}
	if err := tok.Error(); err != nil {
		t.Fatalf("unsubscribe %s: %v", filters, err)
	}
}

// publish publishes and, for QoS 1, waits for the PUBACK.
func (c *client) publish(t *testing.T, topic string, qos byte, retained bool, payload string) {
	t.Helper()
	tok := c.Publish(topic, qos, retained, payload)
	if !tok.WaitTimeout(wait) {
		t.Fatalf("publish %s: timeout", topic)
	}
	if err := tok.Error(); err != nil {
		t.Fatalf("publish %s: %v", topic, err)
	}
}

// next returns the next message c receives.
func (c *client) next(t *testing.T) msg {
	t.Helper()
	select {
	case m := <-c.msgs:
		return m
	case <-time.After(wait):
		t.Fatal("no message")
	}
	return msg{}
}

func testConnect(t *testing.T, s server) {
	foreignWill := func(o *paho.ClientOptions) { o.SetWill("varco/v1/t1/edge/e2/status", "offline", 1, true) }
	ownWill := func(o *paho.ClientOptions) { o.SetWill("varco/v1/t1/edge/e1/status", "offline", 1, true) }
	for _, tc := range []struct {
		name, user, pass, id string
		edit                 func(*paho.ClientOptions)
		ok                   bool
	}{
		{"edge", "t1/e1", password, "", nil, true},
		{"edge with its status as will", "t1/e1", password, "", ownWill, true},
		{"cloud", "cloud", password, "", nil, true},
		{"bad password", "t1/e1", "wrong", "", nil, false},
		{"empty password", "t1/e1", "", "", nil, false},
		{"unknown user", "t1/e9", password, "", nil, false},
		{"anonymous", "", "", "anonymous", nil, false},
		{"bad cloud password", "cloud", "wrong", "", nil, false},
		{"client id of another edge", "t1/e1", password, "t1/e2", nil, !s.checksConnect},        // testNoTakeover
		{"will on another edge's status", "t1/e1", password, "", foreignWill, !s.checksConnect}, // testForeignWill
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := dial(t, s.addr, tc.user, tc.pass, tc.id, tc.edit)
			switch {
			case tc.ok && err != nil:
				t.Fatalf("refused: %v", err)
			case !tc.ok && err == nil:
				c.close()
				t.Fatal("accepted")
			case !tc.ok && !errors.Is(err, pahopackets.ErrorRefusedNotAuthorised):
				t.Fatalf("error %v, want %v", err, pahopackets.ErrorRefusedNotAuthorised)
			}
			if c != nil {
				c.close() // before the next case takes over its session
			}
		})
	}
}

// testNoTakeover: an edge that connects with another edge's client id does
// not take over that edge's connection (and session): the embedded broker
// refuses it, Mosquitto gives it its own username as client id.
func testNoTakeover(t *testing.T, s server) {
	victim := mustDial(t, s.addr, "t1/e2", nil)
	forger, err := dial(t, s.addr, "t1/e1", password, "t1/e2", nil)
	if s.checksConnect != (err != nil) {
		t.Fatalf("connect with client id t1/e2: error %v", err)
	}
	if forger != nil {
		forger.close()
	}
	// A takeover would have closed the victim's connection before the
	// broker answered the forger's CONNECT; a PUBACK shows it is still up.
	victim.publish(t, "varco/v1/t1/edge/e2/events", 1, false, "still here")
}

// testForeignWill: an edge's will on another edge's status topic never
// reaches a subscriber: the embedded broker refuses the connect, Mosquitto
// drops the will when it would publish it.
func testForeignWill(t *testing.T, s server) {
	cloud := mustDial(t, s.addr, "cloud", nil)
	if code := cloud.subscribe(t, "varco/v1/+/edge/+/status"); code != 1 {
		t.Fatalf("cloud subscribe: code %#x", code)
	}
	forger, err := dial(t, s.addr, "t1/e1", password, "", func(o *paho.ClientOptions) {
		o.SetWill("varco/v1/t1/edge/e2/status", "forged offline", 1, true)
	})
	if s.checksConnect != (err != nil) {
		t.Fatalf("connect with a foreign will: error %v", err)
	}
	if forger != nil {
		(<-forger.conn).Close() // abrupt: the broker publishes the will
		// By the time it answers this CONNECT of the same client id, the
		// broker has dealt with the old connection and its will.
		forger = mustDial(t, s.addr, "t1/e1", nil)
		forger.publish(t, "varco/v1/t1/edge/e1/status", 1, false, "online")
		if got, want := cloud.next(t), (msg{topic: "varco/v1/t1/edge/e1/status", payload: "online"}); got != want {
			t.Fatalf("cloud received %+v, want %+v", got, want)
		}
	}
}

func testStatusAndWill(t *testing.T, s server) {
	const status = "varco/v1/t1/edge/e1/status"
	cloud := mustDial(t, s.addr, "cloud", nil)
	if code := cloud.subscribe(t, "varco/v1/+/edge/+/status"); code != 1 {
		t.Fatalf("cloud subscribe: code %#x", code)
	}
	// mochi sends the retained messages of a subscription after its SUBACK:
	// a PUBACK shows it is done, and will not send the status below twice.
	cloud.publish(t, "varco/v1/t9/edge/e9/cmd", 1, false, "sync")
	edge := mustDial(t, s.addr, "t1/e1", func(o *paho.ClientOptions) { o.SetWill(status, "offline", 1, true) })
	edge.publish(t, status, 1, true, "online")
	if got, want := cloud.next(t), (msg{topic: status, payload: "online"}); got != want {
		t.Fatalf("cloud received %+v, want %+v", got, want)
	}

	// Abrupt disconnect: the broker sends the will.
	(<-edge.conn).Close()
	if got, want := cloud.next(t), (msg{topic: status, payload: "offline"}); got != want {
		t.Fatalf("cloud received %+v, want the will %+v", got, want)
	}

	// The will is retained: a cloud that starts now sees it at once.
	late := mustDial(t, s.addr, "cloud2", nil)
	if code := late.subscribe(t, status); code != 1 {
		t.Fatalf("late subscribe: code %#x", code)
	}
	if got, want := late.next(t), (msg{topic: status, payload: "offline", retained: true}); got != want {
		t.Fatalf("late cloud received %+v, want %+v", got, want)
	}
}

// testLargestMessage: a sync message of the largest size, a snapshot chunk,
// gets through (Mosquitto has a max_packet_size).
func testLargestMessage(t *testing.T, s server) {
	const sync = "varco/v1/t1/edge/e1/sync"
	edge := mustDial(t, s.addr, "t1/e1", nil)
	if code := edge.subscribe(t, sync); code != 1 {
		t.Fatalf("edge subscribe: code %#x", code)
	}
	chunk := strings.Repeat("x", vsync.MaxMessageSize)
	mustDial(t, s.addr, "cloud", nil).publish(t, sync, 1, false, chunk)
	if got := edge.next(t); got.topic != sync || got.payload != chunk {
		t.Fatalf("edge received %d bytes on %s, want %d bytes on %s", len(got.payload), got.topic, len(chunk), sync)
	}
}

// TestPublishRefusedDisconnects: a QoS 1 publish the ACL refuses, and a
// publish to a wildcard (a protocol violation), disconnect an MQTT 3.1.1
// client, and what it sent reaches no one. (Mosquitto disconnects on the
// wildcard too, but acknowledges a refused QoS 1 publish and drops it.)
func TestPublishRefusedDisconnects(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, topic string
		qos         byte
	}{
		{"QoS 1 to another edge", "varco/v1/t1/edge/e2/events", 1},
		{"QoS 1 to its site's state", "varco/v1/t1/site/s1/state", 1},
		{"wildcard +", "varco/v1/t1/edge/+/events", 0},
		{"wildcard #", "varco/v1/t1/edge/#", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			addr := setup(t).Addr()
			cloud := mustDial(t, addr, "cloud", nil)
			if code := cloud.subscribe(t, "#"); code != 1 {
				t.Fatalf("cloud subscribe: code %#x", code)
			}
			forger := mustDial(t, addr, "t1/e1", nil)
			forger.Publish(tc.topic, tc.qos, false, "forged") // no PUBACK will come
			select {
			case <-forger.lost:
			case <-time.After(wait):
				t.Fatal("the forger was not disconnected")
			}
			// The broker handled the forged publish before it closed
			// the connection, so it would have reached the cloud before
			// this one.
			mustDial(t, addr, "t1/e2", nil).publish(t, "varco/v1/t1/edge/e2/events", 1, false, "legit")
			for {
				got := cloud.next(t)
				if strings.HasPrefix(got.topic, "$SYS/") {
					continue
				}
				if want := (msg{topic: "varco/v1/t1/edge/e2/events", payload: "legit"}); got != want {
					t.Fatalf("cloud received %+v, want %+v", got, want)
				}
				break
			}
		})
	}
}

// TestRetainOnlyOnStatus: the embedded broker clears the retain flag of an
// edge's publish on any topic but its status. (Mosquitto cannot.)
func TestRetainOnlyOnStatus(t *testing.T) {
	t.Parallel()
	addr := setup(t).Addr()
	edge := mustDial(t, addr, "t1/e1", nil)
	edge.publish(t, "varco/v1/t1/edge/e1/events", 1, true, "not to keep")
	edge.publish(t, "varco/v1/t1/edge/e1/status", 1, true, "online")

	// A new subscriber gets the retained messages of its filter at once;
	// the status one is retained, the events one is not.
	cloud := mustDial(t, addr, "cloud", nil)
	if code := cloud.subscribe(t, "varco/v1/t1/edge/e1/+"); code != 1 {
		t.Fatalf("cloud subscribe: code %#x", code)
	}
	if got, want := cloud.next(t), (msg{topic: "varco/v1/t1/edge/e1/status", payload: "online", retained: true}); got != want {
		t.Fatalf("cloud received %+v, want %+v", got, want)
	}
	// Retained messages come before live ones; a live marker shows no
	// other retained message was pending.
	edge.publish(t, "varco/v1/t1/edge/e1/birth", 1, false, "marker")
	if got, want := cloud.next(t), (msg{topic: "varco/v1/t1/edge/e1/birth", payload: "marker"}); got != want {
		t.Fatalf("cloud received %+v, want %+v", got, want)
	}
}

// TestStartStop is not parallel: it checks that nothing listens on the
// stopped broker's port, which a parallel test could have taken meanwhile.
func TestStartStop(t *testing.T) {
	creds := mqtt.NewMemCredentials(cheap)
	if _, err := mqtt.New(mqtt.Config{}); err == nil {
		t.Error("New without Credentials: no error")
	}
	b, err := mqtt.New(mqtt.Config{Addr: "127.0.0.1:0", Credentials: creds, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	b.Stop() // before Start: nothing to do
	ctx, cancel := context.WithCancel(t.Context())
	if err := b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	addr := b.Addr()
	if strings.HasSuffix(addr, ":0") || addr == "" {
		t.Fatalf("Addr %q", addr)
	}
	if err := b.Start(ctx); err == nil {
		t.Error("second Start: no error")
	}

	// The address is taken while it runs.
	other, _ := mqtt.New(mqtt.Config{Addr: addr, Credentials: creds, Logger: testLogger(t)})
	if err := other.Start(t.Context()); err == nil {
		other.Stop()
		t.Errorf("second broker on %s: no error", addr)
	}

	// Cancelling Start's context stops it; Stop waits for that.
	cancel()
	b.Stop()
	b.Stop()
	if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		conn.Close()
		t.Errorf("%s still accepts connections after Stop", addr)
	}
}

// TestStopWithSilentConnection: a connection that never sends its CONNECT
// does not hold up Stop (mochi alone would wait for it forever).
func TestStopWithSilentConnection(t *testing.T) {
	t.Parallel()
	b := setup(t)
	conn, err := net.Dial("tcp", b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// A connected client proves the broker accepted conn before it.
	mustDial(t, b.Addr(), "t1/e1", nil)
	done := make(chan struct{})
	go func() { b.Stop(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second): // less than the broker's 10 s connect timeout
		t.Fatal("Stop blocked on a connection that never sent CONNECT")
	}
}

// TestReconnectAtOnce: an edge whose connection breaks reconnects at once,
// while the broker still cleans up after the old connection (sending its
// will). The new connection must keep its subscriptions: mochi's cleanup
// works by client id, and the hook's OnConnect lets it finish first.
func TestReconnectAtOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const (
		cmd    = "varco/v1/t1/edge/e1/cmd"
		status = "varco/v1/t1/edge/e1/status"
	)
	cloud := mustDial(t, b.Addr(), "cloud", nil)
	will := func(o *paho.ClientOptions) { o.SetWill(status, "offline", 1, true) }
	edge := mustDial(t, b.Addr(), "t1/e1", will)
	for i := range 20 {
		if code := edge.subscribe(t, cmd); code != 1 {
			t.Fatalf("round %d: subscribe code %#x", i, code)
		}
		(<-edge.conn).Close() // abrupt: the broker sends the will while the edge comes back
		edge = mustDial(t, b.Addr(), "t1/e1", will)
		if code := edge.subscribe(t, cmd); code != 1 {
			t.Fatalf("round %d: resubscribe code %#x", i, code)
		}
		payload := fmt.Sprint(i)
		cloud.publish(t, cmd, 1, false, payload)
		if got := edge.next(t); got.topic != cmd || got.payload != payload {
			t.Fatalf("round %d: the reconnected edge received %+v, want %s on %s", i, got, payload, cmd)
		}
	}
}
