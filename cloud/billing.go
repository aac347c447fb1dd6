package cloud

import (
	"regexp"
	"strings"
	"time"
)

// MaxInstalmentCents bounds one instalment (10 million in the currency's
// main unit): anything larger is a typing error.
const MaxInstalmentCents = 1_000_000_000

var currencyRE = regexp.MustCompile(`^[A-Z]{3}$`)

// Instalment is an amount a member owes by a date, usually one part of a
// membership's price. It is settled by setting PaidAt, and voided (never
// deleted) by Cancelled. An instalment that is neither paid nor cancelled
// after its due date is overdue, and the reader display says so.
type Instalment struct {
	ID           int64      `json:"id"`
	TenantID     int64      `json:"-"`
	MemberID     int64      `json:"member_id"`
	MembershipID *int64     `json:"membership_id"` // the member's membership it pays for, if any
	Description  string     `json:"description"`
	AmountCents  int64      `json:"amount_cents"` // in the currency's minor unit
	Currency     string     `json:"currency"`     // ISO 4217, e.g. "EUR"
	DueOn        Date       `json:"due_on"`
	PaidAt       *time.Time `json:"paid_at"`
	Cancelled    bool       `json:"cancelled"`
	Version      int        `json:"version"`
	CreatedAt    time.Time  `json:"created_at"`
	UpdatedAt    time.Time  `json:"updated_at"`
}

// Validate checks an instalment; now bounds PaidAt.
func (in *Instalment) Validate(now time.Time) error {
	in.Description = strings.TrimSpace(in.Description)
	in.Currency = strings.ToUpper(strings.TrimSpace(in.Currency))
	if in.Currency == "" {
		in.Currency = "EUR"
	}
	if len(in.Description) > 200 {
		return Invalid("description", "Description is at most 200 characters.")
	}
	if in.AmountCents <= 0 || in.AmountCents > MaxInstalmentCents {
		return Invalid("amount_cents", "Amount must be a positive number of cents, at most %d.", int64(MaxInstalmentCents))
	}
	if !currencyRE.MatchString(in.Currency) {
		return Invalid("currency", "Currency must be an ISO 4217 code like EUR.")
	}
	if in.DueOn.IsZero() {
		return Invalid("due_on", "Due date is required.")
	}
	if in.MembershipID != nil && *in.MembershipID <= 0 {
		return Invalid("membership_id", "Membership not found.")
	}
	if in.PaidAt != nil {
		p := in.PaidAt.UTC().Truncate(time.Microsecond)
		if p.After(now) {
			return Invalid("paid_at", "Payment time is in the future.")
		}
		in.PaidAt = &p
	}
	if in.Cancelled && in.PaidAt != nil {
		return Invalid("cancelled", "A paid instalment cannot be cancelled: clear paid_at first.")
	}
	return nil
}

// Overdue reports whether the instalment is unpaid, not cancelled and was
// due before today.
func (in *Instalment) Overdue(today Date) bool {
	return in.PaidAt == nil && !in.Cancelled && in.DueOn.Before(today)
}

// InstalmentUpdate holds the fields of an instalment that can change.
// "paid_at": null marks a payment recorded by mistake as unpaid again.
type InstalmentUpdate struct {
	MembershipID Optional[int64]     `json:"membership_id,omitzero"`
	Description  *string             `json:"description"`
	AmountCents  *int64              `json:"amount_cents"`
	Currency     *string             `json:"currency"`
	DueOn        *Date               `json:"due_on"`
	PaidAt       Optional[time.Time] `json:"paid_at,omitzero"`
	Cancelled    *bool               `json:"cancelled"`
}

// Apply copies the set fields of u onto in.
func (u *InstalmentUpdate) Apply(in *Instalment) {
	u.MembershipID.Apply(&in.MembershipID)
	if u.Description != nil {
		in.Description = *u.Description
	}
	if u.AmountCents != nil {
		in.AmountCents = *u.AmountCents
	}
	if u.Currency != nil {
		in.Currency = *u.Currency
	}
	if u.DueOn != nil {
		in.DueOn = *u.DueOn
	}
	u.PaidAt.Apply(&in.PaidAt)
	if u.Cancelled != nil {
		in.Cancelled = *u.Cancelled
	}
}

// BookingKind tells a class from a one-to-one appointment.
type BookingKind string

// Booking kinds.
const (
	BookingClass       BookingKind = "class"       // a group class (spinning, yoga...)
	BookingAppointment BookingKind = "appointment" // personal training, check-up, consultation
)

// BookingStatus is where a booking stands.
type BookingStatus string

// Booking statuses.
const (
	BookingBooked    BookingStatus = "booked"
	BookingCancelled BookingStatus = "cancelled"
	BookingAttended  BookingStatus = "attended"
)

// MaxBookingDuration bounds a booking's length.
const MaxBookingDuration = 24 * time.Hour

// Booking is a member's place in a class or an appointment at a site.
// Bookings are never deleted: cancelling is a status.
type Booking struct {
	ID        int64         `json:"id"`
	TenantID  int64         `json:"-"`
	MemberID  int64         `json:"member_id"`
	SiteID    int64         `json:"site_id"`
	Kind      BookingKind   `json:"kind"`
	Title     string        `json:"title"` // what: "Spinning", "Personal training"
	StartsAt  time.Time     `json:"starts_at"`
	EndsAt    time.Time     `json:"ends_at"`
	Status    BookingStatus `json:"status"`
	Version   int           `json:"version"`
	CreatedAt time.Time     `json:"created_at"`
	UpdatedAt time.Time     `json:"updated_at"`
}

// Validate checks a booking and fills its defaults (kind class, status
// booked). Times are kept in UTC to the microsecond, as stored.
func (b *Booking) Validate() error {
	b.Title = strings.TrimSpace(b.Title)
	if b.Kind == "" {
		b.Kind = BookingClass
	}
	if b.Status == "" {
		b.Status = BookingBooked
	}
	if b.Kind != BookingClass && b.Kind != BookingAppointment {
		return Invalid("kind", "Kind must be class or appointment.")
	}
	if b.Status != BookingBooked && b.Status != BookingCancelled && b.Status != BookingAttended {
		return Invalid("status", "Status must be booked, cancelled or attended.")
	}
	if b.Title == "" || len(b.Title) > 120 {
		return Invalid("title", "Title is required, at most 120 characters.")
	}
	if b.SiteID <= 0 {
		return Invalid("site_id", "Site is required.")
	}
	if b.StartsAt.IsZero() {
		return Invalid("starts_at", "Start time is required.")
	}
	if b.EndsAt.IsZero() {
		return Invalid("ends_at", "End time is required.")
	}
	b.StartsAt, b.EndsAt = b.StartsAt.UTC().Truncate(time.Microsecond), b.EndsAt.UTC().Truncate(time.Microsecond)
	if !b.EndsAt.After(b.StartsAt) {
		return Invalid("ends_at", "End time must be after the start time.")
	}
	if b.EndsAt.Sub(b.StartsAt) > MaxBookingDuration {
		return Invalid("ends_at", "A booking lasts at most 24 hours.")
	}
	return nil
}

// BookingUpdate holds the fields of a booking that can change; the member
// cannot.
type BookingUpdate struct {
	SiteID   *int64         `json:"site_id"`
	Kind     *BookingKind   `json:"kind"`
	Title    *string        `json:"title"`
	StartsAt *time.Time     `json:"starts_at"`
	EndsAt   *time.Time     `json:"ends_at"`
	Status   *BookingStatus `json:"status"`
}

// Apply copies the set fields of u onto b.
func (u *BookingUpdate) Apply(b *Booking) {
	if u.SiteID != nil {
		b.SiteID = *u.SiteID
	}
	if u.Kind != nil {
		b.Kind = *u.Kind
	}
	if u.Title != nil {
		b.Title = *u.Title
	}
	if u.StartsAt != nil {
		b.StartsAt = *u.StartsAt
	}
	if u.EndsAt != nil {
		b.EndsAt = *u.EndsAt
	}
	if u.Status != nil {
		b.Status = *u.Status
	}
}

// BookingFilter selects a member's bookings, ordered by start time. From
// and To (UTC dates, both included) bound the start; Cursor is the ID of
// the last booking of the previous page.
type BookingFilter struct {
	MemberID int64
	From, To Date
	Cursor   int64
	Limit    int
}
