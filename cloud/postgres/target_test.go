package postgres_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"varco.dev/cloud"
	"varco.dev/cloud/postgres"
)

func ip(v int) *int { return &v }

// club is a tenant whose members each meet some criteria, on t0
// (Tuesday 4 March 2025 in Rome).
type club struct {
	*bundle
	targets *postgres.TargetService
	ids     map[string]int64 // member first name → ID
}

func (c *club) names(t *testing.T, ms []*cloud.Member) []string {
	t.Helper()
	var out []string
	for _, m := range ms {
		out = append(out, m.FirstName)
	}
	slices.Sort(out)
	return out
}

func newClub(t *testing.T) *club {
	t.Helper()
	b := setup(t)
	ctx := context.Background()
	c := &club{bundle: b, targets: postgres.NewTargetService(b.db), ids: map[string]int64{}}
	site := &cloud.Site{Name: "Centro", Timezone: "Europe/Rome"}
	if err := b.sites.CreateSite(b.admin, site); err != nil {
		t.Fatal(err)
	}
	add := func(first string, created time.Time, edit func(m *cloud.Member)) *cloud.Member {
		t.Helper()
		b.clock.Set(created)
		m := &cloud.Member{Kind: cloud.KindPerson, FirstName: first, LastName: "Rossi", Mobile: "+393330000000", Email: "x@example.test"}
		if edit != nil {
			edit(m)
		}
		if err := b.members.CreateMember(b.admin, m); err != nil {
			t.Fatalf("member %s: %v", first, err)
		}
		c.ids[first] = m.ID
		return m
	}
	old := time.Date(2024, 12, 1, 10, 0, 0, 0, time.UTC)
	membership := func(m *cloud.Member, from, to cloud.Date) {
		t.Helper()
		if err := b.members.CreateMembership(b.admin, &cloud.Membership{MemberID: m.ID, Name: "Annual", StartsOn: from, EndsOn: to}); err != nil {
			t.Fatal(err)
		}
	}
	member := b.statusID(t, "Member")
	anna := add("Anna", old, func(m *cloud.Member) {
		m.Tags = []string{"yoga", "pool"}
		m.Consents = []cloud.Consent{{Channel: cloud.ChannelSMS, Purpose: cloud.PurposeService, Granted: true}}
		m.MedicalCertExpiry = cloud.NewDate(2025, 3, 10)
		m.CommercialStatusID = &member
	})
	membership(anna, cloud.NewDate(2024, 3, 20), cloud.NewDate(2025, 3, 19)) // ends in 15 days
	bruno := add("Bruno", old, func(m *cloud.Member) {
		m.Tags = []string{"pool"}
		m.Consents = []cloud.Consent{{Channel: cloud.ChannelSMS, Purpose: cloud.PurposeService, Granted: false}}
		m.MedicalCertExpiry = cloud.NewDate(2025, 12, 31)
	})
	membership(bruno, cloud.NewDate(2024, 3, 20), cloud.NewDate(2025, 3, 19))
	membership(bruno, cloud.NewDate(2025, 3, 20), cloud.NewDate(2026, 3, 19)) // renewed
	carla := add("Carla", old, nil)                                           // medical certificate missing
	if err := b.members.CreateInstalment(b.admin, &cloud.Instalment{MemberID: carla.ID, AmountCents: 5000, DueOn: cloud.NewDate(2025, 3, 9)}); err != nil {
		t.Fatal(err)
	}
	dario := add("Dario", old, func(m *cloud.Member) { m.MedicalCertExpiry = cloud.NewDate(2025, 3, 1) })
	b.clock.Set(t0)
	paidAt := t0.Add(-time.Hour)
	if err := b.members.CreateInstalment(b.admin, &cloud.Instalment{MemberID: dario.ID, AmountCents: 5000, DueOn: cloud.NewDate(2025, 3, 9), PaidAt: &paidAt}); err != nil {
		t.Fatal(err)
	}
	elena := add("Elena", old, func(m *cloud.Member) {
		m.BirthDate = cloud.NewDate(1990, 3, 4)
		m.MedicalCertExpiry = cloud.NewDate(2026, 1, 1)
	})
	b.clock.Set(t0)
	// 09:00 in Rome tomorrow; and a class at 00:30 in Rome on Thursday, which
	// is still Wednesday in UTC: days are the club's.
	for _, bk := range []*cloud.Booking{
		{MemberID: elena.ID, SiteID: site.ID, Kind: cloud.BookingAppointment, Title: "Check-up",
			StartsAt: time.Date(2025, 3, 5, 8, 0, 0, 0, time.UTC), EndsAt: time.Date(2025, 3, 5, 9, 0, 0, 0, time.UTC)},
		{MemberID: anna.ID, SiteID: site.ID, Kind: cloud.BookingClass, Title: "Night swim",
			StartsAt: time.Date(2025, 3, 5, 23, 30, 0, 0, time.UTC), EndsAt: time.Date(2025, 3, 6, 0, 30, 0, 0, time.UTC)},
	} {
		if err := b.members.CreateBooking(b.admin, bk); err != nil {
			t.Fatal(err)
		}
	}
	// Registered yesterday at 23:30 in Rome (22:30 UTC).
	add("Franco", time.Date(2025, 3, 3, 22, 30, 0, 0, time.UTC), func(m *cloud.Member) { m.MedicalCertExpiry = cloud.NewDate(2026, 1, 1) })
	// Registered today at 00:30 in Rome, which is still yesterday in UTC.
	add("Gino", time.Date(2025, 3, 3, 23, 30, 0, 0, time.UTC), func(m *cloud.Member) { m.MedicalCertExpiry = cloud.NewDate(2026, 1, 1) })
	archived := add("Zeno", old, func(m *cloud.Member) { m.Tags = []string{"yoga", "pool"} })
	b.clock.Set(t0)
	if _, err := b.members.ArchiveMember(b.admin, archived.ID, archived.Version); err != nil {
		t.Fatal(err)
	}
	// Passages: Elena came yesterday, Anna six weeks ago; the others never.
	for name, at := range map[string]time.Time{"Elena": t0.Add(-24 * time.Hour), "Anna": t0.Add(-42 * 24 * time.Hour)} {
		if _, err := b.db.Pool.Exec(ctx, `UPDATE members SET last_visit_at = $2 WHERE id = $1`, c.ids[name], at); err != nil {
			t.Fatal(err)
		}
	}
	// CRM history: Anna signed up after a tour on 2 March.
	b.clock.Set(time.Date(2025, 3, 2, 10, 0, 0, 0, time.UTC))
	tour := &cloud.Action{MemberID: anna.ID, TypeID: b.typeID(t, "Tour")}
	if err := b.actions.CreateAction(b.admin, tour); err != nil {
		t.Fatal(err)
	}
	if _, err := b.actions.AdvanceAction(b.admin, tour.ID, cloud.AdvanceRequest{Mode: cloud.AdvanceClose, OutcomeID: b.outcomeID(t, "Signed up"), Version: 1}); err != nil {
		t.Fatal(err)
	}
	b.clock.Set(t0)
	// Tenant B has a member who meets everything: never seen by A.
	bctx := b.otherTenant(t)
	if err := b.members.CreateMember(bctx, &cloud.Member{Kind: cloud.KindPerson, FirstName: "Other", LastName: "Tenant", Tags: []string{"yoga", "pool"}}); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestTargetCriteria evaluates each criterion over the club and checks who matches.
func TestTargetCriteria(t *testing.T) {
	t.Parallel()
	c := newClub(t)
	tests := []struct {
		name     string
		criteria []cloud.Criterion
		want     []string
	}{
		{"membership ending in 15 days, not renewed", []cloud.Criterion{{Kind: cloud.CriterionMembershipEnding, Days: ip(15)}}, []string{"Anna"}},
		{"membership active today", []cloud.Criterion{{Kind: cloud.CriterionMembershipActive}}, []string{"Anna", "Bruno"}},
		{"instalment due in 5 days, unpaid", []cloud.Criterion{{Kind: cloud.CriterionInstalmentDue, Days: ip(5)}}, []string{"Carla"}},
		{"medical certificate expiring in 10 days", []cloud.Criterion{{Kind: cloud.CriterionMedicalCert, State: cloud.CertExpiring, Days: ip(0), DaysTo: ip(10)}}, []string{"Anna"}},
		{"medical certificate expired", []cloud.Criterion{{Kind: cloud.CriterionMedicalCert, State: cloud.CertExpired}}, []string{"Dario"}},
		{"medical certificate missing", []cloud.Criterion{{Kind: cloud.CriterionMedicalCert, State: cloud.CertMissing}}, []string{"Carla"}},
		{"medical certificate missing or expired", []cloud.Criterion{{Kind: cloud.CriterionMedicalCert, State: cloud.CertMissingOrExpired}}, []string{"Carla", "Dario"}},
		{"not attending for 30 days", []cloud.Criterion{{Kind: cloud.CriterionNotAttending, Days: ip(30)}}, []string{"Anna", "Bruno", "Carla", "Dario"}},
		{"appointment tomorrow", []cloud.Criterion{{Kind: cloud.CriterionBooking, Days: ip(1), BookingKind: cloud.BookingAppointment}}, []string{"Elena"}},
		{"any booking the day after tomorrow (Rome)", []cloud.Criterion{{Kind: cloud.CriterionBooking, Days: ip(2)}}, []string{"Anna"}},
		{"registered yesterday (Rome)", []cloud.Criterion{{Kind: cloud.CriterionRegistered, Days: ip(-1)}}, []string{"Franco"}},
		{"registered today (Rome)", []cloud.Criterion{{Kind: cloud.CriterionRegistered, Days: ip(0)}}, []string{"Gino"}},
		{"birthday today", []cloud.Criterion{{Kind: cloud.CriterionBirthday, Days: ip(0)}}, []string{"Elena"}},
		{"commercial status", []cloud.Criterion{{Kind: cloud.CriterionCommercialStatus, StatusIDs: []int64{c.statusID(t, "Member")}}}, []string{"Anna"}},
		{"tags any", []cloud.Criterion{{Kind: cloud.CriterionTags, Tags: []string{"yoga", "pool"}}}, []string{"Anna", "Bruno"}},
		{"tags all", []cloud.Criterion{{Kind: cloud.CriterionTags, Tags: []string{"yoga", "pool"}, Match: "all"}}, []string{"Anna"}},
		{"consent granted", []cloud.Criterion{{Kind: cloud.CriterionConsent, Channel: cloud.ChannelSMS, Purpose: cloud.PurposeService}}, []string{"Anna"}},
		{"crm history in a window", []cloud.Criterion{{Kind: cloud.CriterionCRMHistory, TypeID: c.typeID(t, "Tour"),
			OutcomeID: c.outcomeID(t, "Signed up"), Days: ip(-7), DaysTo: ip(0)}}, []string{"Anna"}},
		{"crm history, other outcome", []cloud.Criterion{{Kind: cloud.CriterionCRMHistory, TypeID: c.typeID(t, "Tour"),
			OutcomeID: c.outcomeID(t, "Not signed up")}}, nil},
		{"crm history outside the window", []cloud.Criterion{{Kind: cloud.CriterionCRMHistory, TypeID: c.typeID(t, "Tour"), Days: ip(-1), DaysTo: ip(0)}}, nil},
		{"combination: not attending and no consent", []cloud.Criterion{
			{Kind: cloud.CriterionNotAttending, Days: ip(30)},
			{Kind: cloud.CriterionConsent, Channel: cloud.ChannelSMS, Purpose: cloud.PurposeService, Not: true},
			{Kind: cloud.CriterionMedicalCert, State: cloud.CertMissingOrExpired, Not: true},
		}, []string{"Bruno"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := c.targets.PreviewTarget(c.admin, cloud.TargetDefinition{Criteria: tc.criteria}, cloud.TargetQuery{})
			if err != nil {
				t.Fatal(err)
			}
			if got := c.names(t, p.Items); !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
			if p.Day != cloud.NewDate(2025, 3, 4) {
				t.Errorf("run day %s, want 2025-03-04", p.Day)
			}
		})
	}
}

func TestTargetLifecycle(t *testing.T) {
	t.Parallel()
	c := newClub(t)
	ctx := c.admin
	// Carla's instalment is due on 9 March; saved on 4 March.
	due := cloud.Criterion{Kind: cloud.CriterionInstalmentDue, From: cloud.NewDate(2025, 3, 9)}
	rolling := &cloud.Target{Name: "Due on the 9th, rolling", TargetDefinition: cloud.TargetDefinition{Criteria: []cloud.Criterion{due}, DateMode: cloud.DateRolling}, Schedulable: true}
	fixed := &cloud.Target{Name: "Due on the 9th", TargetDefinition: cloud.TargetDefinition{Criteria: []cloud.Criterion{due}}, InMenu: true}
	for _, tg := range []*cloud.Target{rolling, fixed} {
		if err := c.targets.CreateTarget(ctx, tg); err != nil {
			t.Fatal(err)
		}
		if tg.ReferenceDate != cloud.NewDate(2025, 3, 4) || tg.Version != 1 || tg.CreatedBy == nil {
			t.Fatalf("created %+v", tg)
		}
	}
	if fixed.DateMode != cloud.DateFixed {
		t.Errorf("fixed: date mode %q", fixed.DateMode)
	}
	run := func(tg *cloud.Target, day cloud.Date) []string {
		t.Helper()
		p, err := c.targets.RunTarget(ctx, tg.ID, cloud.TargetQuery{Day: day})
		if err != nil {
			t.Fatal(err)
		}
		return c.names(t, p.Items)
	}
	if got := run(rolling, cloud.Date{}); !slices.Equal(got, []string{"Carla"}) {
		t.Errorf("rolling today: %v", got)
	}
	// A day later the rolling window is the 10th: nobody; the fixed one stays.
	next := cloud.NewDate(2025, 3, 5)
	if got := run(rolling, next); len(got) != 0 {
		t.Errorf("rolling tomorrow: %v", got)
	}
	if got := run(fixed, next); !slices.Equal(got, []string{"Carla"}) {
		t.Errorf("fixed tomorrow: %v", got)
	}
	// A rolling target saved a day earlier for the 8th finds the 9th today.
	upd := cloud.TargetUpdate{Criteria: &[]cloud.Criterion{{Kind: cloud.CriterionInstalmentDue, From: cloud.NewDate(2025, 3, 8)}}}
	c.clock.Set(t0.Add(-24 * time.Hour))
	rolled, err := c.targets.UpdateTarget(ctx, rolling.ID, 1, upd)
	if err != nil {
		t.Fatal(err)
	}
	c.clock.Set(t0)
	if rolled.ReferenceDate != cloud.NewDate(2025, 3, 3) || rolled.Version != 2 {
		t.Fatalf("updated %+v", rolled)
	}
	if got := run(rolling, cloud.Date{}); !slices.Equal(got, []string{"Carla"}) {
		t.Errorf("rolled from yesterday: %v", got)
	}
	if _, err := c.targets.UpdateTarget(ctx, rolling.ID, 1, cloud.TargetUpdate{Name: new("x")}); cloud.ErrorCode(err) != cloud.EPRECONDITION {
		t.Errorf("stale version: %v", err)
	}
	if _, err := c.targets.UpdateTarget(ctx, rolling.ID, 2, cloud.TargetUpdate{Name: new(fixed.Name)}); cloud.ErrorCode(err) != cloud.ECONFLICT || cloud.ErrorField(err) != "name" {
		t.Errorf("taken name: %v", err)
	}
	if _, err := c.targets.UpdateTarget(ctx, rolling.ID, 2, cloud.TargetUpdate{DateMode: new(cloud.DateNone)}); cloud.ErrorField(err) != "criteria[0].from" {
		t.Errorf("dates under mode none: %v", err)
	}

	// Lists.
	menu, err := c.targets.FindTargets(ctx, cloud.TargetFilter{InMenu: true})
	if err != nil || len(menu) != 1 || menu[0].ID != fixed.ID {
		t.Errorf("menu targets: %v %v", menu, err)
	}
	// The recipes' seeded targets are schedulable too.
	sched, err := c.targets.FindTargets(ctx, cloud.TargetFilter{Schedulable: true})
	if err != nil || len(sched) != len(cloud.Recipes())+1 || !slices.ContainsFunc(sched, func(t *cloud.Target) bool { return t.ID == rolling.ID }) ||
		slices.ContainsFunc(sched, func(t *cloud.Target) bool { return t.ID == fixed.ID }) {
		t.Errorf("schedulable targets: %v %v", sched, err)
	}

	// Count, pages, every member.
	all := &cloud.Target{Name: "Everyone not archived", TargetDefinition: cloud.TargetDefinition{Criteria: []cloud.Criterion{
		{Kind: cloud.CriterionMedicalCert, State: cloud.CertMissing, Not: true}}}}
	if err := c.targets.CreateTarget(ctx, all); err != nil {
		t.Fatal(err)
	}
	n, err := c.targets.CountTarget(ctx, all.ID, cloud.Date{})
	if err != nil || n != 6 {
		t.Fatalf("count = %d %v, want 6", n, err)
	}
	var paged []string
	for page := 1; ; page++ {
		p, err := c.targets.RunTarget(ctx, all.ID, cloud.TargetQuery{Page: page, Limit: 4})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range p.Items {
			paged = append(paged, m.FirstName)
		}
		if p.NextPage == nil {
			break
		}
		if *p.NextPage != page+1 {
			t.Fatalf("next page %d after %d", *p.NextPage, page)
		}
	}
	var each []string
	if err := c.targets.EachTargetMember(ctx, all.ID, cloud.Date{}, func(m *cloud.Member) error { each = append(each, m.FirstName); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(paged) != 6 || !slices.Equal(paged, each) {
		t.Errorf("pages %v, each %v", paged, each)
	}

	// CRM actions for all, through the bulk path.
	res, err := c.targets.CreateTargetActions(ctx, fixed.ID, cloud.Date{}, &cloud.Action{TypeID: c.typeID(t, "Telemarketing"), Description: "Call about the instalment"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Members != 1 || len(res.Actions) != 1 || res.Actions[0].MemberID != c.ids["Carla"] || !res.Actions[0].Open {
		t.Fatalf("target actions: %+v", res)
	}
	if _, err := c.targets.CreateTargetActions(ctx, fixed.ID, cloud.Date{}, &cloud.Action{TypeID: 999999}); cloud.ErrorField(err) != "type_id" {
		t.Errorf("bad action type: %v", err)
	}

	// Archive.
	arch, err := c.targets.ArchiveTarget(ctx, fixed.ID, fixed.Version)
	if err != nil || arch.ArchivedAt == nil {
		t.Fatalf("archive: %v %+v", err, arch)
	}
	if ts, _ := c.targets.FindTargets(ctx, cloud.TargetFilter{}); len(ts) != len(cloud.Recipes())+2 ||
		slices.ContainsFunc(ts, func(t *cloud.Target) bool { return t.ID == fixed.ID }) {
		t.Errorf("%d targets listed after archiving, want %d", len(ts), len(cloud.Recipes())+2)
	}
	// The name is free again.
	if err := c.targets.CreateTarget(ctx, &cloud.Target{Name: fixed.Name, TargetDefinition: fixed.TargetDefinition}); err != nil {
		t.Errorf("reuse archived name: %v", err)
	}
}

func TestTargetRolesAndTenants(t *testing.T) {
	t.Parallel()
	c := newClub(t)
	opCtx, _ := c.operator(t, "op@a.test", cloud.RoleOperator)
	def := cloud.TargetDefinition{Criteria: []cloud.Criterion{{Kind: cloud.CriterionMembershipActive}}}
	if err := c.targets.CreateTarget(opCtx, &cloud.Target{Name: "x", TargetDefinition: def}); cloud.ErrorCode(err) != cloud.EFORBIDDEN {
		t.Errorf("operator creates a target: %v", err)
	}
	tg := &cloud.Target{Name: "Active", TargetDefinition: def}
	if err := c.targets.CreateTarget(c.admin, tg); err != nil {
		t.Fatal(err)
	}
	// Operators run targets.
	if p, err := c.targets.RunTarget(opCtx, tg.ID, cloud.TargetQuery{}); err != nil || len(p.Items) != 2 {
		t.Errorf("operator runs: %v", err)
	}
	// Tenant B sees nothing of A's.
	bctx := cloud.NewContextWithOperator(context.Background(), mustOperator(t, c.bundle, "admin@b.test"))
	if _, err := c.targets.FindTargetByID(bctx, tg.ID); cloud.ErrorCode(err) != cloud.ENOTFOUND {
		t.Errorf("B finds A's target: %v", err)
	}
	if _, err := c.targets.RunTarget(bctx, tg.ID, cloud.TargetQuery{}); cloud.ErrorCode(err) != cloud.ENOTFOUND {
		t.Errorf("B runs A's target: %v", err)
	}
	if _, err := c.targets.CountTarget(bctx, tg.ID, cloud.Date{}); cloud.ErrorCode(err) != cloud.ENOTFOUND {
		t.Errorf("B counts A's target: %v", err)
	}
	if _, err := c.targets.UpdateTarget(bctx, tg.ID, 1, cloud.TargetUpdate{Name: new("pwned")}); cloud.ErrorCode(err) != cloud.ENOTFOUND {
		t.Errorf("B edits A's target: %v", err)
	}
	if _, err := c.targets.CreateTargetActions(bctx, tg.ID, cloud.Date{}, &cloud.Action{}); cloud.ErrorCode(err) != cloud.ENOTFOUND {
		t.Errorf("B creates actions for A's target: %v", err)
	}
	if ts, err := c.targets.FindTargets(bctx, cloud.TargetFilter{IncludeArchived: true}); err != nil ||
		slices.ContainsFunc(ts, func(x *cloud.Target) bool { return x.ID == tg.ID || x.TenantID == c.tenantID }) {
		t.Errorf("B lists A's targets (%v)", err)
	}
	// B's preview only ever finds B's members, whatever A's IDs it names.
	p, err := c.targets.PreviewTarget(bctx, cloud.TargetDefinition{Criteria: []cloud.Criterion{{Kind: cloud.CriterionTags, Tags: []string{"yoga"}}}}, cloud.TargetQuery{})
	if err != nil || len(p.Items) != 1 || p.Items[0].FirstName != "Other" {
		t.Errorf("B preview: %v %+v", err, p)
	}
	for _, cr := range []cloud.Criterion{
		{Kind: cloud.CriterionCommercialStatus, StatusIDs: []int64{c.statusID(t, "Member")}},
		{Kind: cloud.CriterionCRMHistory, TypeID: c.typeID(t, "Tour")},
	} {
		_, err := c.targets.PreviewTarget(bctx, cloud.TargetDefinition{Criteria: []cloud.Criterion{cr}}, cloud.TargetQuery{})
		if cloud.ErrorCode(err) != cloud.EINVALID {
			t.Errorf("B names A's %s: %v", cr.Kind, err)
		}
	}
}

func mustOperator(t *testing.T, b *bundle, email string) *cloud.Operator {
	t.Helper()
	var op cloud.Operator
	err := b.db.Pool.QueryRow(context.Background(), `SELECT id, tenant_id, role FROM operators WHERE email = $1`, email).Scan(&op.ID, &op.TenantID, &op.Role)
	if err != nil {
		t.Fatal(err)
	}
	return &op
}
