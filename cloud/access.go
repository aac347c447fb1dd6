package cloud

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"varco.dev/protocol/sync"
)

// OverrideTTL is how long a staff override waits to be used at its gate.
const OverrideTTL = time.Hour

// Display priorities of an access record's texts: the reader shows the
// highest first.
const (
	PriorityBlock      = 100
	PriorityMessage    = 50
	PriorityInstalment = 45
	PriorityMedical    = 40
	PriorityMembership = 30
	PriorityBirthday   = 20
)

// AccessInput is everything a member's access record for one site is
// computed from. Actions are the member's open actions; ActionTypes must
// hold their types. Now is the current instant; dates are turned into
// instants in Location, the site's time zone.
type AccessInput struct {
	Tenant      *Tenant
	Location    *time.Location
	Member      *Member
	Credentials []*Credential
	Memberships []*Membership
	Instalments []*Instalment
	SiteID      int64
	Actions     []*Action
	ActionTypes []*ActionType
	Now         time.Time
}

// ComputeAccessRecord computes the protocol/sync record that the edges of a
// site hold for a member. It is pure: the same input gives the same record.
//
//   - Credentials: the enabled ones whose validity has not ended, keyed by
//     sync.CredentialHash with the tenant's key, valid from the first
//     instant of ValidFrom to the end of ValidUntil in the site's zone.
//   - Valid: the memberships covering the site that are not cancelled and
//     have not ended, as [start day 00:00, day after end 00:00) in the
//     site's zone, merged when they overlap or touch. Sites is left empty:
//     the record is computed for one site and published on its topic.
//   - Devices: the device types those memberships open (a membership
//     without device types opens all): the union over the memberships
//     valid today or, when none is, over the ones still to start. A record
//     holds one device set for all its windows, so it is exact for the day
//     of Now and must be recomputed when a membership with its own device
//     types starts or ends, as it must daily for its notices. No
//     membership: the empty set.
//   - Suspended: the member's flag; an archived member also gets a
//     suspended record without credentials (the publisher sends a delete).
//   - Actions: every open CRM action whose type's access action is message
//     or message_block, private ones included (privacy is about staff, not
//     the gate), with the type's device types (none: all) and text.
//   - Notices, valid for the day of Now only since their wording changes
//     daily, in the member's language: instalments overdue (unpaid, not
//     cancelled, due before today: the oldest due date, and how many);
//     the medical certificate expired or expires within
//     Tenant.MedicalWarnDays; a membership valid today ends within
//     Tenant.MembershipWarnDays and the memberships valid the day after do
//     not open all its device types (the soonest such end); birthday today.
//
// The record is validated against the protocol's limits before it is returned.
func ComputeAccessRecord(in AccessInput) (sync.Record, error) {
	m, loc := in.Member, in.Location
	if loc == nil {
		loc = time.UTC
	}
	now := in.Now.In(loc)
	today := DateOf(now)
	startOf := func(d Date) sync.Timestamp {
		return sync.TimestampOf(time.Date(d.Time().Year(), d.Time().Month(), d.Time().Day(), 0, 0, 0, 0, loc))
	}
	rec := sync.Record{Member: sync.MemberRef(m.ID), Suspended: m.Suspended}
	if m.ArchivedAt != nil {
		rec.Suspended, rec.Devices = true, 0
		return rec, nil
	}

	for _, c := range in.Credentials {
		if c.Disabled || c.MemberID != m.ID || (!c.ValidUntil.IsZero() && c.ValidUntil.Before(today)) {
			continue
		}
		cred := sync.Credential{Key: sync.CredentialHash(in.Tenant.CredentialKey, c.Key)}
		if !c.ValidFrom.IsZero() {
			cred.Valid.From = startOf(c.ValidFrom)
		}
		if !c.ValidUntil.IsZero() {
			cred.Valid.Until = startOf(c.ValidUntil.AddDays(1))
		}
		rec.Credentials = append(rec.Credentials, cred)
	}
	slices.SortFunc(rec.Credentials, func(a, b sync.Credential) int { return slices.Compare(a.Key[:], b.Key[:]) })

	var ending *Membership // valid today, ends soonest within the warning, not continued
	var windows []AccessWindow
	var devicesToday, devicesLater sync.DeviceSet
	validToday := false
	for _, ms := range in.Memberships {
		if ms.MemberID != m.ID || ms.Cancelled || ms.EndsOn.Before(today) || !ms.coversSite(in.SiteID) {
			continue
		}
		windows = append(windows, AccessWindow{From: ms.StartsOn, Until: ms.EndsOn})
		if !ms.Covers(in.SiteID, today) {
			devicesLater |= deviceSet(ms.DeviceTypes)
			continue
		}
		validToday = true
		devicesToday |= deviceSet(ms.DeviceTypes)
		if today.DaysUntil(ms.EndsOn) <= warnDays(in.Tenant, true) && !continued(ms, in.Memberships, in.SiteID) &&
			(ending == nil || ms.EndsOn.Before(ending.EndsOn)) {
			ending = ms
		}
	}
	rec.Devices = devicesLater
	if validToday {
		rec.Devices = devicesToday
	}
	for _, w := range mergeWindows(windows) {
		rec.Valid = append(rec.Valid, sync.Window{From: startOf(w.From), Until: startOf(w.Until.AddDays(1))})
	}

	types := make(map[int64]*ActionType, len(in.ActionTypes))
	for _, t := range in.ActionTypes {
		types[t.ID] = t
	}
	for _, a := range in.Actions {
		t := types[a.TypeID]
		if !a.Open || a.MemberID != m.ID || t == nil || t.AccessAction == AccessNone {
			continue
		}
		act := sync.Action{ID: uint64(a.ID), Mode: sync.AccessMessage, Devices: deviceSet(t.DeviceTypes), Text: t.DisplayMessage, Priority: PriorityMessage}
		if t.AccessAction == AccessMessageBlock {
			act.Mode, act.Priority = sync.AccessMessageBlock, PriorityBlock
		}
		rec.Actions = append(rec.Actions, act)
	}
	slices.SortFunc(rec.Actions, func(a, b sync.Action) int {
		if c := cmp.Compare(b.Priority, a.Priority); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})

	day := sync.Window{From: startOf(today), Until: startOf(today.AddDays(1))}
	notice := func(prio uint8, text string) {
		rec.Notices = append(rec.Notices, sync.Notice{Text: text, Priority: prio, Valid: day})
	}
	l := texts[lang(m.Language)]
	var overdue int
	var oldest Date
	for _, inst := range in.Instalments {
		if inst.MemberID != m.ID || !inst.Overdue(today) {
			continue
		}
		overdue++
		if oldest.IsZero() || inst.DueOn.Before(oldest) {
			oldest = inst.DueOn
		}
	}
	if overdue > 0 {
		notice(PriorityInstalment, l.instalmentsDue(overdue, oldest))
	}
	if exp := m.MedicalCertExpiry; !exp.IsZero() {
		if days := today.DaysUntil(exp); days < 0 {
			notice(PriorityMedical, l.medicalExpired)
		} else if days <= warnDays(in.Tenant, false) {
			notice(PriorityMedical, l.medicalExpires(days))
		}
	}
	if ending != nil {
		notice(PriorityMembership, l.membershipEnds(today.DaysUntil(ending.EndsOn)))
	}
	if m.Kind == KindPerson && isBirthday(m.BirthDate, today) {
		notice(PriorityBirthday, fmt.Sprintf(l.birthday, cmp.Or(m.FirstName, m.LastName)))
	}
	if err := rec.Validate(); err != nil {
		return sync.Record{}, fmt.Errorf("access record of member %d: %w", m.ID, err)
	}
	return rec, nil
}

func warnDays(t *Tenant, membership bool) int {
	switch {
	case t == nil && membership:
		return 7
	case t == nil:
		return 15
	case membership:
		return t.MembershipWarnDays
	}
	return t.MedicalWarnDays
}

// deviceSet maps device types to the wire's set; none means all.
func deviceSet(ds []DeviceType) sync.DeviceSet {
	if len(ds) == 0 {
		return sync.AllDevices
	}
	var s sync.DeviceSet
	for _, d := range ds {
		if t, err := sync.ParseDeviceType(string(d)); err == nil {
			s |= sync.DeviceSetOf(t)
		}
	}
	return s
}

// Blocks reports whether an access record denies entry at a gate of device
// type d because of an open message_block action.
func Blocks(rec sync.Record, d DeviceType) bool {
	t, err := sync.ParseDeviceType(string(d))
	if err != nil {
		return false
	}
	for _, a := range rec.Actions {
		if a.Mode == sync.AccessMessageBlock && a.Devices.Has(t) {
			return true
		}
	}
	return false
}

// AccessWindow is a span of days, both ends included.
type AccessWindow struct {
	From  Date
	Until Date
}

func (ms *Membership) coversSite(siteID int64) bool {
	return len(ms.SiteIDs) == 0 || slices.Contains(ms.SiteIDs, siteID)
}

// continued reports whether the other memberships valid at the site on the
// day after ms ends open every device type ms opens, in which case "your
// membership ends" would be wrong.
func continued(ms *Membership, all []*Membership, siteID int64) bool {
	next := ms.EndsOn.AddDays(1)
	var open sync.DeviceSet
	for _, o := range all {
		if o != ms && o.MemberID == ms.MemberID && o.Covers(siteID, next) {
			open |= deviceSet(o.DeviceTypes)
		}
	}
	return deviceSet(ms.DeviceTypes)&^open == 0
}

func mergeWindows(ws []AccessWindow) []AccessWindow {
	slices.SortFunc(ws, func(a, b AccessWindow) int { return a.From.Time().Compare(b.From.Time()) })
	var out []AccessWindow
	for _, w := range ws {
		if n := len(out); n > 0 && !w.From.After(out[n-1].Until.AddDays(1)) {
			if w.Until.After(out[n-1].Until) {
				out[n-1].Until = w.Until
			}
			continue
		}
		out = append(out, w)
	}
	return out
}

// isBirthday reports whether today is the birthday; people born on 29
// February celebrate on 28 February in common years.
func isBirthday(birth, today Date) bool {
	if birth.IsZero() {
		return false
	}
	bm, bd := birth.Time().Month(), birth.Time().Day()
	tm, td := today.Time().Month(), today.Time().Day()
	if bm == time.February && bd == 29 && !isLeap(today.Time().Year()) {
		bd = 28
	}
	return bm == tm && bd == td
}

func isLeap(y int) bool { return y%4 == 0 && (y%100 != 0 || y%400 == 0) }

func lang(l string) string {
	if _, ok := texts[l]; ok {
		return l
	}
	return "it"
}

type catalog struct {
	birthday       string
	membershipEnds func(days int) string
	medicalExpired string
	medicalExpires func(days int) string
	instalmentsDue func(n int, oldest Date) string
}

var monthsEN = [...]string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}

// texts are the reader messages computed from member data, per language.
var texts = map[string]catalog{
	"it": {
		birthday: "Buon compleanno %s!",
		membershipEnds: func(d int) string {
			switch d {
			case 0:
				return "Il tuo abbonamento scade oggi"
			case 1:
				return "Il tuo abbonamento scade domani"
			}
			return fmt.Sprintf("Il tuo abbonamento scade tra %d giorni", d)
		},
		medicalExpired: "Certificato medico scaduto",
		medicalExpires: func(d int) string {
			switch d {
			case 0:
				return "Il certificato medico scade oggi"
			case 1:
				return "Il certificato medico scade domani"
			}
			return fmt.Sprintf("Il certificato medico scade tra %d giorni", d)
		},
		instalmentsDue: func(n int, oldest Date) string {
			day := oldest.Time().Format("02/01/2006")
			if n == 1 {
				return "Rata scaduta il " + day
			}
			return fmt.Sprintf("%d rate scadute dal %s", n, day)
		},
	},
	"en": {
		birthday: "Happy birthday %s!",
		membershipEnds: func(d int) string {
			switch d {
			case 0:
				return "Your membership ends today"
			case 1:
				return "Your membership ends tomorrow"
			}
			return fmt.Sprintf("Your membership ends in %d days", d)
		},
		medicalExpired: "Medical certificate expired",
		medicalExpires: func(d int) string {
			switch d {
			case 0:
				return "Your medical certificate expires today"
			case 1:
				return "Your medical certificate expires tomorrow"
			}
			return fmt.Sprintf("Your medical certificate expires in %d days", d)
		},
		instalmentsDue: func(n int, oldest Date) string {
			t := oldest.Time()
			day := fmt.Sprintf("%d %s %d", t.Day(), monthsEN[t.Month()-1], t.Year())
			if n == 1 {
				return "Instalment due on " + day
			}
			return fmt.Sprintf("%d instalments overdue since %s", n, day)
		},
	},
}

// AccessView is a member's access record for a site as staff see it: the
// sync record the edges hold, plus the pending overrides (which reach the
// edge as one-time commands, not in the record).
type AccessView struct {
	SiteID     int64       `json:"site_id"`
	ComputedAt time.Time   `json:"computed_at"`
	Record     sync.Record `json:"record"`
	Overrides  []*Override `json:"overrides"`
}

// AccessService loads a member's data and computes the access record.
type AccessService interface {
	// AccessRecord returns ENOTFOUND if the member or the site is not the tenant's.
	AccessRecord(ctx context.Context, memberID, siteID int64) (*AccessView, error)
}
