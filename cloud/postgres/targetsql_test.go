package postgres

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"varco.dev/cloud"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func ip(v int) *int { return &v }

// TestBuildTargetWhere renders the SQL and the parameters of each criterion
// kind, negations, combinations and the date modes, against golden files
// in testdata/targetsql (go test -run TestBuildTargetWhere -update rewrites
// them). User input only ever appears among the parameters.
func TestBuildTargetWhere(t *testing.T) {
	t.Parallel()
	rome, err := time.LoadLocation("Europe/Rome")
	if err != nil {
		t.Fatal(err)
	}
	today := cloud.NewDate(2025, 3, 4)
	hostile := `x'); DROP TABLE members; --`
	tests := []struct {
		name     string
		today    cloud.Date
		mode     cloud.DateMode
		ref      cloud.Date
		criteria []cloud.Criterion
	}{
		{name: "membership_ending_in_15_days", criteria: []cloud.Criterion{{Kind: cloud.CriterionMembershipEnding, Days: ip(15)}}},
		{name: "membership_ending_on_date", mode: cloud.DateFixed, criteria: []cloud.Criterion{{Kind: cloud.CriterionMembershipEnding, From: cloud.NewDate(2025, 6, 30)}}},
		{name: "membership_active", criteria: []cloud.Criterion{{Kind: cloud.CriterionMembershipActive}}},
		{name: "instalment_due_in_5_days", criteria: []cloud.Criterion{{Kind: cloud.CriterionInstalmentDue, Days: ip(5)}}},
		{name: "instalment_overdue_last_30_days", criteria: []cloud.Criterion{{Kind: cloud.CriterionInstalmentDue, Days: ip(-30), DaysTo: ip(-1)}}},
		{name: "medical_cert_expiring_next_15_days", criteria: []cloud.Criterion{{Kind: cloud.CriterionMedicalCert, State: cloud.CertExpiring, Days: ip(0), DaysTo: ip(15)}}},
		{name: "medical_cert_expired", criteria: []cloud.Criterion{{Kind: cloud.CriterionMedicalCert, State: cloud.CertExpired}}},
		{name: "medical_cert_missing", criteria: []cloud.Criterion{{Kind: cloud.CriterionMedicalCert, State: cloud.CertMissing}}},
		{name: "medical_cert_missing_or_expired", criteria: []cloud.Criterion{{Kind: cloud.CriterionMedicalCert, State: cloud.CertMissingOrExpired}}},
		{name: "not_attending_30_days", criteria: []cloud.Criterion{{Kind: cloud.CriterionNotAttending, Days: ip(30)}}},
		{name: "appointment_tomorrow", criteria: []cloud.Criterion{{Kind: cloud.CriterionBooking, Days: ip(1), BookingKind: cloud.BookingAppointment}}},
		{name: "booking_any_kind_today", criteria: []cloud.Criterion{{Kind: cloud.CriterionBooking, Days: ip(0)}}},
		// Rome springs forward on 30 March 2025: that day is 23 hours long.
		{name: "registered_on_dst_day", mode: cloud.DateFixed, criteria: []cloud.Criterion{{Kind: cloud.CriterionRegistered, From: cloud.NewDate(2025, 3, 30)}}},
		{name: "registered_yesterday", criteria: []cloud.Criterion{{Kind: cloud.CriterionRegistered, Days: ip(-1)}}},
		{name: "birthday_today", criteria: []cloud.Criterion{{Kind: cloud.CriterionBirthday, Days: ip(0)}}},
		// 2025 is a common year: 29 February birthdays are wished on the 28th.
		{name: "birthday_window_over_february", today: cloud.NewDate(2025, 2, 27), criteria: []cloud.Criterion{{Kind: cloud.CriterionBirthday, Days: ip(0), DaysTo: ip(3)}}},
		{name: "commercial_status", criteria: []cloud.Criterion{{Kind: cloud.CriterionCommercialStatus, StatusIDs: []int64{3, 5}}}},
		{name: "tags_any_hostile", criteria: []cloud.Criterion{{Kind: cloud.CriterionTags, Tags: []string{"yoga", hostile}}}},
		{name: "tags_all", criteria: []cloud.Criterion{{Kind: cloud.CriterionTags, Tags: []string{"yoga", "pool"}, Match: "all"}}},
		{name: "consent_sms_marketing", criteria: []cloud.Criterion{{Kind: cloud.CriterionConsent, Channel: cloud.ChannelSMS, Purpose: cloud.PurposeMarketing}}},
		{name: "crm_history_between_dates", mode: cloud.DateFixed, criteria: []cloud.Criterion{{Kind: cloud.CriterionCRMHistory, TypeID: 11, OutcomeID: 22,
			From: cloud.NewDate(2025, 1, 1), To: cloud.NewDate(2025, 1, 31)}}},
		{name: "crm_history_ever", criteria: []cloud.Criterion{{Kind: cloud.CriterionCRMHistory, TypeID: 11}}},
		{name: "combination_with_not", criteria: []cloud.Criterion{
			{Kind: cloud.CriterionMembershipActive},
			{Kind: cloud.CriterionNotAttending, Days: ip(30)},
			{Kind: cloud.CriterionConsent, Not: true, Channel: cloud.ChannelEmail, Purpose: cloud.PurposeMarketing},
		}},
		// Saved on 1 March for 1-10 March; run on 4 March the window moves by 3 days.
		{name: "rolling_dates_move", mode: cloud.DateRolling, ref: cloud.NewDate(2025, 3, 1), criteria: []cloud.Criterion{
			{Kind: cloud.CriterionInstalmentDue, From: cloud.NewDate(2025, 3, 1), To: cloud.NewDate(2025, 3, 10)}}},
		{name: "fixed_dates_stay", mode: cloud.DateFixed, ref: cloud.NewDate(2025, 3, 1), criteria: []cloud.Criterion{
			{Kind: cloud.CriterionInstalmentDue, From: cloud.NewDate(2025, 3, 1), To: cloud.NewDate(2025, 3, 10)}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			def := cloud.TargetDefinition{Criteria: tc.criteria, DateMode: tc.mode, ReferenceDate: tc.ref}
			if err := def.Validate(); err != nil && tc.name != "tags_any_hostile" {
				t.Fatalf("criteria do not validate: %v", err)
			}
			day := today
			if !tc.today.IsZero() {
				day = tc.today
			}
			where, args, err := buildTargetWhere(targetEval{tenantID: 7, today: day, loc: rome, shift: def.Shift(day)}, def.Criteria)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(where, "DROP") || strings.Contains(where, "yoga") {
				t.Errorf("a value leaked into the SQL text:\n%s", where)
			}
			got := render(where, args)
			path := filepath.Join("testdata", "targetsql", tc.name+".golden")
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("%s differs from the golden file:\n--- got\n%s\n--- want\n%s", tc.name, got, want)
			}
		})
	}
}

// render prints the condition and its parameters, a date per line as a
// date and an instant with its zone offset.
func render(where string, args []any) string {
	var b strings.Builder
	b.WriteString("-- where\n")
	b.WriteString(where)
	b.WriteString("\n-- args\n")
	for i, a := range args {
		var v string
		switch x := a.(type) {
		case time.Time:
			if x.Location() == time.UTC && x.Hour() == 0 && x.Minute() == 0 {
				v = "date " + x.Format(time.DateOnly)
			} else {
				v = "timestamptz " + x.Format(time.RFC3339)
			}
		default:
			v = fmt.Sprintf("%T %v", a, a)
		}
		fmt.Fprintf(&b, "$%d = %s\n", i+1, v)
	}
	return b.String()
}
