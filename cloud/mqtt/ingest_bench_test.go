package mqtt_test

import (
	"context"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	vsync "varco.dev/protocol/sync"
)

// benchMembers adds n members to tenant A and returns their ids.
func (e *ingestEnv) benchMembers(b *testing.B, n int) []int64 {
	b.Helper()
	rows, err := e.db.Pool.Query(context.Background(), `INSERT INTO members (tenant_id, kind, last_name, created_at, updated_at)
		SELECT tenant_id, 'person', 'Bench', now(), now() FROM members, generate_series(1, $2) WHERE id = $1 RETURNING id`, e.member.ID, n)
	if err != nil {
		b.Fatal(err)
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			b.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

// benchBatch is the encoded batch of n passages from seq first, nine in ten
// granted to one of members, as the edge sends its journal.
func (c *edgeClient) benchBatch(b *testing.B, first uint64, n int, members []int64) []byte {
	m := &vsync.Events{Header: c.header(), Boot: 1, Events: make([]vsync.Event, n)}
	for i := range m.Events {
		seq := first + uint64(i)
		ev := vsync.Event{Seq: seq, Time: vsync.TimestampOf(time.Now()), Kind: vsync.EventPassage, Reader: "r1",
			Credential: vsync.CredentialKey{byte(seq), byte(seq >> 8), byte(seq >> 16)}, Decision: vsync.DecisionDeny, Reason: vsync.ReasonUnknownCredential}
		if seq%10 != 0 {
			ev.Member, ev.Decision, ev.Reason = vsync.MemberRef(members[seq%uint64(len(members))]), vsync.DecisionGrant, vsync.ReasonNone
		}
		m.Events[i] = ev
	}
	p, err := vsync.Marshal(m)
	if err != nil {
		b.Fatal(err)
	}
	return p
}

// awaitAck waits for an Ack of at least seq.
func (c *edgeClient) awaitAck(b *testing.B, seq uint64) {
	for {
		select {
		case a := <-c.acks:
			if a.Seq >= seq {
				return
			}
		case err := <-c.bad:
			b.Fatal(err)
		case <-time.After(time.Minute):
			b.Fatalf("no ack of %d", seq)
		}
	}
}

var benchBrokers = []string{"embedded", "mosquitto"}

// BenchmarkIngestBroker: an edge sends its journal in batches of 1024
// passages with 4 batches in flight (as the edge's agent does), through the
// broker to the ingester and PostgreSQL and back as Acks. One op is one
// batch; events/s counts acknowledged events.
func BenchmarkIngestBroker(b *testing.B) {
	for _, name := range benchBrokers {
		b.Run(name, func(b *testing.B) {
			e := setupIngest(b, name == "mosquitto")
			members := e.benchMembers(b, 1000)
			edge := e.mustDialEdge(b)
			edge.births(e.ingester, 0)
			events, _ := vsync.EventsTopic(e.tenant, "e1")
			const window = 4
			var seq, acked uint64
			inflight := []uint64{}
			start := time.Now()
			for b.Loop() {
				if len(inflight) == window {
					edge.awaitAck(b, inflight[0])
					acked, inflight = inflight[0], inflight[1:]
				}
				p := edge.benchBatch(b, seq+1, vsync.MaxEvents, members)
				seq += vsync.MaxEvents
				edge.paho.Publish(events, 1, false, p) // not waited on: the Ack tells
				inflight = append(inflight, seq)
			}
			edge.awaitAck(b, seq)
			_ = acked
			b.ReportMetric(float64(seq)/time.Since(start).Seconds(), "events/s")
		})
	}
}

// BenchmarkCatchUp100k: an edge that was offline sends 100,000 journaled
// passages at once, as 98 batches of up to 1024, and waits until the cloud
// acknowledged the last one. One op is one whole catch-up.
func BenchmarkCatchUp100k(b *testing.B) {
	const total = 100_000
	for _, name := range benchBrokers {
		b.Run(name, func(b *testing.B) {
			e := setupIngest(b, name == "mosquitto")
			members := e.benchMembers(b, 1000)
			edge := e.mustDialEdge(b)
			edge.births(e.ingester, 0)
			events, _ := vsync.EventsTopic(e.tenant, "e1")
			var seq uint64
			var elapsed time.Duration
			for b.Loop() {
				b.StopTimer()
				var payloads [][]byte
				for n := 0; n < total; n += vsync.MaxEvents {
					size := min(vsync.MaxEvents, total-n)
					payloads = append(payloads, edge.benchBatch(b, seq+1, size, members))
					seq += uint64(size)
				}
				b.StartTimer()
				start := time.Now()
				toks := make([]paho.Token, len(payloads))
				for i, p := range payloads {
					toks[i] = edge.paho.Publish(events, 1, false, p)
				}
				edge.awaitAck(b, seq)
				elapsed += time.Since(start)
				for _, tok := range toks {
					if tok.Wait(); tok.Error() != nil {
						b.Fatal(tok.Error())
					}
				}
			}
			b.ReportMetric(float64(seq)/elapsed.Seconds(), "events/s")
			b.ReportMetric(elapsed.Seconds()/float64(seq/total), "s/catch-up")
		})
	}
}
