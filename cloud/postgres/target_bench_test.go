package postgres_test

import (
	"context"
	"testing"
	"time"

	"varco.dev/cloud"
	"varco.dev/cloud/postgres"
)

// BenchmarkTarget100k evaluates targets over the 100,000 members of
// seed100k, spread over the criteria: memberships ending on every day of a
// year, medical certificates expired or missing for a third, passages over
// the last 90 days, an open instalment for a third, tags, consents and a
// booking for one in ten. Each sub-benchmark is one call of the service,
// as the API makes it: a count, the first page, or every member (export).
func BenchmarkTarget100k(b *testing.B) {
	bd := setupB(b)
	ctx := context.Background()
	site, _ := seed100k(b, bd)
	// t0 is 4 March 2025.
	spread := []string{
		`UPDATE memberships SET ends_on = date '2025-03-04' + (member_id % 365)::int WHERE tenant_id = $1`,
		`UPDATE members SET medical_cert_expiry = CASE WHEN id % 20 = 0 THEN NULL ELSE date '2024-09-01' + (id % 540)::int END,
			last_visit_at = timestamptz '2025-03-04 08:00Z' - (id % 90) * interval '1 day',
			tags = CASE id % 4 WHEN 0 THEN '{yoga}'::text[] WHEN 1 THEN '{pool,yoga}' WHEN 2 THEN '{pool}' ELSE '{}' END,
			consents = CASE WHEN id % 2 = 0 THEN '[{"channel":"sms","purpose":"service","granted":true}]'::jsonb ELSE '[]' END,
			created_at = timestamptz '2024-01-01 10:00Z' + (id % 430) * interval '1 day'
			WHERE tenant_id = $1`,
		`INSERT INTO instalments (tenant_id, member_id, amount_cents, currency, due_on, created_at, updated_at)
			SELECT $1, id, 4990, 'EUR', date '2025-03-04' + (id / 3 % 60)::int, now(), now() FROM members WHERE tenant_id = $1 AND id % 3 = 0`,
		`INSERT INTO bookings (tenant_id, member_id, site_id, kind, title, starts_at, ends_at, created_at, updated_at)
			SELECT $1, id, $2, 'appointment', 'Check-up', timestamptz '2025-03-04 09:00Z' + (id / 10 % 30) * interval '1 day',
			timestamptz '2025-03-04 10:00Z' + (id / 10 % 30) * interval '1 day', now(), now() FROM members WHERE tenant_id = $1 AND id % 10 = 0`,
		`ANALYZE`,
	}
	for i, q := range spread {
		var args []any
		switch i {
		case len(spread) - 1:
		case 3:
			args = []any{bd.tenantID, site.ID}
		default:
			args = []any{bd.tenantID}
		}
		if _, err := bd.db.Pool.Exec(ctx, q, args...); err != nil {
			b.Fatal(err)
		}
	}
	svc := postgres.NewTargetService(bd.db)
	save := func(name string, cs ...cloud.Criterion) *cloud.Target {
		t := &cloud.Target{Name: name, TargetDefinition: cloud.TargetDefinition{Criteria: cs}}
		if err := svc.CreateTarget(bd.admin, t); err != nil {
			b.Fatal(err)
		}
		return t
	}
	targets := []*cloud.Target{
		save("membership-ending-15d", cloud.Criterion{Kind: cloud.CriterionMembershipEnding, Days: ip(15)}),
		save("instalment-due-5d", cloud.Criterion{Kind: cloud.CriterionInstalmentDue, Days: ip(5)}),
		save("medical-missing-or-expired", cloud.Criterion{Kind: cloud.CriterionMedicalCert, State: cloud.CertMissingOrExpired}),
		save("not-attending-30d-active", cloud.Criterion{Kind: cloud.CriterionNotAttending, Days: ip(30)}, cloud.Criterion{Kind: cloud.CriterionMembershipActive}),
		save("appointment-tomorrow", cloud.Criterion{Kind: cloud.CriterionBooking, Days: ip(1), BookingKind: cloud.BookingAppointment}),
		save("birthday-next-7d", cloud.Criterion{Kind: cloud.CriterionBirthday, Days: ip(0), DaysTo: ip(7)}),
		save("four-criteria", cloud.Criterion{Kind: cloud.CriterionTags, Tags: []string{"yoga"}},
			cloud.Criterion{Kind: cloud.CriterionConsent, Channel: cloud.ChannelSMS, Purpose: cloud.PurposeService},
			cloud.Criterion{Kind: cloud.CriterionMembershipActive},
			cloud.Criterion{Kind: cloud.CriterionMedicalCert, State: cloud.CertMissingOrExpired, Not: true}),
	}
	for _, tg := range targets {
		n, err := svc.CountTarget(bd.admin, tg.ID, cloud.Date{})
		if err != nil || n == 0 {
			b.Fatalf("%s: %d members, %v", tg.Name, n, err)
		}
		b.Logf("%s: %d members", tg.Name, n)
	}
	measure := func(b *testing.B, op func() error) {
		durs := make([]time.Duration, 0, b.N)
		for b.Loop() {
			t := time.Now()
			if err := op(); err != nil {
				b.Fatal(err)
			}
			durs = append(durs, time.Since(t))
		}
		reportPercentiles(b, durs)
	}
	for _, tg := range targets {
		b.Run("count/"+tg.Name, func(b *testing.B) {
			measure(b, func() error { _, err := svc.CountTarget(bd.admin, tg.ID, cloud.Date{}); return err })
		})
		b.Run("first-page/"+tg.Name, func(b *testing.B) {
			measure(b, func() error { _, err := svc.RunTarget(bd.admin, tg.ID, cloud.TargetQuery{Limit: 50}); return err })
		})
	}
	// Every member of the biggest target, read as the export reads them.
	big := targets[2]
	b.Run("every-member/"+big.Name, func(b *testing.B) {
		var n int
		measure(b, func() error {
			n = 0
			return svc.EachTargetMember(bd.admin, big.ID, cloud.Date{}, func(*cloud.Member) error { n++; return nil })
		})
		b.ReportMetric(float64(n), "members")
	})
}
