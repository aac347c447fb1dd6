package cloud

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Recurrence says how often a scheduled operation runs.
type Recurrence string

// Recurrences.
const (
	RecurOnce  Recurrence = "once"  // on StartsOn only
	RecurDaily Recurrence = "daily" // every day from StartsOn until EndsOn (or for ever)
)

// BodyKind says what a scheduled operation does for its target.
type BodyKind string

// Body kinds.
const (
	BodyCommunication BodyKind = "communication" // send a template over a channel
	BodyActions       BodyKind = "actions"       // create a CRM action for each member
)

var sendTimeRE = regexp.MustCompile(`^([01][0-9]|2[0-3]):[0-5][0-9]$`)

// Timing is when a scheduled operation runs: at SendTime ("HH:MM", wall
// clock in Timezone) on StartsOn, or every day from StartsOn to EndsOn.
type Timing struct {
	Recurrence Recurrence `json:"recurrence"`
	SendTime   string     `json:"send_time"`
	Timezone   string     `json:"timezone"`
	StartsOn   Date       `json:"starts_on"`
	EndsOn     Date       `json:"ends_on"`
}

// Validate checks a timing.
func (t *Timing) Validate() error {
	if t.Recurrence != RecurOnce && t.Recurrence != RecurDaily {
		return Invalid("recurrence", "Recurrence must be once or daily.")
	}
	if !sendTimeRE.MatchString(t.SendTime) {
		return Invalid("send_time", "Send time must be HH:MM, 00:00 to 23:59.")
	}
	if _, err := time.LoadLocation(t.Timezone); err != nil || t.Timezone == "" {
		return Invalid("timezone", "Unknown time zone %q.", t.Timezone)
	}
	if t.StartsOn.IsZero() {
		return Invalid("starts_on", "A start date is required.")
	}
	if !t.EndsOn.IsZero() && t.EndsOn.Before(t.StartsOn) {
		return Invalid("ends_on", "The end date must not be before the start date.")
	}
	if t.Recurrence == RecurOnce && !t.EndsOn.IsZero() {
		return Invalid("ends_on", "An operation run once has no end date.")
	}
	return nil
}

// at returns the instant of SendTime on day d in loc. A wall time that
// does not exist that day (the hour skipped when clocks go forward) runs at
// the end of the gap; one that exists twice (the hour repeated when clocks
// go back) runs at its first occurrence.
func (t *Timing) at(d Date, loc *time.Location) time.Time {
	var hh, mm int
	_, _ = fmt.Sscanf(t.SendTime, "%d:%d", &hh, &mm)
	y, mo, dd := d.Time().Date()
	wall := time.Date(y, mo, dd, hh, mm, 0, 0, time.UTC) // the wall clock, as if it were UTC
	// Try the offsets in force around that day: each gives a candidate
	// instant; a candidate is right when loc shows the wall clock at it.
	var best time.Time
	for _, probe := range []time.Time{wall.Add(-36 * time.Hour), wall.Add(36 * time.Hour)} {
		_, off := probe.In(loc).Zone()
		c := wall.Add(-time.Duration(off) * time.Second)
		if lc := c.In(loc); lc.Hour() == hh && lc.Minute() == mm && lc.Day() == dd && (best.IsZero() || c.Before(best)) {
			best = c
		}
	}
	if !best.IsZero() {
		return best
	}
	// In a gap: the candidate with the offset before the jump lands after
	// it; the gap ends where the zone of that instant starts.
	_, off := wall.Add(-36 * time.Hour).In(loc).Zone()
	start, _ := wall.Add(-time.Duration(off) * time.Second).In(loc).ZoneBounds()
	return start
}

// NextRun returns the first run of t strictly after now, and its run day
// (the date in t's time zone); ok is false when there is none (a single
// run that is past, or a recurrence past its end).
func NextRun(now time.Time, t Timing) (at time.Time, day Date, ok bool) {
	loc, err := time.LoadLocation(t.Timezone)
	if err != nil {
		return time.Time{}, Date{}, false
	}
	d := DateOf(now.In(loc)).AddDays(-1) // yesterday's run may still be ahead in a gap or repeated hour
	if d.Before(t.StartsOn) {
		d = t.StartsOn
	}
	for range 4 {
		if t.Recurrence == RecurOnce && d != t.StartsOn {
			return time.Time{}, Date{}, false
		}
		if !t.EndsOn.IsZero() && d.After(t.EndsOn) {
			return time.Time{}, Date{}, false
		}
		if a := t.at(d, loc); a.After(now) {
			return a, d, true
		}
		d = d.AddDays(1)
	}
	return time.Time{}, Date{}, false
}

// ScheduleBody is what an operation does: send a communication (a
// template, a channel and the GDPR purpose checked against each member's
// consent) or create a CRM action for each member (a type, a text for the
// operators, and the days they have to complete it).
type ScheduleBody struct {
	Kind BodyKind `json:"kind"`
	// Communication.
	TemplateID *int64 `json:"template_id,omitempty"`
	// Channel is how the template goes out: email, sms, push, or
	// push_or_sms (push, and the template's SMS text to members without
	// the app).
	Channel Delivery `json:"channel,omitempty"`
	Purpose Purpose  `json:"purpose,omitempty"`
	// Actions.
	ActionTypeID *int64 `json:"action_type_id,omitempty"`
	ActionText   string `json:"action_text,omitempty"`
	CompleteDays *int   `json:"complete_days,omitempty"` // complete-by = run day + days; nil: no date
}

// Validate checks a body; active operations must be complete.
func (b *ScheduleBody) Validate(active bool) error {
	b.ActionText = strings.TrimSpace(b.ActionText)
	switch b.Kind {
	case BodyCommunication:
		if b.ActionTypeID != nil || b.ActionText != "" || b.CompleteDays != nil {
			return Invalid("body.kind", "A communication has no action_type_id, action_text or complete_days.")
		}
		switch b.Channel {
		case DeliveryEmail, DeliverySMS, DeliveryPush, DeliveryPushOrSMS:
		default:
			return Invalid("body.channel", "Channel must be sms, email, push or push_or_sms.")
		}
		if !b.Purpose.Valid() {
			return Invalid("body.purpose", "A GDPR purpose is required: one of service, marketing, profiling, third_party, health.")
		}
		if b.TemplateID != nil && *b.TemplateID <= 0 {
			return Invalid("body.template_id", "Template not found.")
		}
		if active && b.TemplateID == nil {
			return Invalid("body.template_id", "An active communication needs a template.")
		}
	case BodyActions:
		if b.TemplateID != nil || b.Channel != "" || b.Purpose != "" {
			return Invalid("body.kind", "CRM actions have no template_id, channel or purpose.")
		}
		if b.ActionTypeID == nil || *b.ActionTypeID <= 0 {
			return Invalid("body.action_type_id", "An action type is required.")
		}
		if len(b.ActionText) > 4000 {
			return Invalid("body.action_text", "The text is at most 4000 characters.")
		}
		if b.CompleteDays != nil && (*b.CompleteDays < 0 || *b.CompleteDays > 365) {
			return Invalid("body.complete_days", "Days to complete must be from 0 to 365.")
		}
	default:
		return Invalid("body.kind", "Body kind must be communication or actions.")
	}
	return nil
}

// Schedule is a scheduled operation.
type Schedule struct {
	ID       int64  `json:"id"`
	TenantID int64  `json:"-"`
	Name     string `json:"name"`
	Active   bool   `json:"active"`
	// SenderID is the operator the runs act as: the communications' sender
	// and the creator of the CRM actions.
	SenderID int64 `json:"sender_id"`
	Timing
	TargetID int64        `json:"target_id"`
	Body     ScheduleBody `json:"body"`
	// Recipe names the seeded recipe the operation came from, if any.
	Recipe    string     `json:"recipe,omitempty"`
	NextRunAt *time.Time `json:"next_run_at"`
	Version   int        `json:"version"`
	CreatedAt time.Time  `json:"created_at"`
	UpdatedAt time.Time  `json:"updated_at"`
}

// RowVersion implements Versioned.
func (s *Schedule) RowVersion() int { return s.Version }

// Validate checks a scheduled operation; the store checks its references.
func (s *Schedule) Validate() error {
	s.Name = strings.TrimSpace(s.Name)
	if s.Name == "" || len(s.Name) > 120 {
		return Invalid("name", "Name is required, at most 120 characters.")
	}
	if s.TargetID <= 0 {
		return Invalid("target_id", "A target is required.")
	}
	if err := s.Timing.Validate(); err != nil {
		return err
	}
	return s.Body.Validate(s.Active)
}

// ScheduleUpdate holds the fields of a scheduled operation that can change.
type ScheduleUpdate struct {
	Name       *string        `json:"name"`
	Active     *bool          `json:"active"`
	SenderID   *int64         `json:"sender_id"`
	Recurrence *Recurrence    `json:"recurrence"`
	SendTime   *string        `json:"send_time"`
	Timezone   *string        `json:"timezone"`
	StartsOn   *Date          `json:"starts_on"`
	EndsOn     Optional[Date] `json:"ends_on,omitzero"`
	TargetID   *int64         `json:"target_id"`
	Body       *ScheduleBody  `json:"body"`
}

// Apply copies the set fields of u onto s.
func (u *ScheduleUpdate) Apply(s *Schedule) {
	if u.Name != nil {
		s.Name = *u.Name
	}
	if u.Active != nil {
		s.Active = *u.Active
	}
	if u.SenderID != nil {
		s.SenderID = *u.SenderID
	}
	if u.Recurrence != nil {
		s.Recurrence = *u.Recurrence
	}
	if u.SendTime != nil {
		s.SendTime = *u.SendTime
	}
	if u.Timezone != nil {
		s.Timezone = *u.Timezone
	}
	if u.StartsOn != nil {
		s.StartsOn = *u.StartsOn
	}
	u.EndsOn.ApplyValue(&s.EndsOn)
	if u.TargetID != nil {
		s.TargetID = *u.TargetID
	}
	if u.Body != nil {
		s.Body = *u.Body
	}
}

// RunStatus is where a run of a scheduled operation stands.
type RunStatus string

// Run statuses.
const (
	RunRunning RunStatus = "running" // started; a retry or another replica resumes it
	RunDone    RunStatus = "done"
	RunFailed  RunStatus = "failed" // the last attempt failed (Error); a retry may still succeed
	RunMissed  RunStatus = "missed" // the scheduler was down for the whole run day
)

// ScheduleRun is one run of a scheduled operation on one day: who it acted
// as, what it did, and what came of it.
type ScheduleRun struct {
	ID         int64        `json:"id"`
	ScheduleID int64        `json:"schedule_id"`
	Day        Date         `json:"day"`
	Status     RunStatus    `json:"status"`
	SenderID   int64        `json:"sender_id"`
	TargetID   int64        `json:"target_id"`
	Body       ScheduleBody `json:"body"`
	Members    int          `json:"members"` // in the target that day
	Created    int          `json:"created"` // CRM actions created
	// Sent, Skipped and Failed count a communication's messages under the
	// run's DedupKey, whatever attempt stored them (a member's message still
	// pending, left by a stopped replica, is in none of them yet).
	Sent    int `json:"sent"`
	Skipped int `json:"skipped"`
	Failed  int `json:"failed"`
	// SkippedReasons counts the skipped members by reason: the CRM
	// actions' reason, or the messages' skip reasons.
	SkippedReasons map[string]int `json:"skipped_reasons"`
	Error          string         `json:"error"`
	Attempts       int            `json:"attempts"`
	StartedAt      time.Time      `json:"started_at"`
	FinishedAt     *time.Time     `json:"finished_at"`
}

// SkipOpenAction is why a member gets no new action: one of the same type
// is still open (yesterday's block, not resolved yet).
const SkipOpenAction = "an open action of this type exists"

// ScheduleFilter selects scheduled operations by ID.
type ScheduleFilter struct {
	Active *bool
	Cursor int64
	Limit  int
}

// ScheduleService manages scheduled operations. Every operator may read
// them and their runs; changes need the admin or crm_manager role. The
// first listing seeds the tenant's recipes (disabled) if it has none yet.
type ScheduleService interface {
	// CreateSchedule returns EINVALID when the target is not usable in
	// scheduled operations or the sender is not an active operator.
	CreateSchedule(ctx context.Context, s *Schedule) error
	FindScheduleByID(ctx context.Context, id int64) (*Schedule, error)
	FindSchedules(ctx context.Context, f ScheduleFilter) ([]*Schedule, error)
	// UpdateSchedule returns EPRECONDITION when version is stale.
	UpdateSchedule(ctx context.Context, id int64, version int, upd ScheduleUpdate) (*Schedule, error)
	// FindScheduleRuns lists the runs of an operation, latest day first;
	// before (a day) pages.
	FindScheduleRuns(ctx context.Context, id int64, before Date, limit int) ([]*ScheduleRun, error)
}

// CommunicationRequest asks to send a template to members. The
// communicator checks each member's consent for Channel and Purpose.
type CommunicationRequest struct {
	TenantID, OperatorID int64
	TemplateID           int64
	Channel              string
	Purpose              string
	MemberIDs            []int64
	// DedupKey names the sending: the communicator sends at most one
	// message per (DedupKey, member), whatever the retries.
	DedupKey string
}

// CommunicationResult counts what a communication did.
type CommunicationResult struct {
	Sent, Skipped, Failed int
}

// Communicator sends communications; scheduled operations call it. An
// error means the request may be retried with the same DedupKey.
type Communicator interface {
	Communicate(ctx context.Context, req CommunicationRequest) (CommunicationResult, error)
}

// ErrNoCommunicator is the error of a run that has messages to send when
// no Communicator is wired: the run is recorded as failed, not retried.
var ErrNoCommunicator = Errorf(EINTERNAL, "No communicator is configured: this operation's messages cannot be sent.")

// ScheduleDedupPrefix starts the dedup keys of scheduled operations' runs,
// which direct sends may not use.
const ScheduleDedupPrefix = "op:"

// DedupKey is the communication dedup key of an operation's run on day
// (the store's run history computes it in SQL as well).
func DedupKey(scheduleID int64, day Date) string {
	return fmt.Sprintf("%s%d:%s", ScheduleDedupPrefix, scheduleID, day)
}

// Recipe is a scheduled operation the club software teaches, seeded
// disabled for every tenant with its target.
type Recipe struct {
	Key      string
	Name     string
	Target   Target
	SendTime string
	Body     ScheduleBody
	// ActionType names the action type of an actions body, from the
	// default CRM configuration.
	ActionType string
}

// Recipes returns the seeded recipes. Communications have no template yet:
// the club picks one before activating them.
func Recipes() []Recipe {
	days := func(n int) *int { return &n }
	comm := func(ch Delivery, p Purpose) ScheduleBody {
		return ScheduleBody{Kind: BodyCommunication, Channel: ch, Purpose: p}
	}
	target := func(name, desc string, cs ...Criterion) Target {
		return Target{Name: name, Description: desc, Schedulable: true, TargetDefinition: TargetDefinition{Criteria: cs, DateMode: DateNone}}
	}
	return []Recipe{
		{Key: "membership_ending_15d", Name: "Membership ending in 15 days", SendTime: "10:00", Body: comm(DeliverySMS, PurposeService),
			Target: target("Membership ending in 15 days", "Members whose membership ends in 15 days and who have not renewed.",
				Criterion{Kind: CriterionMembershipEnding, Days: days(15)})},
		{Key: "instalment_due_5d", Name: "Instalment due in 5 days", SendTime: "10:00", Body: comm(DeliverySMS, PurposeService),
			Target: target("Instalment due in 5 days", "Members with an unpaid instalment due in 5 days.",
				Criterion{Kind: CriterionInstalmentDue, Days: days(5)})},
		{Key: "medical_cert_expiring", Name: "Medical certificate expiring", SendTime: "10:00", Body: comm(DeliveryEmail, PurposeHealthCheck),
			Target: target("Medical certificate expiring in 15 days", "Members whose medical certificate expires in 15 days.",
				Criterion{Kind: CriterionMedicalCert, State: CertExpiring, Days: days(15)})},
		{Key: "not_attending_30d", Name: "Not attending for 30 days", SendTime: "11:00", Body: comm(DeliverySMS, PurposeService),
			Target: target("Not attending for 30 days", "Members with a valid membership and no passage for 30 days.",
				Criterion{Kind: CriterionNotAttending, Days: days(30)}, Criterion{Kind: CriterionMembershipActive})},
		{Key: "appointment_tomorrow", Name: "Appointment reminder for tomorrow", SendTime: "18:00", Body: comm(DeliverySMS, PurposeService),
			Target: target("Appointments tomorrow", "Members with an appointment tomorrow.",
				Criterion{Kind: CriterionBooking, Days: days(1), BookingKind: BookingAppointment})},
		{Key: "welcome_yesterday", Name: "Welcome to members registered yesterday", SendTime: "10:00", Body: comm(DeliveryEmail, PurposeService),
			Target: target("Registered yesterday", "Members registered yesterday.",
				Criterion{Kind: CriterionRegistered, Days: days(-1)})},
		{Key: "block_medical_cert", Name: "Daily block: medical certificate missing or expired", SendTime: "05:00",
			ActionType: "Reception check",
			Body: ScheduleBody{Kind: BodyActions, ActionText: "Medical certificate missing or expired: bring a valid one to reception.",
				CompleteDays: days(0)},
			Target: target("Medical certificate missing or expired", "Members with a valid membership whose medical certificate is missing or expired.",
				Criterion{Kind: CriterionMedicalCert, State: CertMissingOrExpired}, Criterion{Kind: CriterionMembershipActive})},
	}
}
