package cloud

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// DefaultTimezone is the time zone of a tenant that has no site yet. A
// tenant's "today" (the run day of its targets and scheduled operations)
// is the date in the time zone of its first site.
const DefaultTimezone = "Europe/Rome"

// CriterionKind is what a target criterion looks at.
type CriterionKind string

// Criterion kinds. A window is a range of days, relative to the run day
// (days, days_to) or absolute (from, to); see Criterion.
const (
	// CriterionMembershipEnding matches members whose membership ends in
	// the window and who have no membership ending later (not renewed).
	CriterionMembershipEnding CriterionKind = "membership_ending"
	// CriterionMembershipActive matches members with a membership valid on the run day.
	CriterionMembershipActive CriterionKind = "membership_active"
	// CriterionInstalmentDue matches members with an unpaid, not cancelled
	// instalment due in the window (negative days: overdue).
	CriterionInstalmentDue CriterionKind = "instalment_due"
	// CriterionMedicalCert matches on the medical certificate: state
	// "expiring" (expiry in the window), "expired" (before the run day),
	// "missing", or "missing_or_expired".
	CriterionMedicalCert CriterionKind = "medical_cert"
	// CriterionNotAttending matches members with no passage since the start
	// of the day `days` days before the run day; a member who never came
	// counts from their registration.
	CriterionNotAttending CriterionKind = "not_attending"
	// CriterionBooking matches members with a booking (still booked)
	// starting in the window, of booking_kind if given.
	CriterionBooking CriterionKind = "booking"
	// CriterionRegistered matches members registered in the window.
	CriterionRegistered CriterionKind = "registered"
	// CriterionBirthday matches members whose birthday falls in the window
	// (29 February birthdays on 28 February in common years).
	CriterionBirthday CriterionKind = "birthday"
	// CriterionCommercialStatus matches members in one of status_ids.
	CriterionCommercialStatus CriterionKind = "commercial_status"
	// CriterionTags matches members with any (match "any", the default) or
	// all (match "all") of tags.
	CriterionTags CriterionKind = "tags"
	// CriterionConsent matches members who granted channel for purpose.
	CriterionConsent CriterionKind = "consent"
	// CriterionCRMHistory matches members with a closed action of
	// action_type_id (and outcome_id, if given) completed in the window
	// (any time when there is no window).
	CriterionCRMHistory CriterionKind = "crm_history"
)

// Medical certificate states of CriterionMedicalCert.
const (
	CertExpiring         = "expiring"
	CertExpired          = "expired"
	CertMissing          = "missing"
	CertMissingOrExpired = "missing_or_expired"
)

// MaxCriteria bounds the criteria of one target; MaxWindowDays the days a
// relative window may reach from the run day (ten years).
const (
	MaxCriteria   = 20
	MaxWindowDays = 3660
)

// Criterion is one condition of a target; a target matches the members who
// meet all of its criteria (AND), each possibly negated (Not).
//
// Date windows are inclusive ranges of days. Relative ones count from the
// run day: days 0 is the run day, 1 tomorrow, -1 yesterday; days_to makes
// a range (days 0, days_to 30: the next 30 days). Absolute ones are from
// (and to, default from); a target's DateMode says what happens to them on
// later runs. A criterion carries only the fields its kind uses.
type Criterion struct {
	Kind CriterionKind `json:"kind"`
	Not  bool          `json:"not,omitempty"`

	Days   *int `json:"days,omitempty"`
	DaysTo *int `json:"days_to,omitempty"`
	From   Date `json:"from,omitzero"`
	To     Date `json:"to,omitzero"`

	State       string      `json:"state,omitempty"`        // medical_cert
	BookingKind BookingKind `json:"booking_kind,omitempty"` // booking
	StatusIDs   []int64     `json:"status_ids,omitempty"`   // commercial_status
	Tags        []string    `json:"tags,omitempty"`         // tags
	Match       string      `json:"match,omitempty"`        // tags: any, all
	Channel     Channel     `json:"channel,omitempty"`      // consent
	Purpose     Purpose     `json:"purpose,omitempty"`      // consent
	TypeID      int64       `json:"action_type_id,omitempty"`
	OutcomeID   int64       `json:"outcome_id,omitempty"`
}

// criterionFields lists, per kind, the optional fields it uses; "window"
// stands for days, days_to, from and to.
var criterionFields = map[CriterionKind][]string{
	CriterionMembershipEnding: {"window"},
	CriterionMembershipActive: {},
	CriterionInstalmentDue:    {"window"},
	CriterionMedicalCert:      {"window", "state"},
	CriterionNotAttending:     {"days"},
	CriterionBooking:          {"window", "booking_kind"},
	CriterionRegistered:       {"window"},
	CriterionBirthday:         {"window"},
	CriterionCommercialStatus: {"status_ids"},
	CriterionTags:             {"tags", "match"},
	CriterionConsent:          {"channel", "purpose"},
	CriterionCRMHistory:       {"window", "action_type_id", "outcome_id"},
}

// CriterionKinds lists the known kinds, in documentation order.
var CriterionKinds = []CriterionKind{CriterionMembershipEnding, CriterionMembershipActive, CriterionInstalmentDue,
	CriterionMedicalCert, CriterionNotAttending, CriterionBooking, CriterionRegistered, CriterionBirthday,
	CriterionCommercialStatus, CriterionTags, CriterionConsent, CriterionCRMHistory}

// set returns the optional fields of c that are given, by JSON name.
func (c *Criterion) set() []string {
	var s []string
	add := func(name string, given bool) {
		if given {
			s = append(s, name)
		}
	}
	add("days", c.Days != nil)
	add("days_to", c.DaysTo != nil)
	add("from", !c.From.IsZero())
	add("to", !c.To.IsZero())
	add("state", c.State != "")
	add("booking_kind", c.BookingKind != "")
	add("status_ids", c.StatusIDs != nil)
	add("tags", c.Tags != nil)
	add("match", c.Match != "")
	add("channel", c.Channel != "")
	add("purpose", c.Purpose != "")
	add("action_type_id", c.TypeID != 0)
	add("outcome_id", c.OutcomeID != 0)
	return s
}

// HasDates reports whether c holds absolute dates.
func (c *Criterion) HasDates() bool { return !c.From.IsZero() || !c.To.IsZero() }

// needsWindow reports whether c's kind cannot do without a window.
func (c *Criterion) needsWindow() bool {
	switch c.Kind {
	case CriterionMembershipEnding, CriterionInstalmentDue, CriterionBooking, CriterionRegistered, CriterionBirthday:
		return true
	case CriterionMedicalCert:
		return c.State == CertExpiring
	}
	return false
}

// Validate checks one criterion; field prefixes the names in errors
// ("criteria[2]"). mode is the target's date mode.
func (c *Criterion) Validate(field string, mode DateMode) error {
	f := func(name string) string { return field + "." + name }
	allowed, ok := criterionFields[c.Kind]
	if !ok {
		names := make([]string, len(CriterionKinds))
		for i, k := range CriterionKinds {
			names[i] = string(k)
		}
		return Invalid(f("kind"), "Unknown criterion kind %q: use one of %s.", c.Kind, strings.Join(names, ", "))
	}
	for _, name := range c.set() {
		use := name
		switch name {
		case "days", "days_to", "from", "to":
			if c.Kind != CriterionNotAttending || name != "days" {
				use = "window"
			}
		}
		if !slices.Contains(allowed, use) {
			return Invalid(f(name), "A %s criterion has no %s.", c.Kind, name)
		}
	}
	relative := c.Days != nil || c.DaysTo != nil
	if c.Kind == CriterionNotAttending {
		if c.Days == nil || *c.Days < 1 || *c.Days > MaxWindowDays {
			return Invalid(f("days"), "Give the days without a passage, from 1 to %d.", MaxWindowDays)
		}
		return nil
	}
	if slices.Contains(allowed, "window") {
		switch {
		case relative && c.HasDates():
			return Invalid(f("from"), "Give either days (relative to the run day) or from/to dates, not both.")
		case c.DaysTo != nil && c.Days == nil:
			return Invalid(f("days"), "days_to needs days (the start of the range).")
		case c.To.IsZero() != c.From.IsZero() && c.From.IsZero():
			return Invalid(f("from"), "to needs from (the start of the range).")
		case c.Days != nil && (*c.Days < -MaxWindowDays || *c.Days > MaxWindowDays):
			return Invalid(f("days"), "days must be between %d and %d.", -MaxWindowDays, MaxWindowDays)
		case c.DaysTo != nil && (*c.DaysTo < *c.Days || *c.DaysTo > MaxWindowDays):
			return Invalid(f("days_to"), "days_to must be between days and %d.", MaxWindowDays)
		case !c.To.IsZero() && c.To.Before(c.From):
			return Invalid(f("to"), "to must not be before from.")
		case c.HasDates() && mode == DateNone:
			return Invalid(f("from"), "The target's date mode is none: use days relative to the run day, or date mode fixed or rolling.")
		case c.needsWindow() && !relative && !c.HasDates():
			return Invalid(f("days"), "A %s criterion needs days (relative to the run day) or from/to dates.", c.Kind)
		}
		if c.Kind == CriterionBirthday {
			if lo, hi := c.window(NewDate(2000, 1, 1), 0); lo.DaysUntil(hi) > 366 {
				return Invalid(f("days_to"), "A birthday window is at most 366 days.")
			}
		}
	}
	switch c.Kind {
	case CriterionMedicalCert:
		switch c.State {
		case CertExpiring:
		case CertExpired, CertMissing, CertMissingOrExpired:
			if relative || c.HasDates() {
				return Invalid(f("days"), "Only state expiring takes a window.")
			}
		default:
			return Invalid(f("state"), "State must be expiring, expired, missing or missing_or_expired.")
		}
	case CriterionBooking:
		if c.BookingKind != "" && c.BookingKind != BookingClass && c.BookingKind != BookingAppointment {
			return Invalid(f("booking_kind"), "Booking kind must be class or appointment.")
		}
	case CriterionCommercialStatus:
		if len(c.StatusIDs) == 0 || len(c.StatusIDs) > 100 {
			return Invalid(f("status_ids"), "Give 1 to 100 commercial status IDs.")
		}
	case CriterionTags:
		if len(c.Tags) == 0 || len(c.Tags) > 50 {
			return Invalid(f("tags"), "Give 1 to 50 tags.")
		}
		for _, t := range c.Tags {
			if !tagRE.MatchString(t) {
				return Invalid(f("tags"), "Tag %q is not valid.", t)
			}
		}
		if c.Match != "" && c.Match != "any" && c.Match != "all" {
			return Invalid(f("match"), "Match must be any or all.")
		}
	case CriterionConsent:
		if c.Channel != ChannelSMS && c.Channel != ChannelEmail && c.Channel != ChannelPush {
			return Invalid(f("channel"), "Channel must be sms, email or push.")
		}
		if !c.Purpose.Valid() {
			return Invalid(f("purpose"), "Unknown GDPR purpose %q.", c.Purpose)
		}
	case CriterionCRMHistory:
		if c.TypeID <= 0 {
			return Invalid(f("action_type_id"), "An action type is required.")
		}
		if c.OutcomeID < 0 {
			return Invalid(f("outcome_id"), "Outcome not found.")
		}
	}
	return nil
}

// window returns the inclusive range of days c covers on run day today,
// with absolute dates moved by shift days (DateRolling).
func (c *Criterion) window(today Date, shift int) (lo, hi Date) {
	if c.Days != nil {
		lo = today.AddDays(*c.Days)
		hi = lo
		if c.DaysTo != nil {
			hi = today.AddDays(*c.DaysTo)
		}
		return lo, hi
	}
	lo, hi = c.From, c.To
	if hi.IsZero() {
		hi = lo
	}
	return lo.AddDays(shift), hi.AddDays(shift)
}

// Window returns the inclusive range of days c covers when its target is
// evaluated on today with absolute dates moved by shift days, and false
// when c has no window.
func (c *Criterion) Window(today Date, shift int) (lo, hi Date, ok bool) {
	if c.Kind == CriterionNotAttending || (c.Days == nil && c.From.IsZero()) {
		return Date{}, Date{}, false
	}
	lo, hi = c.window(today, shift)
	return lo, hi, true
}

// DateMode says what a saved target's absolute dates mean on later runs.
type DateMode string

// Date modes.
const (
	DateNone    DateMode = "none"    // no absolute dates: only days relative to the run day
	DateFixed   DateMode = "fixed"   // the chosen dates, whatever the run day
	DateRolling DateMode = "rolling" // the chosen intervals, moved by the days since the target was saved
)

// Valid reports whether m is a known date mode.
func (m DateMode) Valid() bool { return m == DateNone || m == DateFixed || m == DateRolling }

// TargetDefinition is what a target selects: criteria, date mode and the
// day its absolute dates were chosen on.
type TargetDefinition struct {
	Criteria []Criterion `json:"criteria"`
	DateMode DateMode    `json:"date_mode"`
	// ReferenceDate is the day the absolute dates were chosen (the day of
	// the last change of criteria or date mode). DateRolling moves every
	// date by the days from it to the run day.
	ReferenceDate Date `json:"reference_date"`
}

// Shift returns how many days the absolute dates move on run day today.
func (d *TargetDefinition) Shift(today Date) int {
	if d.DateMode != DateRolling || d.ReferenceDate.IsZero() {
		return 0
	}
	return d.ReferenceDate.DaysUntil(today)
}

// Validate checks the criteria. An empty date mode becomes fixed when a
// criterion holds dates and none otherwise.
func (d *TargetDefinition) Validate() error {
	if d.DateMode == "" {
		d.DateMode = DateNone
		if slices.ContainsFunc(d.Criteria, func(c Criterion) bool { return c.HasDates() }) {
			d.DateMode = DateFixed
		}
	}
	if !d.DateMode.Valid() {
		return Invalid("date_mode", "Date mode must be none, fixed or rolling.")
	}
	if len(d.Criteria) == 0 {
		return Invalid("criteria", "At least one criterion is required.")
	}
	if len(d.Criteria) > MaxCriteria {
		return Invalid("criteria", "At most %d criteria.", MaxCriteria)
	}
	for i := range d.Criteria {
		if err := d.Criteria[i].Validate(fmt.Sprintf("criteria[%d]", i), d.DateMode); err != nil {
			return err
		}
	}
	return nil
}

// Target is a saved member search.
type Target struct {
	ID          int64  `json:"id"`
	TenantID    int64  `json:"-"`
	Name        string `json:"name"`
	Description string `json:"description"`
	TargetDefinition
	// Schedulable: scheduled operations may use the target.
	Schedulable bool `json:"schedulable"`
	// InMenu: the console lists the target in its main menu.
	InMenu     bool       `json:"in_menu"`
	CreatedBy  *int64     `json:"created_by"`
	ArchivedAt *time.Time `json:"archived_at"`
	Version    int        `json:"version"`
	CreatedAt  time.Time  `json:"created_at"`
	UpdatedAt  time.Time  `json:"updated_at"`
}

// RowVersion implements Versioned.
func (t *Target) RowVersion() int { return t.Version }

// Validate checks a target; the store checks that referenced statuses,
// action types and outcomes are the tenant's.
func (t *Target) Validate() error {
	t.Name = strings.TrimSpace(t.Name)
	t.Description = strings.TrimSpace(t.Description)
	if t.Name == "" || len(t.Name) > 120 {
		return Invalid("name", "Name is required, at most 120 characters.")
	}
	if len(t.Description) > 2000 {
		return Invalid("description", "Description is at most 2000 characters.")
	}
	return t.TargetDefinition.Validate()
}

// TargetUpdate holds the fields of a target that can change.
type TargetUpdate struct {
	Name        *string      `json:"name"`
	Description *string      `json:"description"`
	Criteria    *[]Criterion `json:"criteria"`
	DateMode    *DateMode    `json:"date_mode"`
	Schedulable *bool        `json:"schedulable"`
	InMenu      *bool        `json:"in_menu"`
}

// Apply copies the set fields of u onto t. A change of criteria or date
// mode makes today the reference date of rolling dates.
func (u *TargetUpdate) Apply(t *Target, today Date) {
	if u.Name != nil {
		t.Name = *u.Name
	}
	if u.Description != nil {
		t.Description = *u.Description
	}
	if u.Criteria != nil {
		t.Criteria = slices.Clone(*u.Criteria)
		t.ReferenceDate = today
	}
	if u.DateMode != nil {
		t.DateMode = *u.DateMode
		t.ReferenceDate = today
	}
	if u.Schedulable != nil {
		t.Schedulable = *u.Schedulable
	}
	if u.InMenu != nil {
		t.InMenu = *u.InMenu
	}
}

// TargetFilter selects saved targets, by ID.
type TargetFilter struct {
	InMenu          bool // only those visible in the main menu
	Schedulable     bool // only those usable in scheduled operations
	IncludeArchived bool
	Cursor          int64
	Limit           int
}

// TargetQuery asks for a page of a target's members. Day is the run day
// (zero: today in the tenant's time zone); Page is 1-based.
type TargetQuery struct {
	Day   Date
	Page  int
	Limit int
}

// TargetPage is one page of the members a target selects, by member ID.
type TargetPage struct {
	Day      Date      `json:"day"`
	Page     int       `json:"page"`
	Limit    int       `json:"limit"`
	Items    []*Member `json:"items"`
	NextPage *int      `json:"next_page"`
}

// TargetActionsResult is what creating CRM actions for a target did.
type TargetActionsResult struct {
	Day     Date      `json:"day"`
	Members int       `json:"members"`
	Actions []*Action `json:"actions"`
}

// TargetService manages and runs targets. Every operator may run them;
// creating and changing them needs the admin or crm_manager role. Targets
// are archived, never deleted.
type TargetService interface {
	// CreateTarget returns EINVALID naming the field for bad criteria.
	CreateTarget(ctx context.Context, t *Target) error
	// FindTargetByID returns ENOTFOUND if the target is not the tenant's.
	FindTargetByID(ctx context.Context, id int64) (*Target, error)
	FindTargets(ctx context.Context, f TargetFilter) ([]*Target, error)
	// UpdateTarget returns EPRECONDITION when version is stale.
	UpdateTarget(ctx context.Context, id int64, version int, upd TargetUpdate) (*Target, error)
	// ArchiveTarget returns ECONFLICT while an active scheduled operation uses it.
	ArchiveTarget(ctx context.Context, id int64, version int) (*Target, error)

	// RunTarget returns a page of the target's members.
	RunTarget(ctx context.Context, id int64, q TargetQuery) (*TargetPage, error)
	// PreviewTarget runs an unsaved definition.
	PreviewTarget(ctx context.Context, def TargetDefinition, q TargetQuery) (*TargetPage, error)
	// CountTarget counts the target's members on day (zero: today).
	CountTarget(ctx context.Context, id int64, day Date) (int, error)
	// EachTargetMember calls yield for every member of the target, by ID,
	// reading them in pages; it stops at the first error.
	EachTargetMember(ctx context.Context, id int64, day Date, yield func(*Member) error) error
	// CreateTargetActions creates a copy of tmpl for every member of the
	// target, all or none (as ActionService.BulkCreateActions; EINVALID
	// when the target has more than the bulk limit).
	CreateTargetActions(ctx context.Context, id int64, day Date, tmpl *Action) (*TargetActionsResult, error)
}
