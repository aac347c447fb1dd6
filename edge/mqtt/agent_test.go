package mqtt

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"go.uber.org/goleak"

	"varco.dev/edge"
	"varco.dev/edge/badger"
	vsync "varco.dev/protocol/sync"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// wait bounds every wait of the tests.
const wait = 10 * time.Second

// brokerURL is the real Mosquitto the tests run against (VARCO_TEST_MQTT,
// default tcp://127.0.0.1:1883, anonymous). Under CI=true a missing broker
// fails the test, elsewhere it skips it.
func brokerURL(t *testing.T) string {
	t.Helper()
	url := os.Getenv("VARCO_TEST_MQTT")
	if url == "" {
		url = "tcp://127.0.0.1:1883"
	}
	conn, err := net.DialTimeout("tcp", strings.TrimPrefix(url, "tcp://"), time.Second)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no MQTT broker at %s: %v", url, err)
		}
		t.Skipf("no MQTT broker at %s: %v", url, err)
	}
	conn.Close()
	return url
}

func randomID(t *testing.T, prefix string) string {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return prefix + "-" + hex.EncodeToString(b)
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

var tenantKey = []byte("0123456789abcdef0123456789abcdef")

func cardKey(i int) vsync.CredentialKey {
	return vsync.CredentialHash(tenantKey, fmt.Sprintf("card:%d", i))
}

func rec(m int) vsync.Record {
	return vsync.Record{
		Member:      vsync.MemberRef(m),
		Credentials: []vsync.Credential{{Key: cardKey(m)}},
		Valid:       []vsync.Window{{}},
		Devices:     vsync.DeviceSetOf(vsync.DeviceEntrance),
	}
}

// The cloud's signing key in the tests, and another that is not the cloud's.
var (
	cloudKey   = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))
	otherKey   = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{8}, ed25519.SeedSize))
	cloudKeyID = "cloud-1"
)

// seal encodes msg signed with key under keyID; an empty keyID leaves it
// unsigned.
func seal(t testing.TB, msg vsync.Message, keyID string, key ed25519.PrivateKey) []byte {
	t.Helper()
	env, err := vsync.Seal(msg)
	if err != nil {
		t.Fatal(err)
	}
	if keyID != "" {
		if err := env.Sign(keyID, key); err != nil {
			t.Fatal(err)
		}
	}
	b, err := env.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// bundle is what a test needs: the stores, the agent's config, the cloud.
type bundle struct {
	cfg     Config
	cache   *badger.Cache
	journal *badger.Journal
	cloud   *cloud
	handled chan vsync.Kind // the kinds of the messages the agent handled
}

func setup(t *testing.T) *bundle {
	t.Helper()
	url := brokerURL(t)
	ctx := context.Background()
	log := testLogger(t)
	cache, err := badger.OpenCache(ctx, t.TempDir(), badger.CacheOptions{Logger: log, MinFree: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cache.Close() })
	journal, err := badger.OpenJournal(ctx, t.TempDir(), badger.JournalOptions{Logger: log, MinFree: 1, Fsync: edge.FsyncNever})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { journal.Close() })
	cfg := Config{
		Broker:   url,
		Tenant:   randomID(t, "t"),
		Site:     randomID(t, "s"),
		Edge:     randomID(t, "e"),
		Software: "test-1.0",
		Readers: func() []vsync.Reader {
			return []vsync.Reader{{ID: "r1", Device: vsync.DeviceEntrance, Online: true}}
		},
		Logger:    log,
		Batch:     10,
		Window:    2,
		CloudKeys: map[string]ed25519.PublicKey{cloudKeyID: cloudKey.Public().(ed25519.PublicKey)},
	}
	return &bundle{cfg: cfg, cache: cache, journal: journal, cloud: newCloud(t, url, cfg), handled: make(chan vsync.Kind, 1000)}
}

// start runs an agent until the test ends or stop is called.
func (b *bundle) start(t *testing.T) (a *Agent, stop func()) {
	t.Helper()
	a, err := New(b.cfg, b.cache, b.journal)
	if err != nil {
		t.Fatal(err)
	}
	a.afterMessage = func(k vsync.Kind) { b.handled <- k }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(wait):
			t.Fatal("Run did not return")
		}
	}
	t.Cleanup(stop)
	return a, stop
}

// waitHandled waits until the agent has handled n more messages.
func (b *bundle) waitHandled(t *testing.T, n int) {
	t.Helper()
	deadline := time.After(wait)
	for range n {
		select {
		case <-b.handled:
		case <-deadline:
			t.Fatalf("the agent did not handle %d messages", n)
		}
	}
}

// cloud is the test's remote peer: a paho client that speaks the protocol
// from the cloud's side.
type cloud struct {
	t    *testing.T
	cfg  Config
	c    paho.Client
	msgs chan received
}

type received struct {
	topic    string
	retained bool
	msg      vsync.Message
}

func newCloud(t *testing.T, url string, cfg Config) *cloud {
	cl := &cloud{t: t, cfg: cfg, msgs: make(chan received, 1000)}
	opts := paho.NewClientOptions().AddBroker(url).SetClientID(randomID(t, "cloud")).SetCleanSession(true)
	cl.c = paho.NewClient(opts)
	if tok := cl.c.Connect(); !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("cloud connect: %v", tok.Error())
	}
	t.Cleanup(func() { cl.c.Disconnect(100) })
	filter := vsync.TopicPrefix + "/" + cfg.Tenant + "/edge/" + cfg.Edge + "/+"
	tok := cl.c.Subscribe(filter, 1, func(_ paho.Client, m paho.Message) {
		if len(m.Payload()) == 0 {
			return // the cleanup's clearing of the retained status
		}
		msg, err := vsync.Unmarshal(m.Payload())
		if err != nil {
			t.Errorf("cloud: %s: %v", m.Topic(), err)
			return
		}
		cl.msgs <- received{m.Topic(), m.Retained(), msg}
	})
	if !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("cloud subscribe: %v", tok.Error())
	}
	t.Cleanup(func() {
		// Clear the retained status so the broker does not keep it.
		if tok := cl.c.Publish(vsync.TopicPrefix+"/"+cfg.Tenant+"/edge/"+cfg.Edge+"/status", 1, true, nil); !tok.WaitTimeout(wait) {
			t.Error("clear retained status")
		}
	})
	return cl
}

// send publishes msg, with the cloud's header for the agent, on topic,
// signed with the cloud's key.
func (cl *cloud) send(topic string, msg vsync.Message) {
	cl.t.Helper()
	cl.sendAs(topic, msg, cloudKeyID, cloudKey)
}

// sendAs is send with another key, or unsigned with an empty keyID.
func (cl *cloud) sendAs(topic string, msg vsync.Message, keyID string, key ed25519.PrivateKey) {
	cl.t.Helper()
	h := headerOf(msg)
	if h.Tenant == "" {
		h.Tenant = cl.cfg.Tenant
	}
	if h.Time == 0 {
		h.Time = vsync.TimestampOf(time.Now())
	}
	cl.sendRaw(topic, seal(cl.t, msg, keyID, key))
}

func (cl *cloud) sendRaw(topic string, b []byte) {
	cl.t.Helper()
	if tok := cl.c.Publish(topic, 1, false, b); !tok.WaitTimeout(wait) || tok.Error() != nil {
		cl.t.Fatalf("cloud publish: %v", tok.Error())
	}
}

func (cl *cloud) stateTopic() string {
	s, _ := vsync.StateTopic(cl.cfg.Tenant, cl.cfg.Site)
	return s
}

func (cl *cloud) edgeTopic(f func(string, string) (string, error)) string {
	s, _ := f(cl.cfg.Tenant, cl.cfg.Edge)
	return s
}

// until returns the messages the cloud received up to the first one for
// which match is true, which is last.
func (cl *cloud) until(match func(received) bool) []received {
	cl.t.Helper()
	var got []received
	deadline := time.After(wait)
	for {
		select {
		case r := <-cl.msgs:
			got = append(got, r)
			if match(r) {
				return got
			}
		case <-deadline:
			cl.t.Fatalf("cloud: the message did not come; got %d others", len(got))
		}
	}
}

func isKind(k vsync.Kind) func(received) bool {
	return func(r received) bool { return r.msg.Kind() == k }
}

func count(rs []received, k vsync.Kind) int {
	n := 0
	for _, r := range rs {
		if r.msg.Kind() == k {
			n++
		}
	}
	return n
}

func delta(prev, version uint64, site string, upserts ...vsync.Record) *vsync.Delta {
	return &vsync.Delta{Header: vsync.Header{Site: site}, Prev: prev, Version: version, Upserts: upserts}
}

func (b *bundle) found(t *testing.T, member int) bool {
	t.Helper()
	var r vsync.Record
	ok, err := b.cache.Lookup(cardKey(member), &r)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

func TestBirthAndStatus(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, stop := b.start(t)
	got := b.cloud.until(isKind(vsync.KindStatus))
	if count(got, vsync.KindBirth) != 1 {
		t.Fatalf("want a birth before the status, got %d messages", len(got))
	}
	birth := got[0].msg.(*vsync.Birth)
	if birth.Boot != b.journal.Boot() || birth.Software != "test-1.0" || len(birth.Readers) != 1 || birth.Site != b.cfg.Site {
		t.Errorf("birth %+v", birth)
	}
	st := got[len(got)-1]
	if !st.msg.(*vsync.Status).Online {
		t.Errorf("status %+v: want online", st.msg)
	}

	// The status is retained: a console that subscribes later gets it.
	late := make(chan bool, 1)
	c := paho.NewClient(paho.NewClientOptions().AddBroker(b.cfg.Broker).SetClientID(randomID(t, "console")))
	if tok := c.Connect(); !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer c.Disconnect(100)
	topic := b.cloud.edgeTopic(vsync.StatusTopic)
	c.Subscribe(topic, 1, func(_ paho.Client, m paho.Message) {
		msg, err := vsync.Unmarshal(m.Payload())
		if err == nil && m.Retained() {
			select {
			case late <- msg.(*vsync.Status).Online:
			default:
			}
		}
	})
	select {
	case online := <-late:
		if !online {
			t.Error("retained status offline")
		}
	case <-time.After(wait):
		t.Fatal("no retained status")
	}

	// A clean stop publishes the offline status.
	stop()
	off := b.cloud.until(isKind(vsync.KindStatus))
	if off[len(off)-1].msg.(*vsync.Status).Online {
		t.Error("status after stop: online")
	}
}

func TestDeltas(t *testing.T) {
	t.Parallel()
	b := setup(t)
	a, _ := b.start(t)
	b.cloud.until(isKind(vsync.KindStatus)) // connected and subscribed
	site, state := b.cfg.Site, b.cloud.stateTopic()

	b.cloud.send(state, delta(0, 1, site, rec(1)))
	b.cloud.send(state, delta(1, 2, site, rec(2)))
	b.cloud.send(state, delta(2, 3, site, rec(3)))
	b.cloud.send(state, delta(1, 2, site, rec(2))) // a duplicate
	b.waitHandled(t, 4)
	if v := b.cache.Version(); v != 3 {
		t.Fatalf("version %d, want 3", v)
	}
	if !b.found(t, 1) || !b.found(t, 3) {
		t.Fatal("records missing")
	}
	if s := a.Stats(); s.DeltasApplied != 3 || s.DeltasSkipped != 1 {
		t.Fatalf("stats %+v", s)
	}

	// 3→4 goes missing: 4→5 and 5→6 are gaps, and ask for one catch-up.
	b.cloud.send(state, delta(4, 5, site, rec(5)))
	b.cloud.send(state, delta(5, 6, site, rec(6)))
	b.waitHandled(t, 2)
	got := b.cloud.until(isKind(vsync.KindCatchUp))
	if cu := got[len(got)-1].msg.(*vsync.CatchUp); cu.From != 3 {
		t.Fatalf("catch-up from %d, want 3", cu.From)
	}
	// The cloud answers on the sync topic; then the live deltas apply.
	catchUp := delta(3, 4, site, rec(4))
	catchUp.Edge = b.cfg.Edge
	b.cloud.send(b.cloud.edgeTopic(vsync.SyncTopic), catchUp)
	b.cloud.send(state, delta(4, 5, site, rec(5)))
	b.cloud.send(state, delta(5, 6, site, rec(6)))
	b.waitHandled(t, 3)
	if v := b.cache.Version(); v != 6 || !b.found(t, 4) || !b.found(t, 6) {
		t.Fatalf("version %d after the catch-up, want 6", v)
	}

	// Nothing else was asked: an event batch, published after, comes
	// before any second catch-up would.
	if _, err := b.journal.Append(context.Background(), passage(1)); err != nil {
		t.Fatal(err)
	}
	a.Notify()
	got = b.cloud.until(isKind(vsync.KindEvents))
	if n := count(got, vsync.KindCatchUp); n != 0 {
		t.Fatalf("%d more catch-ups", n)
	}
	if s := a.Stats(); s.CatchUps != 1 || s.Gaps != 2 || s.DeltasApplied != 6 {
		t.Fatalf("stats %+v", s)
	}
}

func TestSnapshot(t *testing.T) {
	t.Parallel()
	b := setup(t)
	a, _ := b.start(t)
	b.cloud.until(isKind(vsync.KindStatus))
	b.cloud.send(b.cloud.stateTopic(), delta(0, 1, b.cfg.Site, rec(1), rec(2)))
	b.waitHandled(t, 1)

	// The cloud answers a resync with a snapshot.
	a.Resync()
	b.cloud.until(isKind(vsync.KindCatchUp))
	sync := b.cloud.edgeTopic(vsync.SyncTopic)
	chunk := func(id uint64, i uint32, records ...vsync.Record) *vsync.Snapshot {
		return &vsync.Snapshot{Header: vsync.Header{Site: b.cfg.Site, Edge: b.cfg.Edge}, ID: id, Version: 10, Chunk: i, Chunks: 3, Records: records}
	}
	first := chunk(7, 0, rec(10), rec(11))
	first.Policy = &vsync.OfflinePolicy{Limits: []vsync.OfflineLimit{{Rule: vsync.RuleSuspended, Mode: vsync.FailOpen, After: 90}}}
	b.cloud.send(sync, first)
	b.cloud.send(sync, chunk(7, 1, rec(12), rec(13)))
	b.cloud.send(sync, chunk(7, 1, rec(12), rec(13))) // a duplicate
	b.waitHandled(t, 3)
	// Two chunks in: the live cache is untouched.
	if v := b.cache.Version(); v != 1 || !b.found(t, 1) || b.found(t, 10) {
		t.Fatalf("half a snapshot is live: version %d", v)
	}
	b.cloud.send(sync, chunk(7, 2, rec(14)))
	b.waitHandled(t, 1)
	if v := b.cache.Version(); v != 10 {
		t.Fatalf("version %d, want 10", v)
	}
	if p := b.cache.Policy(); p == nil || p.Limits[0] != first.Policy.Limits[0] {
		t.Fatalf("policy %+v, want chunk 0's", p)
	}
	for m := 10; m <= 14; m++ {
		if !b.found(t, m) {
			t.Errorf("member %d missing", m)
		}
	}
	if b.found(t, 1) || b.found(t, 2) {
		t.Error("old records survived the snapshot")
	}

	// A chunk out of order aborts the load, which asks again.
	a.Resync()
	b.cloud.until(isKind(vsync.KindCatchUp))
	b.cloud.send(sync, chunk(8, 0, rec(20)))
	b.cloud.send(sync, chunk(8, 2, rec(22)))
	b.waitHandled(t, 2)
	got := b.cloud.until(isKind(vsync.KindCatchUp))
	if cu := got[len(got)-1].msg.(*vsync.CatchUp); cu.From != 10 {
		t.Errorf("catch-up from %d, want 10", cu.From)
	}
	if v := b.cache.Version(); v != 10 || b.found(t, 20) {
		t.Error("an aborted snapshot changed the cache")
	}
	if s := a.Stats(); s.SnapshotsLoaded != 1 || s.SnapshotAborts != 1 {
		t.Fatalf("stats %+v", s)
	}
}

func passage(i int) vsync.Event {
	return vsync.Event{Time: vsync.TimestampOf(time.Now()), Kind: vsync.EventPassage, Reader: "r1",
		Credential: cardKey(i), Member: vsync.MemberRef(i), Decision: vsync.DecisionGrant}
}

// events checks that the batches are consecutive from first and returns the
// sequence after the last.
func events(t *testing.T, rs []received, first uint64) uint64 {
	t.Helper()
	next := first
	for _, r := range rs {
		ev, ok := r.msg.(*vsync.Events)
		if !ok {
			continue
		}
		for _, e := range ev.Events {
			if e.Seq != next {
				t.Fatalf("seq %d, want %d", e.Seq, next)
			}
			next++
		}
	}
	return next
}

func isEventsThrough(seq uint64) func(received) bool {
	return func(r received) bool {
		ev, ok := r.msg.(*vsync.Events)
		return ok && ev.Events[len(ev.Events)-1].Seq == seq
	}
}

func TestEvents(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	for i := range 25 {
		if _, err := b.journal.Append(ctx, passage(i+1)); err != nil {
			t.Fatal(err)
		}
	}
	a, stop := b.start(t)

	// A window of two batches of 10.
	got := b.cloud.until(isEventsThrough(20))
	if next := events(t, got, 1); next != 21 {
		t.Fatalf("got events through %d", next-1)
	}
	if boot := got[len(got)-1].msg.(*vsync.Events).Boot; boot != b.journal.Boot() {
		t.Errorf("boot %d, want %d", boot, b.journal.Boot())
	}
	ack := b.cloud.edgeTopic(vsync.AckTopic)
	b.cloud.send(ack, &vsync.Ack{Header: vsync.Header{Edge: b.cfg.Edge}, Seq: 10})
	b.waitHandled(t, 1)
	if n := b.journal.Backlog(); n != 15 {
		t.Fatalf("backlog %d after ack 10, want 15", n)
	}
	got = b.cloud.until(isEventsThrough(25)) // the window moved
	if next := events(t, got, 21); next != 26 {
		t.Fatalf("got events through %d", next-1)
	}

	// Restart without acknowledging 11-25: they come again, and nothing else
	// is lost.
	if s := a.Stats(); s.EventsSent != 25 || s.Acks != 1 {
		t.Fatalf("stats %+v", s)
	}
	stop()
	b.start(t)
	got = b.cloud.until(isEventsThrough(20))
	if next := events(t, got, 11); next != 21 {
		t.Fatalf("after restart: events through %d", next-1)
	}
	for i := range 3 {
		if _, err := b.journal.Append(ctx, passage(26+i)); err != nil {
			t.Fatal(err)
		}
	}
	b.cloud.send(ack, &vsync.Ack{Header: vsync.Header{Edge: b.cfg.Edge}, Seq: 20})
	got = b.cloud.until(isEventsThrough(28))
	if next := events(t, got, 21); next != 29 {
		t.Fatalf("events through %d", next-1)
	}
	b.cloud.send(ack, &vsync.Ack{Header: vsync.Header{Edge: b.cfg.Edge}, Seq: 28})
	b.waitHandled(t, 2)
	if n := b.journal.Backlog(); n != 0 {
		t.Fatalf("backlog %d, want 0", n)
	}
}

func TestRejects(t *testing.T) {
	t.Parallel()
	b := setup(t)
	a, _ := b.start(t)
	b.cloud.until(isKind(vsync.KindStatus))
	state := b.cloud.stateTopic()

	b.cloud.sendRaw(state, []byte("not a message"))
	b.cloud.send(state, delta(0, 1, "other-site", rec(1)))
	other := delta(0, 1, b.cfg.Site, rec(1))
	other.Tenant = "other-tenant"
	b.cloud.send(state, other)
	// A Delta for another edge on ours sync topic, and an ack on the state topic.
	misaddressed := delta(0, 1, b.cfg.Site, rec(1))
	misaddressed.Edge = "other-edge"
	b.cloud.send(b.cloud.edgeTopic(vsync.SyncTopic), misaddressed)
	b.cloud.send(state, &vsync.Ack{Header: vsync.Header{Edge: b.cfg.Edge}, Seq: 1})
	b.waitHandled(t, 5)
	if v := b.cache.Version(); v != 0 {
		t.Fatalf("version %d after rejected messages", v)
	}
	s := a.Stats()
	if s.Malformed != 1 || s.Foreign != 3 || s.WrongTopic != 1 {
		t.Fatalf("stats %+v", s)
	}
	// The agent goes on.
	b.cloud.send(state, delta(0, 1, b.cfg.Site, rec(1)))
	b.waitHandled(t, 1)
	if v := b.cache.Version(); v != 1 {
		t.Fatalf("version %d, want 1", v)
	}
}

func TestCommands(t *testing.T) {
	t.Parallel()
	b := setup(t)
	a, _ := b.start(t)
	b.cloud.until(isKind(vsync.KindStatus))
	cmd := &vsync.Command{Header: vsync.Header{Edge: b.cfg.Edge}, ID: 42, Op: vsync.CmdOpen, Reader: "r1",
		Expires: vsync.TimestampOf(time.Now().Add(time.Minute))}
	b.cloud.send(b.cloud.edgeTopic(vsync.CommandTopic), cmd)
	select {
	case got := <-a.Commands():
		if got.ID != 42 || got.Op != vsync.CmdOpen || got.Reader != "r1" {
			t.Fatalf("command %+v", got)
		}
	case <-time.After(wait):
		t.Fatal("no command")
	}

	// Carrying out a CmdResync is the daemon's: it calls Resync.
	a.Resync()
	got := b.cloud.until(isKind(vsync.KindCatchUp))
	if cu := got[len(got)-1].msg.(*vsync.CatchUp); !cu.Full || cu.From != 0 {
		t.Fatalf("catch-up %+v, want full from 0", cu)
	}
}

// TestReconnect drops the agent's connection under it (another client takes
// its client id over at the broker): the agent connects again by itself,
// sends a new birth and the unacknowledged events again.
func TestReconnect(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	for i := range 15 {
		if _, err := b.journal.Append(ctx, passage(i+1)); err != nil {
			t.Fatal(err)
		}
	}
	a, _ := b.start(t)
	got := b.cloud.until(isEventsThrough(15))
	if next := events(t, got, 1); next != 16 {
		t.Fatalf("events through %d", next-1)
	}
	b.cloud.send(b.cloud.edgeTopic(vsync.AckTopic), &vsync.Ack{Header: vsync.Header{Edge: b.cfg.Edge}, Seq: 5})
	b.waitHandled(t, 1)

	thief := paho.NewClient(paho.NewClientOptions().AddBroker(b.cfg.Broker).SetClientID(a.cfg.ClientID).SetAutoReconnect(false))
	if tok := thief.Connect(); !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	thief.Disconnect(0)

	got = b.cloud.until(isEventsThrough(15))
	if n := count(got, vsync.KindBirth); n < 1 {
		t.Fatal("no birth on reconnect")
	}
	first := 0
	for i, r := range got {
		if r.msg.Kind() == vsync.KindBirth {
			first = i
		}
	}
	if next := events(t, got[first:], 6); next != 16 {
		t.Fatalf("events through %d after the reconnect", next-1)
	}
	if s := a.Stats(); s.Connects < 2 {
		t.Fatalf("stats %+v", s)
	}
}

// TestBootSplit journals events in two runs: a batch carries one boot id.
func TestBootSplit(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	dir := t.TempDir()
	for run, n := range []int{3, 2} {
		j, err := badger.OpenJournal(ctx, dir, badger.JournalOptions{Logger: b.cfg.Logger, MinFree: 1, Fsync: edge.FsyncNever, Boot: vsync.BootID(run + 1)})
		if err != nil {
			t.Fatal(err)
		}
		for range n {
			if _, err := j.Append(ctx, passage(1)); err != nil {
				t.Fatal(err)
			}
		}
		if run == 0 {
			j.Close()
			continue
		}
		t.Cleanup(func() { j.Close() })
		b.journal = j
	}
	b.start(t)
	got := b.cloud.until(isEventsThrough(5))
	var batches []*vsync.Events
	for _, r := range got {
		if ev, ok := r.msg.(*vsync.Events); ok {
			batches = append(batches, ev)
		}
	}
	if len(batches) != 2 || batches[0].Boot != 1 || len(batches[0].Events) != 3 || batches[1].Boot != 2 || len(batches[1].Events) != 2 {
		t.Fatalf("batches %+v", batches)
	}
	events(t, got, 1)
}

// TestStopUnreachable stops an agent whose broker does not answer: Run
// returns and leaves no goroutine behind (TestMain checks).
func TestStopUnreachable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cache, err := badger.OpenCache(ctx, t.TempDir(), badger.CacheOptions{Logger: testLogger(t), MinFree: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer cache.Close()
	journal, err := badger.OpenJournal(ctx, t.TempDir(), badger.JournalOptions{Logger: testLogger(t), MinFree: 1, Fsync: edge.FsyncNever})
	if err != nil {
		t.Fatal(err)
	}
	defer journal.Close()
	a, err := New(Config{Broker: "tcp://127.0.0.1:1", Tenant: "t", Site: "s", Edge: "e", Software: "test", Logger: testLogger(t),
		CloudKeys: map[string]ed25519.PublicKey{cloudKeyID: cloudKey.Public().(ed25519.PublicKey)}}, cache, journal)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(runCtx) }()
	a.Notify() // handled or not, Run must stop
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(wait):
		t.Fatal("Run did not return")
	}
}

func TestConfig(t *testing.T) {
	keys := map[string]ed25519.PublicKey{cloudKeyID: cloudKey.Public().(ed25519.PublicKey)}
	good := Config{Broker: "tcp://b:1883", Tenant: "t", Site: "s", Edge: "e", Software: "x", CloudKeys: keys}
	if _, err := New(good, nilCache{}, nilJournal{}); err != nil {
		t.Fatalf("New(%+v): %v", good, err)
	}
	for _, change := range []func(c *Config){
		func(c *Config) { c.Broker = "" },
		func(c *Config) { c.Software = "" },
		func(c *Config) { c.Tenant = "T" }, // bad id
		func(c *Config) { c.Edge = "e/#" },
		func(c *Config) { c.Window = -1 },
		func(c *Config) { c.CloudKeys = nil },
		func(c *Config) { c.CloudKeys = map[string]ed25519.PublicKey{"Bad/id": keys[cloudKeyID]} },
		func(c *Config) { c.CloudKeys = map[string]ed25519.PublicKey{"k": keys[cloudKeyID][:16]} },
	} {
		cfg := good
		change(&cfg)
		if _, err := New(cfg, nilCache{}, nilJournal{}); err == nil {
			t.Errorf("New(%+v): no error", cfg)
		}
	}
}

type nilCache struct{ edge.Cache }

func (nilCache) Synced() time.Time { return time.Time{} }

type nilJournal struct{ edge.Journal }
