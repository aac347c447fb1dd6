package cloud_test

import (
	"testing"
	"time"

	"varco.dev/cloud"
)

// TestNextRun runs daily and single operations across the DST changes of
// Europe/Rome in 2025: clocks go forward on 30 March at 02:00 (to 03:00)
// and back on 26 October at 03:00 (to 02:00).
func TestNextRun(t *testing.T) {
	t.Parallel()
	utc := func(mo time.Month, d, h, mi int) time.Time { return time.Date(2025, mo, d, h, mi, 0, 0, time.UTC) }
	daily := func(at string) cloud.Timing {
		return cloud.Timing{Recurrence: cloud.RecurDaily, SendTime: at, Timezone: "Europe/Rome", StartsOn: cloud.NewDate(2025, 1, 1)}
	}
	tests := []struct {
		name   string
		now    time.Time
		timing cloud.Timing
		want   time.Time // zero: no next run
		day    string
	}{
		{"winter, later today", utc(3, 4, 6, 0), daily("09:00"), utc(3, 4, 8, 0), "2025-03-04"},
		{"winter, just past: tomorrow", utc(3, 4, 8, 0), daily("09:00"), utc(3, 5, 8, 0), "2025-03-05"},
		{"the day before spring forward", utc(3, 29, 9, 0), daily("09:00"), utc(3, 30, 7, 0), "2025-03-30"},
		{"spring forward day, 09:00 is CEST", utc(3, 30, 6, 0), daily("09:00"), utc(3, 30, 7, 0), "2025-03-30"},
		{"spring forward: 02:30 does not exist, runs at 03:00 CEST", utc(3, 29, 23, 0), daily("02:30"), utc(3, 30, 1, 0), "2025-03-30"},
		{"spring forward: 02:00 does not exist either", utc(3, 29, 23, 0), daily("02:00"), utc(3, 30, 1, 0), "2025-03-30"},
		{"after the gap: next day 02:30 CEST", utc(3, 30, 1, 0), daily("02:30"), utc(3, 31, 0, 30), "2025-03-31"},
		{"spring forward: 01:59 still CET", utc(3, 29, 23, 0), daily("01:59"), utc(3, 30, 0, 59), "2025-03-30"},
		{"spring forward: 03:00 CEST", utc(3, 29, 23, 0), daily("03:00"), utc(3, 30, 1, 0), "2025-03-30"},
		{"fall back: 02:30 exists twice, runs at the first", utc(10, 25, 23, 0), daily("02:30"), utc(10, 26, 0, 30), "2025-10-26"},
		{"fall back: once only, not again at the second", utc(10, 26, 0, 30), daily("02:30"), utc(10, 27, 1, 30), "2025-10-27"},
		{"fall back day, 09:00 is CET", utc(10, 26, 6, 0), daily("09:00"), utc(10, 26, 8, 0), "2025-10-26"},
		{"the day before fall back, 09:00 is CEST", utc(10, 25, 6, 0), daily("09:00"), utc(10, 25, 7, 0), "2025-10-25"},
		{"midnight run", utc(3, 4, 22, 59), daily("00:00"), utc(3, 4, 23, 0), "2025-03-05"},
		{"late evening in Rome is the next UTC day? no: same local day", utc(3, 4, 21, 0), daily("23:30"), utc(3, 4, 22, 30), "2025-03-04"},
		{"not before the start date", utc(3, 4, 6, 0),
			cloud.Timing{Recurrence: cloud.RecurDaily, SendTime: "09:00", Timezone: "Europe/Rome", StartsOn: cloud.NewDate(2025, 3, 10)}, utc(3, 10, 8, 0), "2025-03-10"},
		{"past the end date", utc(3, 4, 9, 0),
			cloud.Timing{Recurrence: cloud.RecurDaily, SendTime: "09:00", Timezone: "Europe/Rome", StartsOn: cloud.NewDate(2025, 1, 1), EndsOn: cloud.NewDate(2025, 3, 4)}, time.Time{}, ""},
		{"on the end date", utc(3, 4, 6, 0),
			cloud.Timing{Recurrence: cloud.RecurDaily, SendTime: "09:00", Timezone: "Europe/Rome", StartsOn: cloud.NewDate(2025, 1, 1), EndsOn: cloud.NewDate(2025, 3, 4)}, utc(3, 4, 8, 0), "2025-03-04"},
		{"single, ahead", utc(3, 4, 6, 0),
			cloud.Timing{Recurrence: cloud.RecurOnce, SendTime: "02:30", Timezone: "Europe/Rome", StartsOn: cloud.NewDate(2025, 3, 30)}, utc(3, 30, 1, 0), "2025-03-30"},
		{"single, past", utc(3, 30, 1, 0),
			cloud.Timing{Recurrence: cloud.RecurOnce, SendTime: "02:30", Timezone: "Europe/Rome", StartsOn: cloud.NewDate(2025, 3, 30)}, time.Time{}, ""},
		{"another zone", utc(3, 4, 6, 0),
			cloud.Timing{Recurrence: cloud.RecurDaily, SendTime: "09:00", Timezone: "America/New_York", StartsOn: cloud.NewDate(2025, 1, 1)}, utc(3, 4, 14, 0), "2025-03-04"},
		{"bad zone", utc(3, 4, 6, 0),
			cloud.Timing{Recurrence: cloud.RecurDaily, SendTime: "09:00", Timezone: "Mars/Olympus", StartsOn: cloud.NewDate(2025, 1, 1)}, time.Time{}, ""},
	}
	for _, tc := range tests {
		at, day, ok := cloud.NextRun(tc.now, tc.timing)
		if ok != !tc.want.IsZero() || !at.Equal(tc.want) || day.String() != tc.day {
			t.Errorf("%s: NextRun(%s) = %s %s %v, want %s %s", tc.name, tc.now.Format(time.RFC3339), at.UTC().Format(time.RFC3339), day, ok,
				tc.want.Format(time.RFC3339), tc.day)
		}
	}
}

// TestNextRunEveryDayOfTheYear walks a daily 02:30 operation through 2025
// in Rome: one run per local day, in order, each at 02:30 local time
// except on the day the clocks skip it.
func TestNextRunEveryDayOfTheYear(t *testing.T) {
	t.Parallel()
	rome, _ := time.LoadLocation("Europe/Rome")
	tm := cloud.Timing{Recurrence: cloud.RecurDaily, SendTime: "02:30", Timezone: "Europe/Rome", StartsOn: cloud.NewDate(2025, 1, 1)}
	now := time.Date(2024, 12, 31, 12, 0, 0, 0, time.UTC)
	want := cloud.NewDate(2025, 1, 1)
	for range 365 {
		at, day, ok := cloud.NextRun(now, tm)
		if !ok || day != want {
			t.Fatalf("after %s: %s %s %v, want day %s", now, at, day, ok, want)
		}
		l := at.In(rome)
		if want == cloud.NewDate(2025, 3, 30) {
			if l.Hour() != 3 || l.Minute() != 0 {
				t.Errorf("spring forward day ran at %s", l)
			}
		} else if l.Hour() != 2 || l.Minute() != 30 || cloud.DateOf(l) != day {
			t.Errorf("%s ran at %s", day, l)
		}
		now, want = at, want.AddDays(1)
	}
}

func TestScheduleValidate(t *testing.T) {
	t.Parallel()
	tmpl, typ, days := int64(1), int64(2), 0
	ok := func() cloud.Schedule {
		return cloud.Schedule{Name: "x", TargetID: 1, Active: true,
			Timing: cloud.Timing{Recurrence: cloud.RecurDaily, SendTime: "09:00", Timezone: "Europe/Rome", StartsOn: cloud.NewDate(2025, 3, 4)},
			Body:   cloud.ScheduleBody{Kind: cloud.BodyCommunication, TemplateID: &tmpl, Channel: cloud.DeliverySMS, Purpose: cloud.PurposeService}}
	}
	tests := []struct {
		name  string
		edit  func(s *cloud.Schedule)
		field string
	}{
		{"valid communication", func(s *cloud.Schedule) {}, ""},
		{"valid actions", func(s *cloud.Schedule) {
			s.Body = cloud.ScheduleBody{Kind: cloud.BodyActions, ActionTypeID: &typ, ActionText: "see reception", CompleteDays: &days}
		}, ""},
		{"inactive without template", func(s *cloud.Schedule) { s.Active = false; s.Body.TemplateID = nil }, ""},
		{"active without template", func(s *cloud.Schedule) { s.Body.TemplateID = nil }, "body.template_id"},
		{"no name", func(s *cloud.Schedule) { s.Name = " " }, "name"},
		{"no target", func(s *cloud.Schedule) { s.TargetID = 0 }, "target_id"},
		{"bad recurrence", func(s *cloud.Schedule) { s.Recurrence = "weekly" }, "recurrence"},
		{"bad time", func(s *cloud.Schedule) { s.SendTime = "24:00" }, "send_time"},
		{"bad time format", func(s *cloud.Schedule) { s.SendTime = "9:00" }, "send_time"},
		{"bad zone", func(s *cloud.Schedule) { s.Timezone = "Europe/Atlantis" }, "timezone"},
		{"no start", func(s *cloud.Schedule) { s.StartsOn = cloud.Date{} }, "starts_on"},
		{"end before start", func(s *cloud.Schedule) { s.EndsOn = cloud.NewDate(2025, 3, 3) }, "ends_on"},
		{"single with end", func(s *cloud.Schedule) { s.Recurrence = cloud.RecurOnce; s.EndsOn = cloud.NewDate(2025, 3, 5) }, "ends_on"},
		{"bad body kind", func(s *cloud.Schedule) { s.Body.Kind = "fax" }, "body.kind"},
		{"no purpose", func(s *cloud.Schedule) { s.Body.Purpose = "" }, "body.purpose"},
		{"bad channel", func(s *cloud.Schedule) { s.Body.Channel = "pigeon" }, "body.channel"},
		{"push, or an SMS without the app", func(s *cloud.Schedule) { s.Body.Channel = cloud.DeliveryPushOrSMS }, ""},
		{"mixed body", func(s *cloud.Schedule) { s.Body.ActionTypeID = &typ }, "body.kind"},
		{"actions without type", func(s *cloud.Schedule) { s.Body = cloud.ScheduleBody{Kind: cloud.BodyActions} }, "body.action_type_id"},
		{"actions negative days", func(s *cloud.Schedule) {
			d := -1
			s.Body = cloud.ScheduleBody{Kind: cloud.BodyActions, ActionTypeID: &typ, CompleteDays: &d}
		}, "body.complete_days"},
	}
	for _, tc := range tests {
		s := ok()
		tc.edit(&s)
		err := s.Validate()
		if tc.field == "" && err != nil {
			t.Errorf("%s: %v", tc.name, err)
		} else if tc.field != "" && (cloud.ErrorCode(err) != cloud.EINVALID || cloud.ErrorField(err) != tc.field) {
			t.Errorf("%s: %v, want EINVALID on %s", tc.name, err, tc.field)
		}
	}
}

func TestRecipesAreValid(t *testing.T) {
	t.Parallel()
	for _, r := range cloud.Recipes() {
		tg := r.Target
		if err := tg.Validate(); err != nil {
			t.Errorf("%s: target: %v", r.Key, err)
		}
		s := cloud.Schedule{Name: r.Name, TargetID: 1, Body: r.Body,
			Timing: cloud.Timing{Recurrence: cloud.RecurDaily, SendTime: r.SendTime, Timezone: cloud.DefaultTimezone, StartsOn: cloud.NewDate(2025, 1, 1)}}
		if r.Body.Kind == cloud.BodyActions {
			id := int64(1)
			s.Body.ActionTypeID = &id
		}
		if err := s.Validate(); err != nil {
			t.Errorf("%s: %v", r.Key, err)
		}
	}
	if got := cloud.DedupKey(42, cloud.NewDate(2025, 3, 4)); got != "op:42:2025-03-04" {
		t.Errorf("dedup key %q", got)
	}
}
