package cloud_test

import (
	"encoding/json"
	"testing"

	"varco.dev/cloud"
)

func ip(v int) *int { return &v }

func TestTargetDefinitionValidate(t *testing.T) {
	t.Parallel()
	d := cloud.NewDate(2025, 3, 1)
	tests := []struct {
		name     string
		mode     cloud.DateMode
		criteria []cloud.Criterion
		field    string // "" when valid
		wantMode cloud.DateMode
	}{
		{name: "relative only defaults to none", criteria: []cloud.Criterion{{Kind: cloud.CriterionMembershipEnding, Days: ip(15)}}, wantMode: cloud.DateNone},
		{name: "dates default to fixed", criteria: []cloud.Criterion{{Kind: cloud.CriterionMembershipEnding, From: d}}, wantMode: cloud.DateFixed},
		{name: "rolling with a range", mode: cloud.DateRolling, criteria: []cloud.Criterion{{Kind: cloud.CriterionInstalmentDue, From: d, To: d.AddDays(9)}}, wantMode: cloud.DateRolling},
		{name: "every kind at once", criteria: []cloud.Criterion{
			{Kind: cloud.CriterionMembershipActive},
			{Kind: cloud.CriterionMedicalCert, State: cloud.CertMissingOrExpired},
			{Kind: cloud.CriterionMedicalCert, State: cloud.CertExpiring, Days: ip(0), DaysTo: ip(15)},
			{Kind: cloud.CriterionNotAttending, Days: ip(30)},
			{Kind: cloud.CriterionBooking, Days: ip(1), BookingKind: cloud.BookingAppointment},
			{Kind: cloud.CriterionRegistered, Days: ip(-1)},
			{Kind: cloud.CriterionBirthday, Days: ip(0)},
			{Kind: cloud.CriterionCommercialStatus, StatusIDs: []int64{1}},
			{Kind: cloud.CriterionTags, Tags: []string{"yoga"}, Match: "all"},
			{Kind: cloud.CriterionConsent, Channel: cloud.ChannelSMS, Purpose: cloud.PurposeService, Not: true},
			{Kind: cloud.CriterionCRMHistory, TypeID: 3, OutcomeID: 4, Days: ip(-30), DaysTo: ip(0)},
		}, wantMode: cloud.DateNone},

		{name: "no criteria", criteria: nil, field: "criteria"},
		{name: "bad mode", mode: "sometimes", criteria: []cloud.Criterion{{Kind: cloud.CriterionMembershipActive}}, field: "date_mode"},
		{name: "unknown kind", criteria: []cloud.Criterion{{Kind: "vip"}}, field: "criteria[0].kind"},
		{name: "field of another kind", criteria: []cloud.Criterion{{Kind: cloud.CriterionMembershipActive}, {Kind: cloud.CriterionBirthday, Days: ip(0), Tags: []string{"x"}}}, field: "criteria[1].tags"},
		{name: "window missing", criteria: []cloud.Criterion{{Kind: cloud.CriterionInstalmentDue}}, field: "criteria[0].days"},
		{name: "days and dates", criteria: []cloud.Criterion{{Kind: cloud.CriterionInstalmentDue, Days: ip(1), From: d}}, field: "criteria[0].from"},
		{name: "dates with mode none", mode: cloud.DateNone, criteria: []cloud.Criterion{{Kind: cloud.CriterionInstalmentDue, From: d}}, field: "criteria[0].from"},
		{name: "to before from", criteria: []cloud.Criterion{{Kind: cloud.CriterionInstalmentDue, From: d, To: d.AddDays(-1)}}, field: "criteria[0].to"},
		{name: "to without from", criteria: []cloud.Criterion{{Kind: cloud.CriterionInstalmentDue, To: d}}, field: "criteria[0].from"},
		{name: "days_to without days", criteria: []cloud.Criterion{{Kind: cloud.CriterionInstalmentDue, DaysTo: ip(3)}}, field: "criteria[0].days"},
		{name: "days_to before days", criteria: []cloud.Criterion{{Kind: cloud.CriterionInstalmentDue, Days: ip(3), DaysTo: ip(1)}}, field: "criteria[0].days_to"},
		{name: "days too far", criteria: []cloud.Criterion{{Kind: cloud.CriterionInstalmentDue, Days: ip(100000)}}, field: "criteria[0].days"},
		{name: "not attending zero days", criteria: []cloud.Criterion{{Kind: cloud.CriterionNotAttending, Days: ip(0)}}, field: "criteria[0].days"},
		{name: "not attending with dates", criteria: []cloud.Criterion{{Kind: cloud.CriterionNotAttending, Days: ip(3), From: d}}, field: "criteria[0].from"},
		{name: "medical bad state", criteria: []cloud.Criterion{{Kind: cloud.CriterionMedicalCert, State: "bad"}}, field: "criteria[0].state"},
		{name: "medical expired with window", criteria: []cloud.Criterion{{Kind: cloud.CriterionMedicalCert, State: cloud.CertExpired, Days: ip(1)}}, field: "criteria[0].days"},
		{name: "medical expiring without window", criteria: []cloud.Criterion{{Kind: cloud.CriterionMedicalCert, State: cloud.CertExpiring}}, field: "criteria[0].days"},
		{name: "booking kind", criteria: []cloud.Criterion{{Kind: cloud.CriterionBooking, Days: ip(1), BookingKind: "party"}}, field: "criteria[0].booking_kind"},
		{name: "birthday year and a day", criteria: []cloud.Criterion{{Kind: cloud.CriterionBirthday, Days: ip(0), DaysTo: ip(367)}}, field: "criteria[0].days_to"},
		{name: "empty status list", criteria: []cloud.Criterion{{Kind: cloud.CriterionCommercialStatus, StatusIDs: []int64{}}}, field: "criteria[0].status_ids"},
		{name: "bad tag", criteria: []cloud.Criterion{{Kind: cloud.CriterionTags, Tags: []string{"a'; DROP TABLE members"}}}, field: "criteria[0].tags"},
		{name: "bad match", criteria: []cloud.Criterion{{Kind: cloud.CriterionTags, Tags: []string{"a"}, Match: "most"}}, field: "criteria[0].match"},
		{name: "consent channel", criteria: []cloud.Criterion{{Kind: cloud.CriterionConsent, Channel: "fax", Purpose: cloud.PurposeService}}, field: "criteria[0].channel"},
		{name: "consent purpose", criteria: []cloud.Criterion{{Kind: cloud.CriterionConsent, Channel: cloud.ChannelSMS, Purpose: "spam"}}, field: "criteria[0].purpose"},
		{name: "crm history without type", criteria: []cloud.Criterion{{Kind: cloud.CriterionCRMHistory, OutcomeID: 3}}, field: "criteria[0].action_type_id"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			def := cloud.TargetDefinition{Criteria: tc.criteria, DateMode: tc.mode}
			err := def.Validate()
			if tc.field == "" {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				if def.DateMode != tc.wantMode {
					t.Errorf("date mode %q, want %q", def.DateMode, tc.wantMode)
				}
				return
			}
			if cloud.ErrorCode(err) != cloud.EINVALID || cloud.ErrorField(err) != tc.field {
				t.Fatalf("got %v, want EINVALID on %s", err, tc.field)
			}
		})
	}
}

func TestCriterionWindow(t *testing.T) {
	t.Parallel()
	today := cloud.NewDate(2025, 3, 4)
	tests := []struct {
		name   string
		c      cloud.Criterion
		shift  int
		lo, hi string
		ok     bool
	}{
		{"tomorrow", cloud.Criterion{Kind: cloud.CriterionBooking, Days: ip(1)}, 0, "2025-03-05", "2025-03-05", true},
		{"next 30 days", cloud.Criterion{Kind: cloud.CriterionInstalmentDue, Days: ip(0), DaysTo: ip(30)}, 0, "2025-03-04", "2025-04-03", true},
		{"fixed date", cloud.Criterion{Kind: cloud.CriterionRegistered, From: cloud.NewDate(2025, 1, 10)}, 0, "2025-01-10", "2025-01-10", true},
		{"rolled range", cloud.Criterion{Kind: cloud.CriterionRegistered, From: cloud.NewDate(2025, 1, 10), To: cloud.NewDate(2025, 1, 12)}, 7, "2025-01-17", "2025-01-19", true},
		{"relative ignores shift", cloud.Criterion{Kind: cloud.CriterionBooking, Days: ip(1)}, 7, "2025-03-05", "2025-03-05", true},
		{"no window", cloud.Criterion{Kind: cloud.CriterionCRMHistory, TypeID: 1}, 0, "", "", false},
		{"not attending has none", cloud.Criterion{Kind: cloud.CriterionNotAttending, Days: ip(30)}, 0, "", "", false},
	}
	for _, tc := range tests {
		lo, hi, ok := tc.c.Window(today, tc.shift)
		if ok != tc.ok || lo.String() != tc.lo || hi.String() != tc.hi {
			t.Errorf("%s: got %s..%s %v, want %s..%s %v", tc.name, lo, hi, ok, tc.lo, tc.hi, tc.ok)
		}
	}
}

func TestTargetShift(t *testing.T) {
	t.Parallel()
	ref := cloud.NewDate(2025, 3, 1)
	for _, tc := range []struct {
		mode cloud.DateMode
		want int
	}{{cloud.DateRolling, 10}, {cloud.DateFixed, 0}, {cloud.DateNone, 0}} {
		def := cloud.TargetDefinition{DateMode: tc.mode, ReferenceDate: ref}
		if got := def.Shift(ref.AddDays(10)); got != tc.want {
			t.Errorf("%s: shift %d, want %d", tc.mode, got, tc.want)
		}
	}
}

// TestCriterionJSON checks the wire names and that unset fields stay out.
func TestCriterionJSON(t *testing.T) {
	t.Parallel()
	c := cloud.Criterion{Kind: cloud.CriterionCRMHistory, TypeID: 3, Days: ip(0)}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"kind":"crm_history","days":0,"action_type_id":3}`; string(b) != want {
		t.Errorf("got %s, want %s", b, want)
	}
}
