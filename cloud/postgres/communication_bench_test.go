package postgres_test

import (
	"context"
	"testing"
	"time"

	"varco.dev/cloud"
)

// BenchmarkCommunicateEmails sends one e-mail to each of b.N members
// through the Communicator: planned in batches of 100 in PostgreSQL, sent by
// 8 senders over 4 SMTP connections to a real SMTP server on loopback, each
// recorded. It reports e-mails per second, end to end.
//
//	go test -run '^$' -bench CommunicateEmails -benchtime 10000x ./postgres
func BenchmarkCommunicateEmails(b *testing.B) {
	bb := setupB(b)
	g := newGateways(b)
	s := g.service(b, bb.db)
	s.BatchSize, s.Concurrency = 100, 8
	ctx := context.Background()
	var ids []int64
	rows, err := bb.db.Pool.Query(ctx, `INSERT INTO members (tenant_id, kind, first_name, last_name, email, language, consents, created_at, updated_at)
		SELECT $1, 'person', 'M' || i, 'Rossi', 'm' || i || '@x.test', 'it',
			'[{"channel": "email", "purpose": "service", "granted": true}]', now(), now()
		FROM generate_series(1, $2) i RETURNING id`, bb.tenantID, b.N)
	if err != nil {
		b.Fatal(err)
	}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			b.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		b.Fatal(err)
	}
	tmpl := bb.template(b, &cloud.Template{Name: "Bench", Channel: cloud.ChannelEmail, Subject: "Ciao [FirstName]",
		Text: "Il [ClubName] ti aspetta.\n\nA presto!"})
	b.ResetTimer()
	start := time.Now()
	res, err := s.Communicate(ctx, cloud.CommunicationRequest{TenantID: bb.tenantID, OperatorID: bb.adminOp.ID, TemplateID: tmpl.ID,
		Purpose: "service", MemberIDs: ids, DedupKey: "bench"})
	elapsed := time.Since(start)
	b.StopTimer()
	if err != nil || res.Sent != b.N || g.smtp.Count() != b.N {
		b.Fatalf("result %+v, %v; server got %d", res, err, g.smtp.Count())
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "emails/s")
}
