package postgres

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"varco.dev/cloud"
)

// targetEval is where and when a target is evaluated: the tenant, the run
// day in the tenant's time zone, and how far rolling dates move.
type targetEval struct {
	tenantID int64
	today    cloud.Date
	loc      *time.Location
	shift    int
}

// targetSQL builds the WHERE clause that selects a target's members from
// "members m". Every value from the criteria becomes a numbered parameter;
// the SQL text is made only of constants of this file, so no input can
// change the statement's shape.
type targetSQL struct {
	ev    targetEval
	args  []any
	conds []string
}

// buildTargetWhere returns the condition over alias m (the tenant's
// members, archived ones excluded, meeting every criterion) and its
// arguments. The criteria must have been validated.
func buildTargetWhere(ev targetEval, criteria []cloud.Criterion) (string, []any, error) {
	q := &targetSQL{ev: ev}
	q.conds = append(q.conds, "m.tenant_id = "+q.arg(ev.tenantID), "m.archived_at IS NULL")
	for i := range criteria {
		cond, err := q.criterion(&criteria[i])
		if err != nil {
			return "", nil, fmt.Errorf("criteria[%d]: %w", i, err)
		}
		if criteria[i].Not {
			cond = "NOT (" + cond + ")"
		}
		q.conds = append(q.conds, cond)
	}
	return strings.Join(q.conds, "\n  AND "), q.args, nil
}

// arg adds a parameter and returns its placeholder.
func (q *targetSQL) arg(v any) string {
	q.args = append(q.args, v)
	return fmt.Sprintf("$%d", len(q.args))
}

// dayStart is midnight at the start of d in the tenant's time zone.
func (q *targetSQL) dayStart(d cloud.Date) time.Time {
	y, m, dd := d.Time().Date()
	return time.Date(y, m, dd, 0, 0, 0, 0, q.ev.loc)
}

// days returns the date parameters of c's window.
func (q *targetSQL) days(c *cloud.Criterion) (lo, hi string) {
	l, h, _ := c.Window(q.ev.today, q.ev.shift)
	return q.arg(l.Time()), q.arg(h.Time())
}

// instants returns the timestamp parameters [lo, hi) of c's window: from
// the start of its first day to the start of the day after its last, in
// the tenant's time zone.
func (q *targetSQL) instants(c *cloud.Criterion) (lo, hi string) {
	l, h, _ := c.Window(q.ev.today, q.ev.shift)
	return q.arg(q.dayStart(l)), q.arg(q.dayStart(h.AddDays(1)))
}

func (q *targetSQL) criterion(c *cloud.Criterion) (string, error) {
	switch c.Kind {
	case cloud.CriterionMembershipEnding:
		lo, hi := q.days(c)
		return `EXISTS (SELECT 1 FROM memberships ms WHERE ms.tenant_id = m.tenant_id AND ms.member_id = m.id AND NOT ms.cancelled
      AND ms.ends_on BETWEEN ` + lo + ` AND ` + hi + `
      AND NOT EXISTS (SELECT 1 FROM memberships r WHERE r.tenant_id = ms.tenant_id AND r.member_id = ms.member_id
        AND NOT r.cancelled AND r.ends_on > ms.ends_on))`, nil
	case cloud.CriterionMembershipActive:
		today := q.arg(q.ev.today.Time())
		return `EXISTS (SELECT 1 FROM memberships ms WHERE ms.tenant_id = m.tenant_id AND ms.member_id = m.id AND NOT ms.cancelled
      AND ms.starts_on <= ` + today + ` AND ms.ends_on >= ` + today + `)`, nil
	case cloud.CriterionInstalmentDue:
		lo, hi := q.days(c)
		return `EXISTS (SELECT 1 FROM instalments i WHERE i.tenant_id = m.tenant_id AND i.member_id = m.id
      AND i.paid_at IS NULL AND NOT i.cancelled AND i.due_on BETWEEN ` + lo + ` AND ` + hi + `)`, nil
	case cloud.CriterionMedicalCert:
		switch c.State {
		case cloud.CertExpiring:
			lo, hi := q.days(c)
			return `m.medical_cert_expiry BETWEEN ` + lo + ` AND ` + hi, nil
		case cloud.CertExpired:
			return `m.medical_cert_expiry < ` + q.arg(q.ev.today.Time()), nil
		case cloud.CertMissing:
			return `m.medical_cert_expiry IS NULL`, nil
		case cloud.CertMissingOrExpired:
			return `(m.medical_cert_expiry IS NULL OR m.medical_cert_expiry < ` + q.arg(q.ev.today.Time()) + `)`, nil
		}
		return "", fmt.Errorf("medical_cert state %q", c.State)
	case cloud.CriterionNotAttending:
		since := q.arg(q.dayStart(q.ev.today.AddDays(-*c.Days)))
		return `coalesce(m.last_visit_at, m.created_at) < ` + since, nil
	case cloud.CriterionBooking:
		lo, hi := q.instants(c)
		cond := `EXISTS (SELECT 1 FROM bookings b WHERE b.tenant_id = m.tenant_id AND b.member_id = m.id AND b.status = 'booked'
      AND b.starts_at >= ` + lo + ` AND b.starts_at < ` + hi
		if c.BookingKind != "" {
			cond += ` AND b.kind = ` + q.arg(string(c.BookingKind))
		}
		return cond + `)`, nil
	case cloud.CriterionRegistered:
		lo, hi := q.instants(c)
		return `m.created_at >= ` + lo + ` AND m.created_at < ` + hi, nil
	case cloud.CriterionBirthday:
		// The pairs match the members_birthday index (tenant_id, month, day).
		months, days := q.birthdays(c)
		return `(extract(month FROM m.birth_date), extract(day FROM m.birth_date)) IN (SELECT * FROM unnest(` +
			q.arg(months) + `::numeric[], ` + q.arg(days) + `::numeric[]))`, nil
	case cloud.CriterionCommercialStatus:
		return `m.commercial_status_id = ANY(` + q.arg(c.StatusIDs) + `::bigint[])`, nil
	case cloud.CriterionTags:
		op := "&&"
		if c.Match == "all" {
			op = "@>"
		}
		return `m.tags ` + op + ` ` + q.arg(c.Tags) + `::text[]`, nil
	case cloud.CriterionConsent:
		want, err := json.Marshal([]cloud.Consent{{Channel: c.Channel, Purpose: c.Purpose, Granted: true}})
		if err != nil {
			return "", err
		}
		// At is omitted when zero, so the containment matches any consent time.
		return `m.consents @> ` + q.arg(string(want)) + `::jsonb`, nil
	case cloud.CriterionCRMHistory:
		cond := `EXISTS (SELECT 1 FROM crm_actions a WHERE a.tenant_id = m.tenant_id AND a.member_id = m.id AND NOT a.is_open
      AND a.type_id = ` + q.arg(c.TypeID)
		if c.OutcomeID != 0 {
			cond += ` AND a.outcome_id = ` + q.arg(c.OutcomeID)
		}
		if _, _, ok := c.Window(q.ev.today, q.ev.shift); ok {
			lo, hi := q.instants(c)
			cond += ` AND a.closed_at >= ` + lo + ` AND a.closed_at < ` + hi
		}
		return cond + `)`, nil
	}
	return "", fmt.Errorf("unknown criterion kind %q", c.Kind)
}

// birthdays returns the month and day of every day of c's window; 29
// February is added to 28 February of a common year, so that those born on
// it are not left out.
func (q *targetSQL) birthdays(c *cloud.Criterion) (months, days []int) {
	lo, hi, _ := c.Window(q.ev.today, q.ev.shift)
	seen := map[[2]int]bool{}
	add := func(m, d int) {
		if !seen[[2]int{m, d}] {
			seen[[2]int{m, d}] = true
			months, days = append(months, m), append(days, d)
		}
	}
	for d := lo; !d.After(hi); d = d.AddDays(1) {
		_, m, dd := d.Time().Date()
		add(int(m), dd)
		if m == time.February && dd == 28 && d.AddDays(1).Time().Day() == 1 {
			add(2, 29)
		}
	}
	return months, days
}
