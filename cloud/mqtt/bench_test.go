package mqtt_test

import (
	"context"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"varco.dev/cloud"
	"varco.dev/cloud/mqtt"
	vsync "varco.dev/protocol/sync"
)

// arrival is a message and when the subscriber got it.
type arrival struct {
	at      time.Time
	payload []byte
}

// subscribe is a plain subscriber that notes when each message arrives.
func subscribe(b *testing.B, env brokerEnv, topic string) chan arrival {
	b.Helper()
	ch := make(chan arrival, 100_000)
	opts := paho.NewClientOptions().AddBroker(env.url).SetClientID("bench-sub-" + strconv.FormatInt(time.Now().UnixNano(), 36)).
		SetUsername(env.user).SetPassword(env.pass).SetCleanSession(true).SetAutoReconnect(false).SetOrderMatters(true).
		SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) { ch <- arrival{time.Now(), m.Payload()} })
	c := paho.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(wait) || tok.Error() != nil {
		b.Fatalf("connect: %v", tok.Error())
	}
	b.Cleanup(func() { c.Disconnect(100) })
	if tok := c.Subscribe(topic, 1, nil); !tok.WaitTimeout(wait) || tok.Error() != nil {
		b.Fatalf("subscribe: %v", tok.Error())
	}
	return ch
}

func reportPercentiles(b *testing.B, unit string, d []time.Duration) {
	b.Helper()
	if len(d) == 0 {
		return
	}
	slices.Sort(d)
	at := func(p float64) float64 {
		return float64(d[min(len(d)-1, int(float64(len(d))*p))].Microseconds()) / 1000
	}
	b.ReportMetric(at(0.50), "p50-"+unit)
	b.ReportMetric(at(0.99), "p99-"+unit)
	b.ReportMetric(at(1), "max-"+unit)
}

// BenchmarkPropagation measures a blocking CRM action from the commit of
// its creation through the store (the API's path) to the signed delta that
// carries it arriving at a subscriber of the site's state topic, on the
// embedded broker and on Mosquitto. Run it with -benchtime=1000x for the
// 1,000 actions of docs/benchmarks.md.
func BenchmarkPropagation(b *testing.B) {
	for _, broker := range []struct {
		name  string
		start func(testing.TB) brokerEnv
	}{{"embedded", embeddedBroker}, {"mosquitto", mosquittoBroker}} {
		b.Run(broker.name, func(b *testing.B) {
			env := broker.start(b)
			sb := setupSync(b)
			members := make([]*cloud.Member, 200)
			for i := range members {
				members[i] = sb.member(b, "M"+strconv.Itoa(i), cloud.Date{})
			}
			state, _ := vsync.StateTopic(sb.slug, sb.siteID)
			ch := subscribe(b, env, state)
			startPublisher(b, env, sb.db, "cloud-bench-"+sb.slug, nil)
			// The members' records, published first.
			seen := 0
			for seen < len(members) {
				d := mustDelta(b, <-ch)
				seen += len(d.Upserts)
			}
			typeID := sb.typeID("Reception check")
			durs := make([]time.Duration, 0, b.N)
			i := 0
			for b.Loop() {
				m := members[i%len(members)]
				i++
				a := &cloud.Action{MemberID: m.ID, TypeID: typeID}
				if err := sb.actions.CreateAction(sb.admin, a); err != nil {
					b.Fatal(err)
				}
				committed := time.Now()
				for found := false; !found; {
					var got arrival
					select {
					case got = <-ch:
					case <-time.After(wait):
						b.Fatalf("action %d: no delta", a.ID)
					}
					for _, r := range mustDelta(b, got).Upserts {
						for _, act := range r.Actions {
							if act.ID == uint64(a.ID) {
								found = true
								durs = append(durs, got.at.Sub(committed))
							}
						}
					}
				}
			}
			reportPercentiles(b, "ms", durs)
		})
	}
}

func mustDelta(b *testing.B, a arrival) *vsync.Delta {
	b.Helper()
	msg, err := vsync.Unmarshal(a.payload)
	if err != nil {
		b.Fatal(err)
	}
	d, ok := msg.(*vsync.Delta)
	if !ok {
		b.Fatalf("a %s", msg.Kind())
	}
	return d
}

// BenchmarkSnapshot seeds a site with VARCO_BENCH_MEMBERS members (100,000
// by default; 1,000,000 for the number, which takes a while), each
// with a card and a membership, one in ten with an open blocking action.
// It reports the time to publish them all as deltas from an empty state
// (the first sync of a site: full-recompute), then per iteration the time
// from an edge's full catch-up request to the last chunk of its snapshot
// arriving at a subscriber of the edge's sync topic, on the embedded broker.
func BenchmarkSnapshot(b *testing.B) {
	n := 100_000
	if v, err := strconv.Atoi(os.Getenv("VARCO_BENCH_MEMBERS")); err == nil && v > 0 {
		n = v
	}
	env := embeddedBroker(b)
	sb := setupSync(b)
	ctx := context.Background()
	// Seed with the triggers off (the session's replication role), then
	// queue one full recompute, as the daily maintenance would.
	conn, err := sb.db.Pool.Acquire(ctx)
	if err != nil {
		b.Fatal(err)
	}
	var tenantID int64
	if err := conn.QueryRow(ctx, `SELECT id FROM tenants WHERE slug = $1`, sb.slug).Scan(&tenantID); err != nil {
		b.Fatal(err)
	}
	rc, planned := sb.typeID("Reception check"), sb.outcomeID("Planned")
	for _, st := range []struct {
		sql  string
		args []any
	}{
		{`SET session_replication_role = replica`, nil},
		{`INSERT INTO members (tenant_id, kind, first_name, last_name, language, created_at, updated_at)
		  SELECT $1, 'person', 'Name' || i, 'Surname', 'it', now(), now() FROM generate_series(1, $2::int) i`, []any{tenantID, n}},
		{`INSERT INTO credentials (tenant_id, member_id, key, kind, created_at)
		  SELECT $1, id, 'card:1:' || id, 'card', now() FROM members WHERE tenant_id = $1`, []any{tenantID}},
		{`INSERT INTO memberships (tenant_id, member_id, name, starts_on, ends_on, created_at)
		  SELECT $1, id, 'Annual', date '2025-01-01', date '2025-12-31', now() FROM members WHERE tenant_id = $1`, []any{tenantID}},
		{`INSERT INTO crm_actions (tenant_id, member_id, type_id, outcome_id, kind, is_open, created_at, updated_at)
		  SELECT $1, id, $2, $3, 'planned', true, now(), now() FROM members WHERE tenant_id = $1 AND id % 10 = 0`, []any{tenantID, rc, planned}},
		{`SET session_replication_role = origin`, nil},
		{`DELETE FROM access_outbox`, nil},
		{`INSERT INTO access_outbox (tenant_id, all_members) VALUES ($1, true)`, []any{tenantID}},
		{`ANALYZE`, nil},
	} {
		if _, err := conn.Exec(ctx, st.sql, st.args...); err != nil {
			b.Fatalf("%s: %v", st.sql, err)
		}
	}
	conn.Release()

	sync, _ := vsync.SyncTopic(sb.slug, "e1")
	state, _ := vsync.StateTopic(sb.slug, sb.siteID)
	stateCh := subscribe(b, env, state)
	ch := subscribe(b, env, sync)
	start := time.Now()
	startPublisher(b, env, sb.db, "cloud-bench-"+sb.slug, func(c *mqtt.PublisherConfig) {
		c.SnapshotInterval = time.Nanosecond // every iteration asks again at once
	})
	for got := 0; got < n; {
		select {
		case a := <-stateCh:
			got += len(mustDelta(b, a).Upserts)
		case <-time.After(5 * time.Minute):
			b.Fatalf("initial publish: %d of %d records", got, n)
		}
	}
	initial := time.Since(start)

	edge := observe(b, env, "varco/v1/"+sb.slug+"/none")
	hdr := vsync.Header{Tenant: sb.slug, Site: sb.siteID, Edge: "e1"}
	var durs []time.Duration
	for b.Loop() {
		t := time.Now()
		sb.sendAsEdge(b, edge, &vsync.CatchUp{Header: hdr, Full: true})
		var chunks, records int
		for total := -1; chunks != total; {
			var a arrival
			select {
			case a = <-ch:
			case <-time.After(5 * time.Minute):
				b.Fatalf("snapshot: %d chunks", chunks)
			}
			msg, err := vsync.Unmarshal(a.payload)
			if err != nil {
				b.Fatal(err)
			}
			s := msg.(*vsync.Snapshot)
			total, chunks, records = int(s.Chunks), chunks+1, records+len(s.Records)
		}
		if records != n {
			b.Fatalf("snapshot of %d records, want %d", records, n)
		}
		durs = append(durs, time.Since(t))
	}
	reportPercentiles(b, "ms", durs)
	b.ReportMetric(initial.Seconds(), "initial-publish-s")
}
