package postgres_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"varco.dev/cloud"
)

// otherTenant creates tenant B and returns its admin's context.
func (b *bundle) otherTenant(t *testing.T) context.Context {
	t.Helper()
	admin := &cloud.Operator{Email: "admin@b.test", Name: "Admin B"}
	if err := b.tenants.CreateTenant(context.Background(), &cloud.Tenant{Name: "Club B", Slug: "club-b"}, admin, "correct horse battery"); err != nil {
		t.Fatalf("CreateTenant B: %v", err)
	}
	return cloud.NewContextWithOperator(context.Background(), admin)
}

func TestInstalments(t *testing.T) {
	t.Parallel()
	b := setup(t)
	site := &cloud.Site{Name: "Centro"}
	if err := b.sites.CreateSite(b.admin, site); err != nil {
		t.Fatal(err)
	}
	m, other := b.member(t, "Anna", nil), b.member(t, "Bruno", nil)
	annual := &cloud.Membership{MemberID: m.ID, Name: "Annual", StartsOn: cloud.NewDate(2025, 1, 1), EndsOn: cloud.NewDate(2025, 12, 31)}
	othersMS := &cloud.Membership{MemberID: other.ID, Name: "Annual", StartsOn: cloud.NewDate(2025, 1, 1), EndsOn: cloud.NewDate(2025, 12, 31)}
	for _, ms := range []*cloud.Membership{annual, othersMS} {
		if err := b.members.CreateMembership(b.admin, ms); err != nil {
			t.Fatal(err)
		}
	}
	// Refused: the DB constraints back the domain rules up.
	for _, tc := range []struct {
		name  string
		in    cloud.Instalment
		code  string
		field string
	}{
		{"another member's membership", cloud.Instalment{MemberID: m.ID, MembershipID: &othersMS.ID, AmountCents: 100, DueOn: cloud.NewDate(2025, 3, 1)}, cloud.EINVALID, "membership_id"},
		{"unknown membership", cloud.Instalment{MemberID: m.ID, MembershipID: new(int64(987654)), AmountCents: 100, DueOn: cloud.NewDate(2025, 3, 1)}, cloud.EINVALID, "membership_id"},
		{"unknown member", cloud.Instalment{MemberID: 987654, AmountCents: 100, DueOn: cloud.NewDate(2025, 3, 1)}, cloud.ENOTFOUND, ""},
		{"no amount", cloud.Instalment{MemberID: m.ID, DueOn: cloud.NewDate(2025, 3, 1)}, cloud.EINVALID, "amount_cents"},
	} {
		in := tc.in
		if err := b.members.CreateInstalment(b.admin, &in); cloud.ErrorCode(err) != tc.code || cloud.ErrorField(err) != tc.field {
			t.Errorf("%s: %v, want %s %q", tc.name, err, tc.code, tc.field)
		}
	}
	march := &cloud.Instalment{MemberID: m.ID, MembershipID: &annual.ID, Description: "2/12", AmountCents: 4990, Currency: "eur", DueOn: cloud.NewDate(2025, 3, 1)}
	feb := &cloud.Instalment{MemberID: m.ID, MembershipID: &annual.ID, Description: "1/12", AmountCents: 4990, DueOn: cloud.NewDate(2025, 2, 1), PaidAt: new(t0.Add(-30 * 24 * time.Hour))}
	for _, in := range []*cloud.Instalment{march, feb} {
		if err := b.members.CreateInstalment(b.admin, in); err != nil {
			t.Fatal(err)
		}
	}
	if march.Currency != "EUR" || march.Version != 1 {
		t.Errorf("created = %+v", march)
	}
	list, err := b.members.FindInstalments(b.admin, m.ID)
	if err != nil || len(list) != 2 || list[0].ID != feb.ID || list[1].ID != march.ID || list[0].PaidAt == nil {
		t.Fatalf("instalments = %+v, %v; want February then March", list, err)
	}

	notices := func() []string {
		t.Helper()
		v, err := b.access.AccessRecord(b.admin, m.ID, site.ID)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, n := range v.Record.Notices {
			out = append(out, n.Text)
		}
		return out
	}
	if got := notices(); !slices.Equal(got, []string{"Instalment due on 1 Mar 2025"}) {
		t.Fatalf("notices = %q, want the overdue March instalment", got)
	}

	// Paying it lifts the notice; a stale edit is refused; a paid one cannot
	// be cancelled; clearing paid_at brings the notice back; cancelling lifts it.
	if _, err := b.members.UpdateInstalment(b.admin, march.ID, 0, cloud.InstalmentUpdate{PaidAt: cloud.Some(t0)}); cloud.ErrorCode(err) != cloud.EPRECONDITION {
		t.Fatalf("stale update: %v", err)
	}
	paid, err := b.members.UpdateInstalment(b.admin, march.ID, 1, cloud.InstalmentUpdate{PaidAt: cloud.Some(t0.Add(-time.Hour))})
	if err != nil || paid.PaidAt == nil || paid.Version != 2 {
		t.Fatalf("pay: %+v, %v", paid, err)
	}
	if got := notices(); len(got) != 0 {
		t.Errorf("notices after paying = %q", got)
	}
	if _, err := b.members.UpdateInstalment(b.admin, march.ID, 2, cloud.InstalmentUpdate{Cancelled: new(true)}); cloud.ErrorField(err) != "cancelled" {
		t.Errorf("cancel a paid instalment: %v", err)
	}
	if _, err := b.members.UpdateInstalment(b.admin, march.ID, 2, cloud.InstalmentUpdate{MembershipID: cloud.Some(othersMS.ID)}); cloud.ErrorField(err) != "membership_id" {
		t.Errorf("move to another member's membership: %v", err)
	}
	unpaid, err := b.members.UpdateInstalment(b.admin, march.ID, 2, cloud.InstalmentUpdate{PaidAt: cloud.Null[time.Time](), MembershipID: cloud.Null[int64]()})
	if err != nil || unpaid.PaidAt != nil || unpaid.MembershipID != nil || unpaid.Version != 3 {
		t.Fatalf("unpay: %+v, %v", unpaid, err)
	}
	if got := notices(); len(got) != 1 {
		t.Errorf("notices after clearing the payment = %q", got)
	}
	if _, err := b.members.UpdateInstalment(b.admin, march.ID, 3, cloud.InstalmentUpdate{Cancelled: new(true)}); err != nil {
		t.Fatal(err)
	}
	if got := notices(); len(got) != 0 {
		t.Errorf("notices after cancelling = %q", got)
	}

	// Tenant B sees and changes nothing of A's.
	bctx := b.otherTenant(t)
	if _, err := b.members.FindInstalments(bctx, m.ID); cloud.ErrorCode(err) != cloud.ENOTFOUND {
		t.Errorf("B lists A's instalments: %v", err)
	}
	if _, err := b.members.UpdateInstalment(bctx, march.ID, 4, cloud.InstalmentUpdate{Cancelled: new(false)}); cloud.ErrorCode(err) != cloud.ENOTFOUND {
		t.Errorf("B edits A's instalment: %v", err)
	}
	if err := b.members.CreateInstalment(bctx, &cloud.Instalment{MemberID: m.ID, AmountCents: 1, DueOn: cloud.NewDate(2025, 3, 1)}); cloud.ErrorCode(err) != cloud.ENOTFOUND {
		t.Errorf("B bills A's member: %v", err)
	}
}

func TestBookings(t *testing.T) {
	t.Parallel()
	b := setup(t)
	centro, nord := &cloud.Site{Name: "Centro"}, &cloud.Site{Name: "Nord"}
	for _, s := range []*cloud.Site{centro, nord} {
		if err := b.sites.CreateSite(b.admin, s); err != nil {
			t.Fatal(err)
		}
	}
	bctx := b.otherTenant(t)
	foreign := &cloud.Site{Name: "B's site"}
	if err := b.sites.CreateSite(bctx, foreign); err != nil {
		t.Fatal(err)
	}
	m := b.member(t, "Carla", nil)
	day := func(d, h int) time.Time { return time.Date(2025, 3, d, h, 0, 0, 0, time.UTC) }
	if err := b.members.CreateBooking(b.admin, &cloud.Booking{MemberID: m.ID, SiteID: foreign.ID, Title: "Yoga", StartsAt: day(5, 18), EndsAt: day(5, 19)}); cloud.ErrorField(err) != "site_id" {
		t.Errorf("booking at B's site: %v", err)
	}
	if err := b.members.CreateBooking(b.admin, &cloud.Booking{MemberID: m.ID, SiteID: centro.ID, Title: "Yoga", StartsAt: day(5, 19), EndsAt: day(5, 18)}); cloud.ErrorField(err) != "ends_at" {
		t.Errorf("booking ending before it starts: %v", err)
	}
	var made []*cloud.Booking
	for i, h := range []struct{ d, h int }{{7, 9}, {5, 18}, {6, 7}, {10, 20}, {5, 18}} {
		bk := &cloud.Booking{MemberID: m.ID, SiteID: centro.ID, Title: "Spinning", StartsAt: day(h.d, h.h), EndsAt: day(h.d, h.h).Add(45 * time.Minute)}
		if i == 2 {
			bk.Kind, bk.Title = cloud.BookingAppointment, "Personal training"
		}
		if err := b.members.CreateBooking(b.admin, bk); err != nil {
			t.Fatal(err)
		}
		made = append(made, bk)
	}
	if made[0].Status != cloud.BookingBooked || made[0].Kind != cloud.BookingClass {
		t.Errorf("defaults = %+v", made[0])
	}
	// Pages of 2 in start order, ties by ID, bounded by from/to.
	var got []int64
	f := cloud.BookingFilter{MemberID: m.ID, From: cloud.NewDate(2025, 3, 5), To: cloud.NewDate(2025, 3, 7), Limit: 2}
	for range 5 {
		page, err := b.members.FindBookings(b.admin, f)
		if err != nil {
			t.Fatal(err)
		}
		for _, bk := range page {
			got = append(got, bk.ID)
		}
		if len(page) < f.Limit {
			break
		}
		f.Cursor = page[len(page)-1].ID
	}
	if want := []int64{made[1].ID, made[4].ID, made[2].ID, made[0].ID}; !slices.Equal(got, want) {
		t.Errorf("bookings from 5 to 7 March = %v, want %v", got, want)
	}
	if _, err := b.members.FindBookings(b.admin, cloud.BookingFilter{MemberID: m.ID, From: cloud.NewDate(2025, 3, 7), To: cloud.NewDate(2025, 3, 5)}); cloud.ErrorField(err) != "to" {
		t.Errorf("to before from: %v", err)
	}

	attended := cloud.BookingAttended
	bk, err := b.members.UpdateBooking(b.admin, made[1].ID, 1, cloud.BookingUpdate{Status: &attended, SiteID: &nord.ID})
	if err != nil || bk.Status != cloud.BookingAttended || bk.SiteID != nord.ID || bk.Version != 2 {
		t.Fatalf("update = %+v, %v", bk, err)
	}
	if _, err := b.members.UpdateBooking(b.admin, made[1].ID, 1, cloud.BookingUpdate{Status: &attended}); cloud.ErrorCode(err) != cloud.EPRECONDITION {
		t.Errorf("stale update: %v", err)
	}
	if _, err := b.members.UpdateBooking(b.admin, made[1].ID, 2, cloud.BookingUpdate{SiteID: &foreign.ID}); cloud.ErrorField(err) != "site_id" {
		t.Errorf("move to B's site: %v", err)
	}
	if _, err := b.members.UpdateBooking(b.admin, made[1].ID, 2, cloud.BookingUpdate{EndsAt: new(day(4, 0))}); cloud.ErrorField(err) != "ends_at" {
		t.Errorf("end before start: %v", err)
	}
	if _, err := b.members.FindBookings(bctx, cloud.BookingFilter{MemberID: m.ID}); cloud.ErrorCode(err) != cloud.ENOTFOUND {
		t.Errorf("B lists A's bookings: %v", err)
	}
	if _, err := b.members.UpdateBooking(bctx, made[0].ID, 1, cloud.BookingUpdate{Status: &attended}); cloud.ErrorCode(err) != cloud.ENOTFOUND {
		t.Errorf("B edits A's booking: %v", err)
	}
	if err := b.members.CreateBooking(bctx, &cloud.Booking{MemberID: m.ID, SiteID: foreign.ID, Title: "Yoga", StartsAt: day(5, 18), EndsAt: day(5, 19)}); cloud.ErrorCode(err) != cloud.ENOTFOUND {
		t.Errorf("B books A's member: %v", err)
	}
}
