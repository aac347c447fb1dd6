package mqtt_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
	gosync "sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"varco.dev/cloud"
	"varco.dev/cloud/internal/pgtest"
	"varco.dev/cloud/mqtt"
	"varco.dev/cloud/postgres"
	vsync "varco.dev/protocol/sync"
)

// t0 is the tests' clock: a Tuesday morning in Rome.
var t0 = time.Date(2025, 3, 4, 8, 30, 0, 0, time.UTC)

// syncBundle is a tenant with a site in a fresh database, and the store
// services the tests change data through.
type syncBundle struct {
	db      *postgres.DB
	clock   *pgtest.Clock
	store   *postgres.SyncService
	signer  *postgres.Signer
	config  *postgres.SyncConfigService
	members *postgres.MemberService
	actions *postgres.ActionService
	admin   context.Context
	crm     *cloud.CRMConfig
	slug    string
	site    *cloud.Site
	siteID  string
}

// setupSync creates a tenant with a random slug (Mosquitto is shared by
// every test run on the machine) and a site.
func setupSync(t testing.TB) *syncBundle {
	t.Helper()
	clock := pgtest.NewClock(t0)
	db := pgtest.NewDB(t, clock)
	b := &syncBundle{db: db, clock: clock, store: postgres.NewSyncService(db), signer: postgres.NewSigner(db),
		config: postgres.NewSyncConfigService(db), members: postgres.NewMemberService(db), actions: postgres.NewActionService(db)}
	b.config.Signer = b.signer
	rnd := make([]byte, 5)
	_, _ = rand.Read(rnd)
	b.slug = "t" + hex.EncodeToString(rnd)
	ten := &cloud.Tenant{Name: "Club", Slug: b.slug}
	admin := &cloud.Operator{Email: b.slug + "@a.test", Name: "Admin"}
	if err := postgres.NewTenantService(db).CreateTenant(context.Background(), ten, admin, "correct horse battery"); err != nil {
		t.Fatalf("CreateTenant: %v", err)
	}
	b.admin = cloud.NewContextWithOperator(context.Background(), admin)
	b.site = &cloud.Site{Name: "Centro", Timezone: "Europe/Rome"}
	if err := postgres.NewSiteService(db).CreateSite(b.admin, b.site); err != nil {
		t.Fatalf("CreateSite: %v", err)
	}
	b.siteID = strconv.FormatInt(b.site.ID, 10)
	var err error
	if b.crm, err = postgres.NewCRMService(db).Config(b.admin); err != nil {
		t.Fatalf("Config: %v", err)
	}
	return b
}

// member creates a member with a card and a membership valid at the site.
func (b *syncBundle) member(t testing.TB, first string, birth cloud.Date) *cloud.Member {
	t.Helper()
	m := &cloud.Member{Kind: cloud.KindPerson, FirstName: first, LastName: "Rossi", Language: "en", BirthDate: birth}
	if err := b.members.CreateMember(b.admin, m); err != nil {
		t.Fatalf("CreateMember: %v", err)
	}
	if err := b.members.CreateCredential(b.admin, &cloud.Credential{MemberID: m.ID, Key: fmt.Sprintf("card:1:%d", m.ID)}); err != nil {
		t.Fatalf("CreateCredential: %v", err)
	}
	ms := &cloud.Membership{MemberID: m.ID, Name: "Annual", StartsOn: cloud.DateOf(t0.AddDate(0, -1, 0)), EndsOn: cloud.DateOf(t0.AddDate(0, 10, 0))}
	if err := b.members.CreateMembership(b.admin, ms); err != nil {
		t.Fatalf("CreateMembership: %v", err)
	}
	return m
}

func (b *syncBundle) typeID(name string) int64 {
	for _, ty := range b.crm.ActionTypes {
		if ty.Name == name {
			return ty.ID
		}
	}
	panic(name)
}

func (b *syncBundle) outcomeID(name string) int64 {
	for _, o := range b.crm.Outcomes {
		if o.Name == name {
			return o.ID
		}
	}
	panic(name)
}

// block opens a "Reception check" action (message and block) for m.
func (b *syncBundle) block(t testing.TB, m *cloud.Member) *cloud.Action {
	t.Helper()
	a := &cloud.Action{MemberID: m.ID, TypeID: b.typeID("Reception check"), Description: "medical certificate"}
	if err := b.actions.CreateAction(b.admin, a); err != nil {
		t.Fatalf("CreateAction: %v", err)
	}
	return a
}

// verify decodes a message the cloud sent, checks its signature with the
// tenant's public key named by its key id, and returns it.
func (b *syncBundle) verify(t testing.TB, payload []byte) vsync.Message {
	t.Helper()
	env, err := vsync.UnmarshalEnvelope(payload)
	if err != nil {
		t.Fatalf("envelope: %v", err)
	}
	keys, err := b.signer.PublicSigningKeys(context.Background(), b.slug)
	if err != nil {
		t.Fatal(err)
	}
	key, ok := keys[env.KeyID]
	if !ok {
		t.Fatalf("signed with key %q, the tenant has %v", env.KeyID, keys)
	}
	if err := env.Verify(key); err != nil {
		t.Fatalf("signature: %v", err)
	}
	msg, err := env.Open()
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return msg
}

// brokerEnv is a broker the tests publish through: the embedded one or
// Mosquitto.
type brokerEnv struct {
	url        string
	user, pass string               // the cloud's account
	creds      *mqtt.MemCredentials // nil for Mosquitto
}

func embeddedBroker(t testing.TB) brokerEnv {
	t.Helper()
	creds := mqtt.NewMemCredentials(cheap)
	if err := creds.AddCloud("cloud", password); err != nil {
		t.Fatal(err)
	}
	br, err := mqtt.New(mqtt.Config{Addr: "127.0.0.1:0", Credentials: creds, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := br.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(br.Stop)
	return brokerEnv{url: "tcp://" + br.Addr(), user: "cloud", pass: password, creds: creds}
}

func mosquittoBroker(t testing.TB) brokerEnv {
	t.Helper()
	requireMosquitto(t)
	return brokerEnv{url: "tcp://127.0.0.1:1883"}
}

// startPublisher runs a cloud client with a publisher on db until the test
// ends.
func startPublisher(t testing.TB, env brokerEnv, db *postgres.DB, clientID string, edit func(*mqtt.PublisherConfig)) *mqtt.Publisher {
	t.Helper()
	client, err := mqtt.NewClient(mqtt.ClientConfig{Broker: env.url, ClientID: clientID, Username: env.user, Password: env.pass, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	cfg := mqtt.PublisherConfig{Store: postgres.NewSyncService(db), Sealer: postgres.NewSigner(db), Logger: testLogger(t),
		PollInterval: 50 * time.Millisecond}
	if edit != nil {
		edit(&cfg)
	}
	p, err := mqtt.NewPublisher(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p.Register(client)
	ctx, cancel := context.WithCancel(context.Background())
	var wg gosync.WaitGroup
	wg.Go(func() {
		if err := client.Run(ctx); err != nil {
			t.Errorf("client: %v", err)
		}
	})
	wg.Go(func() {
		if err := p.Run(ctx); err != nil {
			t.Errorf("publisher: %v", err)
		}
	})
	t.Cleanup(func() { cancel(); wg.Wait() })
	return p
}

// observer is a plain MQTT client subscribed to everything of a tenant.
type observer struct {
	paho.Client
	msgs chan msg
}

// observe connects to env (as user, the cloud's account when empty) and
// subscribes to filter; it returns once the broker acknowledged the
// subscription.
func observe(t testing.TB, env brokerEnv, filter string) *observer {
	t.Helper()
	o := &observer{msgs: make(chan msg, 10000)}
	rnd := make([]byte, 4)
	_, _ = rand.Read(rnd)
	id := "observer-" + hex.EncodeToString(rnd)
	if strings.Contains(env.user, "/") {
		id = env.user // an edge
	}
	opts := paho.NewClientOptions().AddBroker(env.url).SetClientID(id).
		SetUsername(env.user).SetPassword(env.pass).SetCleanSession(true).SetAutoReconnect(false).SetOrderMatters(true).
		SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) {
			o.msgs <- msg{m.Topic(), string(m.Payload()), m.Retained()}
		})
	o.Client = paho.NewClient(opts)
	if tok := o.Connect(); !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("observer connect: %v", tok.Error())
	}
	t.Cleanup(func() { o.Disconnect(100) })
	if tok := o.Subscribe(filter, 1, nil); !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("observer subscribe: %v", tok.Error())
	}
	return o
}

// publish publishes at QoS 1 and waits for the broker.
func (o *observer) publish(t testing.TB, topic string, payload []byte) {
	t.Helper()
	if tok := o.Publish(topic, 1, false, payload); !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("publish %s: %v", topic, tok.Error())
	}
}

// next returns the next message on topic, skipping others.
func (o *observer) next(t testing.TB, topic string) msg {
	t.Helper()
	timeout := time.After(wait)
	for {
		select {
		case m := <-o.msgs:
			if m.topic == topic {
				return m
			}
		case <-timeout:
			t.Fatalf("no message on %s", topic)
		}
	}
}

// nothing checks that no message arrived on topic so far, after a round
// trip through the broker: a probe published now arrives after anything
// published before it.
func (o *observer) nothing(t *testing.T, topic, probe string) {
	t.Helper()
	o.publish(t, probe, []byte("probe"))
	for {
		m := o.next2(t)
		if m.topic == probe {
			return
		}
		if m.topic == topic {
			t.Fatalf("unexpected message on %s", topic)
		}
	}
}

func (o *observer) next2(t *testing.T) msg {
	t.Helper()
	select {
	case m := <-o.msgs:
		return m
	case <-time.After(wait):
		t.Fatal("no message")
	}
	return msg{}
}

// delta returns the next delta on topic, verified.
func (b *syncBundle) delta(t *testing.T, o *observer, topic string) *vsync.Delta {
	t.Helper()
	d, ok := b.verify(t, []byte(o.next(t, topic).payload)).(*vsync.Delta)
	if !ok {
		t.Fatalf("not a delta on %s", topic)
	}
	return d
}

// record returns the upsert of member m in d.
func record(t *testing.T, d *vsync.Delta, m *cloud.Member) vsync.Record {
	t.Helper()
	for _, r := range d.Upserts {
		if r.Member == vsync.MemberRef(m.ID) {
			return r
		}
	}
	t.Fatalf("delta %d has no upsert of member %d: %+v", d.Version, m.ID, d)
	return vsync.Record{}
}

// TestPublishActionLifecycle: a blocking CRM action created through the
// store reaches the site's state topic as a signed delta with the action,
// and closing it as the next delta without it, on both brokers.
func TestPublishActionLifecycle(t *testing.T) {
	brokers := map[string]func(testing.TB) brokerEnv{"embedded": embeddedBroker, "mosquitto": mosquittoBroker}
	for name, start := range brokers {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			env := start(t)
			b := setupSync(t)
			anna := b.member(t, "Anna", cloud.Date{})
			state, _ := vsync.StateTopic(b.slug, b.siteID)
			o := observe(t, env, "varco/v1/"+b.slug+"/#")
			startPublisher(t, env, b.db, "cloud-"+b.slug, nil)

			first := b.delta(t, o, state)
			if first.Prev != 0 || first.Version != 1 || first.Tenant != b.slug || first.Site != b.siteID || first.Edge != "" {
				t.Fatalf("first delta %d→%d of %s/%s/%s", first.Prev, first.Version, first.Tenant, first.Site, first.Edge)
			}
			if r := record(t, first, anna); len(r.Actions) != 0 || len(r.Credentials) != 1 || len(r.Valid) != 1 {
				t.Fatalf("first record: %+v", r)
			}

			a := b.block(t, anna)
			d := b.delta(t, o, state)
			if d.Prev != first.Version || d.Version <= d.Prev {
				t.Fatalf("delta %d→%d after %d", d.Prev, d.Version, first.Version)
			}
			r := record(t, d, anna)
			if len(r.Actions) != 1 || r.Actions[0].ID != uint64(a.ID) || r.Actions[0].Mode != vsync.AccessMessageBlock ||
				r.Actions[0].Text != "Please see reception" || !r.Actions[0].Devices.Has(vsync.DeviceEntrance) {
				t.Fatalf("record after the action: %+v", r.Actions)
			}

			if _, err := b.actions.AdvanceAction(b.admin, a.ID, cloud.AdvanceRequest{Mode: cloud.AdvanceClose,
				OutcomeID: b.outcomeID("Done"), Version: a.Version}); err != nil {
				t.Fatalf("AdvanceAction: %v", err)
			}
			closed := b.delta(t, o, state)
			if closed.Prev != d.Version {
				t.Fatalf("delta %d→%d after %d", closed.Prev, closed.Version, d.Version)
			}
			if r := record(t, closed, anna); len(r.Actions) != 0 {
				t.Fatalf("record after closing: %+v", r.Actions)
			}
		})
	}
}

// TestPublishersDoNotDuplicate runs two publishers (two replicas: their own
// pools, clients and signers) on one database while actions pour in: the
// site's deltas arrive once each, in order, chained by Prev.
func TestPublishersDoNotDuplicate(t *testing.T) {
	t.Parallel()
	env := embeddedBroker(t)
	b := setupSync(t)
	var ms []*cloud.Member
	for i := range 4 {
		ms = append(ms, b.member(t, fmt.Sprint("M", i), cloud.Date{}))
	}
	state, _ := vsync.StateTopic(b.slug, b.siteID)
	o := observe(t, env, "varco/v1/"+b.slug+"/#")
	replica := postgres.NewDB(b.db.URL)
	replica.Logger, replica.Now = b.db.Logger, b.clock.Now
	if err := replica.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(replica.Close)
	startPublisher(t, env, b.db, "cloud-1-"+b.slug, nil)
	startPublisher(t, env, replica, "cloud-2-"+b.slug, nil)

	const actions = 40
	for i := range actions {
		b.block(t, ms[i%len(ms)])
	}
	open := map[vsync.MemberRef]int{}
	var prev uint64
	for done := false; !done; {
		d := b.delta(t, o, state)
		if d.Prev != prev {
			t.Fatalf("delta %d→%d after version %d: duplicate or out of order", d.Prev, d.Version, prev)
		}
		prev = d.Version
		for _, r := range d.Upserts {
			open[r.Member] = len(r.Actions)
		}
		done = true
		for _, m := range ms {
			done = done && open[vsync.MemberRef(m.ID)] == actions/len(ms)
		}
	}
	// Nothing after the last one, once the site's published version is it.
	waitFor(t, func() bool {
		var v uint64
		err := b.db.Pool.QueryRow(context.Background(), `SELECT published_version FROM sync_sites WHERE site_id = $1`, b.site.ID).Scan(&v)
		return err == nil && v == prev
	})
	o.nothing(t, state, "varco/v1/"+b.slug+"/probe")
}

// edgeEnv adds edge e1 of the tenant at its site to the embedded broker's
// credentials and connects it.
func (b *syncBundle) edge(t testing.TB, env brokerEnv, name string) *observer {
	t.Helper()
	user, err := env.creds.AddEdge(b.slug, b.siteID, name, password)
	if err != nil {
		t.Fatal(err)
	}
	return observe(t, brokerEnv{url: env.url, user: user, pass: password}, "varco/v1/"+b.slug+"/edge/"+name+"/sync")
}

func (b *syncBundle) sendAsEdge(t testing.TB, e *observer, msg vsync.Message) {
	t.Helper()
	raw, err := vsync.Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	top, err := vsync.TopicFor(msg)
	if err != nil {
		t.Fatal(err)
	}
	e.publish(t, top.String(), raw)
}

// TestCatchUp: an edge catches up with the deltas it missed (CatchUp, and a
// Birth that is behind); once the log is pruned, with a snapshot whose
// chunks hold the site's whole state and the offline policy; a second
// snapshot request at once is not served again.
func TestCatchUp(t *testing.T) {
	t.Parallel()
	env := embeddedBroker(t)
	b := setupSync(t)
	var ms []*cloud.Member
	for i := range 5 {
		ms = append(ms, b.member(t, fmt.Sprint("M", i), cloud.Date{}))
	}
	state, _ := vsync.StateTopic(b.slug, b.siteID)
	sync, _ := vsync.SyncTopic(b.slug, "e1")
	o := observe(t, env, "varco/v1/"+b.slug+"/#")
	e1 := b.edge(t, env, "e1")
	p := startPublisher(t, env, b.db, "cloud-"+b.slug, func(c *mqtt.PublisherConfig) {
		c.SnapshotChunk = 2
		c.Credentials = env.creds
	})

	// The site's state as deltas build it.
	site := map[vsync.MemberRef]vsync.Record{}
	var policy *vsync.OfflinePolicy
	apply := func(d *vsync.Delta) {
		for _, r := range d.Upserts {
			site[r.Member] = r
		}
		for _, m := range d.Deletes {
			delete(site, m)
		}
		if d.Policy != nil {
			policy = d.Policy
		}
	}
	first := b.delta(t, o, state)
	apply(first)
	b.block(t, ms[0])
	apply(b.delta(t, o, state))
	if _, err := b.config.PutOfflinePolicy(b.admin, &cloud.OfflinePolicy{Limits: []cloud.OfflineLimit{
		{Rule: "block", Mode: "fail-closed", AfterSeconds: 86400}}}, 1); err != nil {
		t.Fatalf("PutOfflinePolicy: %v", err)
	}
	withPolicy := b.delta(t, o, state)
	if withPolicy.Policy == nil || len(withPolicy.Policy.Limits) != 1 || withPolicy.Policy.Limits[0].Mode != vsync.FailClosed {
		t.Fatalf("delta after the policy change: policy %+v", withPolicy.Policy)
	}
	apply(withPolicy)
	archived, err := b.members.ArchiveMember(b.admin, ms[4].ID, ms[4].Version)
	if err != nil {
		t.Fatalf("ArchiveMember: %v", err)
	}
	last := b.delta(t, o, state)
	if !slices.Equal(last.Deletes, []vsync.MemberRef{vsync.MemberRef(archived.ID)}) {
		t.Fatalf("delta after archiving: deletes %v", last.Deletes)
	}
	apply(last)

	// Deltas since the first version.
	hdr := vsync.Header{Tenant: b.slug, Site: b.siteID, Edge: "e1"}
	b.sendAsEdge(t, e1, &vsync.CatchUp{Header: hdr, From: first.Version})
	for v := first.Version; v < last.Version; {
		d := b.delta(t, o, sync)
		if d.Prev != v || d.Edge != "e1" {
			t.Fatalf("catch-up delta %d→%d for %q after %d", d.Prev, d.Version, d.Edge, v)
		}
		v = d.Version
	}
	// A birth one version behind.
	b.sendAsEdge(t, e1, &vsync.Birth{Header: hdr, Boot: 7, CacheVersion: last.Prev, Software: "test"})
	if d := b.delta(t, o, sync); d.Prev != last.Prev || d.Version != last.Version {
		t.Fatalf("birth answered with %d→%d, want %d→%d", d.Prev, d.Version, last.Prev, last.Version)
	}
	// A birth up to date: no answer.
	b.sendAsEdge(t, e1, &vsync.Birth{Header: hdr, Boot: 7, CacheVersion: last.Version, Software: "test"})
	o.nothing(t, sync, "varco/v1/"+b.slug+"/probe")

	// Past the retention, the log is pruned: a snapshot.
	b.clock.Add(8 * 24 * time.Hour)
	if err := b.store.Maintain(context.Background()); err != nil {
		t.Fatal(err)
	}
	b.sendAsEdge(t, e1, &vsync.CatchUp{Header: hdr, From: first.Version})
	got := map[vsync.MemberRef]vsync.Record{}
	var chunks []uint32
	var snap *vsync.Snapshot
	for snap == nil || len(chunks) < int(snap.Chunks) {
		m := b.verify(t, []byte(o.next(t, sync).payload))
		s, ok := m.(*vsync.Snapshot)
		if !ok {
			t.Fatalf("a %s in answer to a catch-up from a pruned version", m.Kind())
		}
		if snap != nil && (s.ID != snap.ID || s.Version != snap.Version || s.Chunks != snap.Chunks) {
			t.Fatalf("chunk %d of snapshot %d v%d/%d chunks, then %d v%d/%d", s.Chunk, snap.ID, snap.Version, snap.Chunks, s.ID, s.Version, s.Chunks)
		}
		snap = s
		chunks = append(chunks, s.Chunk)
		if s.Chunk == 0 && (s.Policy == nil || len(s.Policy.Limits) != 1) {
			t.Errorf("chunk 0 policy %+v", s.Policy)
		}
		for _, r := range s.Records {
			got[r.Member] = r
		}
	}
	if snap.Version < last.Version || snap.Chunks != 2 || len(got) != 4 {
		t.Fatalf("snapshot v%d of %d chunks and %d records, want v%d, 2 chunks, 4 records", snap.Version, snap.Chunks, len(got), last.Version)
	}
	for m, r := range site {
		if g, ok := got[m]; !ok || !recordsEqual(g, r) {
			t.Errorf("member %d: snapshot %+v, deltas %+v", m, g, r)
		}
	}
	if len(policy.Limits) != 1 {
		t.Errorf("policy from deltas: %+v", policy)
	}

	// Asked again at once: served by the snapshot just sent.
	b.sendAsEdge(t, e1, &vsync.CatchUp{Header: hdr, Full: true})
	waitFor(t, func() bool { return p.Stats().SnapshotsLimited == 1 })
	if s := p.Stats(); s.Snapshots != 1 || s.CatchUps != 3 {
		t.Errorf("stats %+v", s)
	}
}

func recordsEqual(a, b vsync.Record) bool {
	x, _ := vsync.Marshal(&vsync.Delta{Header: vsync.Header{Tenant: "t", Site: "1"}, Version: 1, Upserts: []vsync.Record{a}})
	y, _ := vsync.Marshal(&vsync.Delta{Header: vsync.Header{Tenant: "t", Site: "1"}, Version: 1, Upserts: []vsync.Record{b}})
	return string(x) == string(y)
}

// TestRefused: catch-ups on another edge's or tenant's topic, for another
// site than the edge's, from unknown edges, and malformed payloads are
// counted and not answered; the publisher goes on answering good ones.
func TestRefused(t *testing.T) {
	t.Parallel()
	env := embeddedBroker(t)
	b := setupSync(t)
	b.member(t, "Anna", cloud.Date{})
	state, _ := vsync.StateTopic(b.slug, b.siteID)
	sync, _ := vsync.SyncTopic(b.slug, "e1")
	o := observe(t, env, "varco/v1/#") // the cloud's account: it may publish anywhere
	e1 := b.edge(t, env, "e1")
	p := startPublisher(t, env, b.db, "cloud-"+b.slug, func(c *mqtt.PublisherConfig) { c.Credentials = env.creds })
	first := b.delta(t, o, state)

	good := vsync.Header{Tenant: b.slug, Site: b.siteID, Edge: "e1"}
	catchUp := func(h vsync.Header) []byte {
		raw, err := vsync.Marshal(&vsync.CatchUp{Header: h, From: 0, Full: true})
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	other := good
	other.Tenant = "other-tenant"
	wrongEdge := good
	wrongEdge.Edge = "e2"
	wrongSite := good
	wrongSite.Site = "999999"
	unknown := good
	unknown.Edge = "e9"
	tests := []struct {
		name           string
		topic          string
		payload        []byte
		refused, wrong int64
	}{
		{"another tenant's message on the edge's topic", "varco/v1/" + b.slug + "/edge/e1/catchup", catchUp(other), 1, 0},
		{"another edge's message on the edge's topic", "varco/v1/" + b.slug + "/edge/e1/catchup", catchUp(wrongEdge), 1, 0},
		{"on another tenant's topic", "varco/v1/other-tenant/edge/e1/catchup", catchUp(good), 1, 0},
		{"a site that is not the edge's", "varco/v1/" + b.slug + "/edge/e1/catchup", catchUp(wrongSite), 1, 0},
		{"an unknown edge", "varco/v1/" + b.slug + "/edge/e9/catchup", catchUp(unknown), 1, 0},
		{"a birth on a catch-up topic", "varco/v1/" + b.slug + "/edge/e1/catchup", mustMarshal(t, &vsync.Birth{Header: good, Boot: 1, Software: "x"}), 1, 0},
		{"garbage", "varco/v1/" + b.slug + "/edge/e1/catchup", []byte("\xff\x00garbage"), 0, 1},
		{"empty", "varco/v1/" + b.slug + "/edge/e1/birth", nil, 0, 1},
		{"truncated", "varco/v1/" + b.slug + "/edge/e1/catchup", catchUp(good)[:10], 0, 1},
		{"bad topic id", "varco/v1/" + b.slug + "/edge/E1/catchup", catchUp(good), 0, 1},
	}
	for _, tt := range tests {
		before := p.Stats()
		o.publish(t, tt.topic, tt.payload)
		waitFor(t, func() bool {
			s := p.Stats()
			return s.Refused-before.Refused == tt.refused && s.Malformed-before.Malformed == tt.wrong
		})
	}
	o.nothing(t, sync, "varco/v1/"+b.slug+"/probe")
	if s := p.Stats(); s.Snapshots != 0 || s.CatchUps != 0 {
		t.Fatalf("refused messages answered: %+v", s)
	}

	// Still serving.
	b.sendAsEdge(t, e1, &vsync.CatchUp{Header: good, From: 0})
	s, ok := b.verify(t, []byte(o.next(t, sync).payload)).(*vsync.Snapshot)
	if !ok || s.Version != first.Version || len(s.Records) != 1 {
		t.Fatalf("answer %+v", s)
	}
}

func mustMarshal(t *testing.T, m vsync.Message) []byte {
	t.Helper()
	raw, err := vsync.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// TestDailyRecompute: a record that changes with the date alone (a
// birthday greeting) is published after the day's maintenance.
func TestDailyRecompute(t *testing.T) {
	t.Parallel()
	env := embeddedBroker(t)
	b := setupSync(t)
	anna := b.member(t, "Anna", cloud.DateOf(time.Date(1990, 3, 5, 0, 0, 0, 0, time.UTC)))
	state, _ := vsync.StateTopic(b.slug, b.siteID)
	o := observe(t, env, state)
	startPublisher(t, env, b.db, "cloud-"+b.slug, nil)
	if r := record(t, b.delta(t, o, state), anna); len(r.Notices) != 0 {
		t.Fatalf("notices the day before: %+v", r.Notices)
	}
	b.clock.Add(24 * time.Hour)
	if err := b.store.Maintain(context.Background()); err != nil {
		t.Fatal(err)
	}
	r := record(t, b.delta(t, o, state), anna)
	if len(r.Notices) != 1 || r.Notices[0].Text != "Happy birthday Anna!" {
		t.Fatalf("notices on the birthday: %+v", r.Notices)
	}
}

// TestSealerKeys: the Signer signs with generation 1, created on first use;
// a staged generation does not sign until activated.
func TestSealerKeys(t *testing.T) {
	t.Parallel()
	b := setupSync(t)
	ctx := context.Background()
	d := &vsync.Delta{Header: vsync.Header{Tenant: b.slug, Site: b.siteID}, Version: 1}
	keyOf := func() string {
		raw, err := b.signer.Seal(ctx, d)
		if err != nil {
			t.Fatal(err)
		}
		env, err := vsync.UnmarshalEnvelope(raw)
		if err != nil {
			t.Fatal(err)
		}
		b.verify(t, raw)
		return env.KeyID
	}
	if k := keyOf(); k != b.slug+"-1" {
		t.Fatalf("key %s", k)
	}
	next, err := b.config.AddSigningKey(b.admin)
	if err != nil || next.Generation != 2 || next.Active {
		t.Fatalf("AddSigningKey: %+v, %v", next, err)
	}
	if k := keyOf(); k != b.slug+"-1" {
		t.Fatalf("key %s while generation 2 is staged", k)
	}
	if _, err := b.config.ActivateSigningKey(b.admin, 2); err != nil {
		t.Fatal(err)
	}
	if k := keyOf(); k != b.slug+"-2" {
		t.Fatalf("key %s after activating generation 2", k)
	}
	if _, err := b.signer.Seal(ctx, &vsync.Delta{Header: vsync.Header{Tenant: "no-such-tenant", Site: "1"}, Version: 1}); cloud.ErrorCode(err) != cloud.ENOTFOUND {
		t.Fatalf("Seal for an unknown tenant: %v", err)
	}
}
