package cloud_test

import (
	"encoding/json"
	"testing"
	"time"

	"varco.dev/cloud"
)

func TestOptionalJSON(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in        string
		set, null bool
		value     int64
	}{
		{`{}`, false, false, 0},
		{`{"operator_id": null}`, true, true, 0},
		{`{"operator_id": 7}`, true, false, 7},
	} {
		var u cloud.MemberUpdate
		if err := json.Unmarshal([]byte(tc.in), &u); err != nil {
			t.Fatalf("%s: %v", tc.in, err)
		}
		if u.OperatorID.Set != tc.set || (u.OperatorID.Value == nil) != (tc.null || !tc.set) || (u.OperatorID.Value != nil && *u.OperatorID.Value != tc.value) {
			t.Errorf("%s: %+v", tc.in, u.OperatorID)
		}
		one := int64(1)
		m := cloud.Member{OperatorID: &one}
		u.Apply(&m)
		switch {
		case !tc.set && (m.OperatorID == nil || *m.OperatorID != 1):
			t.Errorf("%s changed the operator: %v", tc.in, m.OperatorID)
		case tc.null && m.OperatorID != nil:
			t.Errorf("%s did not clear the operator", tc.in)
		case tc.set && !tc.null && *m.OperatorID != tc.value:
			t.Errorf("%s: operator %d", tc.in, *m.OperatorID)
		}
		// Unset fields stay out of the encoding (the audit log's).
		b, _ := json.Marshal(u)
		var back map[string]any
		_ = json.Unmarshal(b, &back)
		if _, ok := back["operator_id"]; ok != tc.set {
			t.Errorf("%s encodes as %s", tc.in, b)
		}
	}
	var u cloud.ActionUpdate
	if err := json.Unmarshal([]byte(`{"planned_at": "tomorrow"}`), &u); err == nil {
		t.Error("a bad time in an Optional decoded")
	}
}

func TestInstalmentValidate(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 3, 4, 9, 0, 0, 0, time.UTC)
	future, past := now.Add(time.Minute), now.Add(-time.Hour)
	zero := int64(0)
	for _, tc := range []struct {
		name  string
		in    cloud.Instalment
		field string
	}{
		{"ok, currency defaults to EUR", cloud.Instalment{AmountCents: 4990, DueOn: d("2025-03-01")}, ""},
		{"lower-case currency", cloud.Instalment{AmountCents: 1, Currency: " chf ", DueOn: d("2025-03-01")}, ""},
		{"paid in the past", cloud.Instalment{AmountCents: 1, DueOn: d("2025-03-01"), PaidAt: &past}, ""},
		{"zero amount", cloud.Instalment{DueOn: d("2025-03-01")}, "amount_cents"},
		{"negative amount", cloud.Instalment{AmountCents: -5, DueOn: d("2025-03-01")}, "amount_cents"},
		{"absurd amount", cloud.Instalment{AmountCents: cloud.MaxInstalmentCents + 1, DueOn: d("2025-03-01")}, "amount_cents"},
		{"bad currency", cloud.Instalment{AmountCents: 1, Currency: "EURO", DueOn: d("2025-03-01")}, "currency"},
		{"no due date", cloud.Instalment{AmountCents: 1}, "due_on"},
		{"paid in the future", cloud.Instalment{AmountCents: 1, DueOn: d("2025-03-01"), PaidAt: &future}, "paid_at"},
		{"paid and cancelled", cloud.Instalment{AmountCents: 1, DueOn: d("2025-03-01"), PaidAt: &past, Cancelled: true}, "cancelled"},
		{"membership 0", cloud.Instalment{AmountCents: 1, DueOn: d("2025-03-01"), MembershipID: &zero}, "membership_id"},
	} {
		err := tc.in.Validate(now)
		if cloud.ErrorField(err) != tc.field || (tc.field == "") != (err == nil) {
			t.Errorf("%s: %v, want field %q", tc.name, err, tc.field)
		}
		if err == nil && len(tc.in.Currency) != 3 {
			t.Errorf("%s: currency %q", tc.name, tc.in.Currency)
		}
	}
}

func TestBookingValidate(t *testing.T) {
	t.Parallel()
	at := time.Date(2025, 3, 5, 18, 0, 0, 0, rome)
	for _, tc := range []struct {
		name  string
		b     cloud.Booking
		field string
	}{
		{"ok, defaults", cloud.Booking{SiteID: 1, Title: "Spinning", StartsAt: at, EndsAt: at.Add(45 * time.Minute)}, ""},
		{"appointment attended", cloud.Booking{SiteID: 1, Title: "PT", Kind: cloud.BookingAppointment, Status: cloud.BookingAttended, StartsAt: at, EndsAt: at.Add(time.Hour)}, ""},
		{"no title", cloud.Booking{SiteID: 1, Title: "  ", StartsAt: at, EndsAt: at.Add(time.Hour)}, "title"},
		{"no site", cloud.Booking{Title: "Yoga", StartsAt: at, EndsAt: at.Add(time.Hour)}, "site_id"},
		{"bad kind", cloud.Booking{SiteID: 1, Title: "Yoga", Kind: "party", StartsAt: at, EndsAt: at.Add(time.Hour)}, "kind"},
		{"bad status", cloud.Booking{SiteID: 1, Title: "Yoga", Status: "maybe", StartsAt: at, EndsAt: at.Add(time.Hour)}, "status"},
		{"no start", cloud.Booking{SiteID: 1, Title: "Yoga", EndsAt: at}, "starts_at"},
		{"no end", cloud.Booking{SiteID: 1, Title: "Yoga", StartsAt: at}, "ends_at"},
		{"ends before it starts", cloud.Booking{SiteID: 1, Title: "Yoga", StartsAt: at, EndsAt: at.Add(-time.Minute)}, "ends_at"},
		{"empty", cloud.Booking{SiteID: 1, Title: "Yoga", StartsAt: at, EndsAt: at}, "ends_at"},
		{"longer than a day", cloud.Booking{SiteID: 1, Title: "Retreat", StartsAt: at, EndsAt: at.Add(25 * time.Hour)}, "ends_at"},
	} {
		err := tc.b.Validate()
		if cloud.ErrorField(err) != tc.field || (tc.field == "") != (err == nil) {
			t.Errorf("%s: %v, want field %q", tc.name, err, tc.field)
		}
		if err == nil && (tc.b.StartsAt.Location() != time.UTC || tc.b.Kind == "" || tc.b.Status == "") {
			t.Errorf("%s: not normalised: %+v", tc.name, tc.b)
		}
	}
}

func TestMembershipDeviceTypes(t *testing.T) {
	t.Parallel()
	ms := cloud.Membership{Name: "Spa", StartsOn: d("2025-01-01"), EndsOn: d("2025-12-31"), DeviceTypes: []cloud.DeviceType{cloud.DeviceSpa}}
	if err := ms.Validate(); err != nil || !ms.Opens(cloud.DeviceSpa) || ms.Opens(cloud.DeviceEntrance) {
		t.Errorf("spa add-on: %v, opens entrance %v", err, ms.Opens(cloud.DeviceEntrance))
	}
	all := cloud.Membership{Name: "Annual", StartsOn: d("2025-01-01"), EndsOn: d("2025-12-31")}
	if err := all.Validate(); err != nil || all.DeviceTypes == nil || !all.Opens(cloud.DeviceLocker) {
		t.Errorf("no device types: %v %+v", err, all)
	}
	for _, bad := range [][]cloud.DeviceType{{"sauna"}, {cloud.DeviceSpa, cloud.DeviceSpa}} {
		ms.DeviceTypes = bad
		if err := ms.Validate(); cloud.ErrorField(err) != "device_types" {
			t.Errorf("device types %v: %v", bad, err)
		}
	}
}
