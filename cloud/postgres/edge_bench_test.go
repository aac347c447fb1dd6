package postgres_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"varco.dev/cloud"
	"varco.dev/cloud/postgres"
	vsync "varco.dev/protocol/sync"
)

// BenchmarkStoreEvents stores passages the way the ingester does, one
// batch per StoreEvents call (a transaction: the edge's row lock, the
// multi-row insert with its last-visit and command updates, the high-water
// mark), for batches of the edge's default size (256) and the protocol's
// largest (1024), among 1000 members. It reports stored events per second.
func BenchmarkStoreEvents(b *testing.B) {
	for _, size := range []int{256, vsync.MaxEvents} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			bd := setupB(b)
			site := &cloud.Site{Name: "Bench"}
			if err := bd.sites.CreateSite(bd.admin, site); err != nil {
				b.Fatal(err)
			}
			if _, err := postgres.NewEdgeService(bd.db, "").CreateEdge(bd.admin, &cloud.Edge{SiteID: site.ID, Code: "bench", Name: "Bench"}); err != nil {
				b.Fatal(err)
			}
			members := make([]int64, 1000)
			for i := range members {
				m := &cloud.Member{Kind: cloud.KindPerson, LastName: "Bench"}
				if err := bd.members.CreateMember(bd.admin, m); err != nil {
					b.Fatal(err)
				}
				members[i] = m.ID
			}
			store := postgres.NewEventStore(bd.db)
			h := vsync.Header{Tenant: "club-a", Site: strconv.FormatInt(site.ID, 10), Edge: "bench"}
			seq := uint64(0)
			next := func() *vsync.Events {
				m := &vsync.Events{Header: h, Boot: 1, Events: make([]vsync.Event, size)}
				for i := range m.Events {
					seq++
					ev := vsync.Event{Seq: seq, Time: vsync.TimestampOf(t0.Add(time.Duration(seq) * time.Millisecond)), Kind: vsync.EventPassage,
						Reader: "r1", Credential: vsync.CredentialKey{byte(seq), byte(seq >> 8), byte(seq >> 16)}, Decision: vsync.DecisionDeny,
						Reason: vsync.ReasonUnknownCredential}
					if seq%10 != 0 { // nine in ten are members' grants
						ev.Member, ev.Decision, ev.Reason = vsync.MemberRef(members[seq%uint64(len(members))]), vsync.DecisionGrant, vsync.ReasonNone
					}
					m.Events[i] = ev
				}
				return m
			}
			start := time.Now()
			for b.Loop() {
				batch := next()
				res, err := store.StoreEvents(context.Background(), batch)
				if err != nil {
					b.Fatal(err)
				}
				if res.Stored != size || res.Acked != seq {
					b.Fatalf("stored %d, acked %d; want %d, %d", res.Stored, res.Acked, size, seq)
				}
			}
			b.ReportMetric(float64(seq)/time.Since(start).Seconds(), "events/s")
		})
	}
}
