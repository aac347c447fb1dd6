package postgres_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"testing"
	"time"

	"varco.dev/cloud"
	cloudhttp "varco.dev/cloud/http"
	"varco.dev/cloud/postgres"
)

// reportPercentiles adds p50 and p99 of the per-operation durations.
func reportPercentiles(b *testing.B, d []time.Duration) {
	b.Helper()
	if len(d) == 0 {
		return
	}
	slices.Sort(d)
	at := func(p float64) float64 { return float64(d[min(len(d)-1, int(float64(len(d))*p))].Microseconds()) }
	b.ReportMetric(at(0.50), "p50-µs")
	b.ReportMetric(at(0.99), "p99-µs")
}

// BenchmarkCreateAdvance creates a CRM action and advances it (close with
// an outcome whose relation changes the status and awards points), each in
// its own transaction, as the API does.
func BenchmarkCreateAdvance(b *testing.B) {
	bd := setupB(b)
	ctx := bd.admin
	m := &cloud.Member{Kind: cloud.KindPerson, LastName: "Bench"}
	if err := bd.members.CreateMember(ctx, m); err != nil {
		b.Fatal(err)
	}
	tour, signed := id(bd.cfg, "Tour"), outcome(bd.cfg, "Signed up")
	durs := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	start := time.Now()
	for b.Loop() {
		t := time.Now()
		a := &cloud.Action{MemberID: m.ID, TypeID: tour}
		if err := bd.actions.CreateAction(ctx, a); err != nil {
			b.Fatal(err)
		}
		if _, err := bd.actions.AdvanceAction(ctx, a.ID, cloud.AdvanceRequest{Mode: cloud.AdvanceClose, OutcomeID: signed, Version: a.Version}); err != nil {
			b.Fatal(err)
		}
		durs = append(durs, time.Since(t))
	}
	b.ReportMetric(float64(len(durs))/time.Since(start).Seconds(), "create+advance/s")
	reportPercentiles(b, durs)
}

// Benchmark100kMembers seeds 100,000 members (each with a card and a
// membership, one in ten with an open blocking action) and measures the
// access record loaded from the database and computed, and the member
// search over the HTTP API.
func Benchmark100kMembers(b *testing.B) {
	bd := setupB(b)
	ctx := context.Background()
	site, minID := seed100k(b, bd)
	const members = seedMembers
	rng := rand.New(rand.NewPCG(1, 2))

	b.Run("access-record-from-db", func(b *testing.B) {
		durs := make([]time.Duration, 0, b.N)
		for b.Loop() {
			mid := minID + rng.Int64N(members)
			t := time.Now()
			v, err := bd.access.AccessRecord(bd.admin, mid, site.ID)
			durs = append(durs, time.Since(t))
			if err != nil || len(v.Record.Credentials) != 1 {
				b.Fatalf("member %d: %v %+v", mid, err, v)
			}
		}
		reportPercentiles(b, durs)
	})

	s := cloudhttp.NewServer()
	s.Addr = "127.0.0.1:0"
	s.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	s.DB, s.AuthService, s.MemberService = bd.db, postgres.NewAuthService(bd.db), bd.members
	if err := s.Open(); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = s.Close(ctx) }()
	token, _, err := s.AuthService.Login(ctx, "admin@a.test", "correct horse battery")
	if err != nil {
		b.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	defer client.CloseIdleConnections()
	search := func(b *testing.B, query func() string) {
		durs := make([]time.Duration, 0, b.N)
		for b.Loop() {
			req, _ := http.NewRequest("GET", s.URL()+"/api/v1/members?limit=50&q="+query(), nil)
			req.Header.Set("Authorization", "Bearer "+token)
			t := time.Now()
			resp, err := client.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			durs = append(durs, time.Since(t))
			if resp.StatusCode != 200 {
				b.Fatalf("status %d", resp.StatusCode)
			}
		}
		reportPercentiles(b, durs)
	}
	b.Run("member-search-api/surname", func(b *testing.B) {
		search(b, func() string { return fmt.Sprintf("surname%d", rng.IntN(1000)) })
	})
	b.Run("member-search-api/tax-code", func(b *testing.B) {
		search(b, func() string { return fmt.Sprintf("tx%012d", 1+rng.IntN(members)) })
	})
	b.Run("member-search-api/list-page", func(b *testing.B) {
		search(b, func() string { return "" })
	})
}

// seedMembers is how many members seed100k creates.
const seedMembers = 100_000

// seed100k gives tenant A a site and 100,000 members, each with a card and
// a membership, one in ten with an open blocking action, and returns the
// site and the lowest member ID.
func seed100k(b *testing.B, bd *bundle) (*cloud.Site, int64) {
	b.Helper()
	ctx := context.Background()
	site := &cloud.Site{Name: "Centro"}
	if err := bd.sites.CreateSite(bd.admin, site); err != nil {
		b.Fatal(err)
	}
	seed := []string{
		`INSERT INTO members (tenant_id, kind, first_name, last_name, tax_code, email, language, birth_date, created_at, updated_at)
		 SELECT $1, 'person', (ARRAY['Anna','Bruno','Carla','Dario','Elena'])[1 + i % 5], 'Surname' || (i % 1000),
		        'TX' || lpad(i::text, 12, '0'), 'm' || i || '@example.test', 'it', date '1980-01-01' + (i % 9000), now(), now()
		 FROM generate_series(1, $2::int) i`,
		`INSERT INTO credentials (tenant_id, member_id, key, kind, created_at)
		 SELECT $1, id, 'card:1:' || id, 'card', now() FROM members WHERE tenant_id = $1`,
		`INSERT INTO memberships (tenant_id, member_id, name, starts_on, ends_on, created_at)
		 SELECT $1, id, 'Annual', date '2025-01-01', date '2025-12-31', now() FROM members WHERE tenant_id = $1`,
	}
	for _, q := range seed {
		args := []any{bd.tenantID}
		if q == seed[0] {
			args = append(args, seedMembers)
		}
		if _, err := bd.db.Pool.Exec(ctx, q, args...); err != nil {
			b.Fatal(err)
		}
	}
	rc, planned := id(bd.cfg, "Reception check"), outcome(bd.cfg, "Planned")
	if _, err := bd.db.Pool.Exec(ctx, `INSERT INTO crm_actions (tenant_id, member_id, type_id, outcome_id, kind, is_open, created_at, updated_at)
		SELECT $1, id, $2, $3, 'planned', true, now(), now() FROM members WHERE tenant_id = $1 AND id % 10 = 0`, bd.tenantID, rc, planned); err != nil {
		b.Fatal(err)
	}
	if _, err := bd.db.Pool.Exec(ctx, `ANALYZE`); err != nil {
		b.Fatal(err)
	}
	var minID int64
	if err := bd.db.Pool.QueryRow(ctx, `SELECT min(id) FROM members WHERE tenant_id = $1`, bd.tenantID).Scan(&minID); err != nil {
		b.Fatal(err)
	}
	return site, minID
}

func id(cfg *cloud.CRMConfig, name string) int64 {
	for _, t := range cfg.ActionTypes {
		if t.Name == name {
			return t.ID
		}
	}
	panic(name)
}

func outcome(cfg *cloud.CRMConfig, name string) int64 {
	for _, o := range cfg.Outcomes {
		if o.Name == name {
			return o.ID
		}
	}
	panic(name)
}
