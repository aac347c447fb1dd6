package mqtt_test

import (
	"context"
	"errors"
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

// setup starts a broker on a free port with edges
//
//	t1/e1 at site s1, t1/e2 at s1, t1/e3 at s2, t2/e1 at s1
//
// and the cloud user "cloud".
func setup(t *testing.T) *mqtt.Broker {
	t.Helper()
	creds := mqtt.NewMemCredentials(cheap)
	for _, e := range [][3]string{{"t1", "s1", "e1"}, {"t1", "s1", "e2"}, {"t1", "s2", "e3"}, {"t2", "s1", "e1"}} {
		if _, err := creds.AddEdge(e[0], e[1], e[2], password); err != nil {
			t.Fatal(err)
		}
	}
	if err := creds.AddCloud("cloud", password); err != nil {
		t.Fatal(err)
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
func dial(t *testing.T, b *mqtt.Broker, username, pass, id string, edit func(*paho.ClientOptions)) (*client, error) {
	t.Helper()
	c := &client{msgs: make(chan msg, 100), lost: make(chan error, 1), conn: make(chan net.Conn, 1)}
	o := paho.NewClientOptions().
		AddBroker("tcp://" + b.Addr()).
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
	t.Cleanup(func() { c.Disconnect(100) })
	return c, nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// mustDial connects or fails the test.
func mustDial(t *testing.T, b *mqtt.Broker, username string, edit func(*paho.ClientOptions)) *client {
	t.Helper()
	c, err := dial(t, b, username, password, "", edit)
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

func TestConnect(t *testing.T) {
	t.Parallel()
	b := setup(t)
	foreignWill := func(o *paho.ClientOptions) { o.SetWill("varco/v1/t1/edge/e2/status", "offline", 1, true) }
	ownWill := func(o *paho.ClientOptions) { o.SetWill("varco/v1/t1/edge/e1/status", "offline", 1, true) }
	for _, tc := range []struct {
		name, user, pass, id string
		edit                 func(*paho.ClientOptions)
		ok                   bool
	}{
		{"edge", "t1/e1", password, "", nil, true},
		{"edge with its status as will", "t1/e1", password, "", ownWill, true},
		{"cloud", "cloud", password, "cloud-1", nil, true},
		{"bad password", "t1/e1", "wrong", "", nil, false},
		{"empty password", "t1/e1", "", "", nil, false},
		{"unknown user", "t1/e9", password, "", nil, false},
		{"bad cloud password", "cloud", "wrong", "", nil, false},
		{"client id of another edge", "t1/e1", password, "t1/e2", nil, false},
		{"will on another edge's status", "t1/e1", password, "", foreignWill, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := dial(t, b, tc.user, tc.pass, tc.id, tc.edit)
			switch {
			case tc.ok && err != nil:
				t.Fatalf("refused: %v", err)
			case !tc.ok && err == nil:
				c.Disconnect(0)
				t.Fatal("accepted")
			case !tc.ok && !errors.Is(err, pahopackets.ErrorRefusedNotAuthorised):
				t.Fatalf("error %v, want %v", err, pahopackets.ErrorRefusedNotAuthorised)
			}
		})
	}
}

func TestPublishACL(t *testing.T) {
	t.Parallel()
	b := setup(t)
	cloud := mustDial(t, b, "cloud", nil)
	if code := cloud.subscribe(t, "varco/v1/#"); code != 1 {
		t.Fatalf("cloud subscribe: code %#x", code)
	}
	edge := mustDial(t, b, "t1/e1", nil)

	// Refused at QoS 0: dropped without a word, the connection stays.
	for _, topic := range []string{
		"varco/v1/t1/edge/e2/events",    // another edge
		"varco/v1/t2/edge/e1/events",    // another tenant, same edge id
		"varco/v1/t1/site/s1/state",     // the cloud's: a forged delta
		"varco/v1/t1/edge/e1/cmd",       // the cloud's
		"varco/v1/t1/edge/e1/sync",      // the cloud's
		"varco/v1/t1/edge/E1/events",    // malformed id
		"varco/v1/t1/edge/e1/events/x",  // extra level
		"varco/v1/t1/edge/e1/unknown",   // no such kind
		"varco/v2/t1/edge/e1/events",    // another prefix
		"$SYS/broker/clients/connected", // broker's
	} {
		edge.publish(t, topic, 0, false, "forged "+topic)
	}
	// Allowed, at QoS 1: these arrive, in order, and nothing before them.
	var want []msg
	for _, kind := range []string{"events", "birth", "status", "catchup"} {
		topic := "varco/v1/t1/edge/e1/" + kind
		edge.publish(t, topic, 1, false, kind)
		want = append(want, msg{topic: topic, payload: kind})
	}
	for _, w := range want {
		if got := cloud.next(t); got != w {
			t.Fatalf("cloud received %+v, want %+v", got, w)
		}
	}
}

// TestPublishRefusedDisconnects: a QoS 1 publish the ACL refuses, and a
// publish to a wildcard (a protocol violation), disconnect an MQTT 3.1.1
// client, and what it sent reaches no one.
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
			b := setup(t)
			cloud := mustDial(t, b, "cloud", nil)
			if code := cloud.subscribe(t, "#"); code != 1 {
				t.Fatalf("cloud subscribe: code %#x", code)
			}
			forger := mustDial(t, b, "t1/e1", nil)
			forger.Publish(tc.topic, tc.qos, false, "forged") // no PUBACK will come
			select {
			case <-forger.lost:
			case <-time.After(wait):
				t.Fatal("the forger was not disconnected")
			}
			// The broker handled the forged publish before it closed
			// the connection, so it would have reached the cloud before
			// this one.
			mustDial(t, b, "t1/e2", nil).publish(t, "varco/v1/t1/edge/e2/events", 1, false, "legit")
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

func TestSubscribeACL(t *testing.T) {
	t.Parallel()
	b := setup(t)
	edge := mustDial(t, b, "t1/e1", nil)
	for _, tc := range []struct {
		filter string
		ok     bool
	}{
		{"varco/v1/t1/site/s1/state", true},
		{"varco/v1/t1/edge/e1/sync", true},
		{"varco/v1/t1/edge/e1/ack", true},
		{"varco/v1/t1/edge/e1/cmd", true},
		{"varco/v1/t1/site/s2/state", false},          // another site
		{"varco/v1/t2/site/s1/state", false},          // another tenant
		{"varco/v1/t1/edge/e2/cmd", false},            // another edge
		{"varco/v1/t1/edge/e1/events", false},         // its own upstream
		{"varco/v1/t1/edge/e2/status", false},         // another edge's status
		{"varco/v1/t1/site/+/state", false},           // wildcard
		{"varco/v1/t1/edge/e1/+", false},              // wildcard
		{"#", false},                                  // everything
		{"$share/g/varco/v1/t1/site/s1/state", false}, // shared
		{"$SYS/#", false},                             // broker's
		{"varco/v1/t1/site/S1/state", false},          // malformed id
		{"varco/v1/t1/site/s1/state/extra", false},    // extra level
	} {
		code := edge.subscribe(t, tc.filter)
		if tc.ok && code != 1 || !tc.ok && code != 0x80 {
			t.Errorf("subscribe %s: return code %#x, want ok=%v", tc.filter, code, tc.ok)
		}
	}

	// What it may read reaches it, and only that.
	cloud := mustDial(t, b, "cloud", nil)
	cloud.publish(t, "varco/v1/t1/site/s2/state", 1, false, "other site")
	cloud.publish(t, "varco/v1/t1/edge/e2/cmd", 1, false, "other edge")
	cloud.publish(t, "varco/v1/t1/site/s1/state", 1, false, "delta")
	cloud.publish(t, "varco/v1/t1/edge/e1/cmd", 1, false, "open")
	for _, want := range []msg{
		{topic: "varco/v1/t1/site/s1/state", payload: "delta"},
		{topic: "varco/v1/t1/edge/e1/cmd", payload: "open"},
	} {
		if got := edge.next(t); got != want {
			t.Fatalf("edge received %+v, want %+v", got, want)
		}
	}
}

func TestStatusAndWill(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const status = "varco/v1/t1/edge/e1/status"
	cloud := mustDial(t, b, "cloud", nil)
	if code := cloud.subscribe(t, "varco/v1/+/edge/+/status"); code != 1 {
		t.Fatalf("cloud subscribe: code %#x", code)
	}
	edge := mustDial(t, b, "t1/e1", func(o *paho.ClientOptions) { o.SetWill(status, "offline", 1, true) })
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
	late := mustDial(t, b, "cloud", func(o *paho.ClientOptions) { o.SetClientID("cloud-late") })
	if code := late.subscribe(t, "varco/v1/+/edge/+/status"); code != 1 {
		t.Fatalf("late subscribe: code %#x", code)
	}
	if got, want := late.next(t), (msg{topic: status, payload: "offline", retained: true}); got != want {
		t.Fatalf("late cloud received %+v, want %+v", got, want)
	}
}

func TestRetainOnlyOnStatus(t *testing.T) {
	t.Parallel()
	b := setup(t)
	edge := mustDial(t, b, "t1/e1", nil)
	edge.publish(t, "varco/v1/t1/edge/e1/events", 1, true, "not to keep")
	edge.publish(t, "varco/v1/t1/edge/e1/status", 1, true, "online")

	// A new subscriber gets the retained messages of its filter at once;
	// the status one is retained, the events one is not.
	cloud := mustDial(t, b, "cloud", nil)
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

func TestStartStop(t *testing.T) {
	t.Parallel()
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
	mustDial(t, b, "t1/e1", nil)
	done := make(chan struct{})
	go func() { b.Stop(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second): // less than the broker's 10 s connect timeout
		t.Fatal("Stop blocked on a connection that never sent CONNECT")
	}
}
