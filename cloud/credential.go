package cloud

import (
	"slices"
	"strings"
	"time"

	"varco.dev/protocol/wiegand"
)

// CredentialKind is the kind of badge or code.
type CredentialKind string

// Credential kinds.
const (
	CredentialCard CredentialKind = "card" // 125 kHz / 13.56 MHz card or keyfob, Wiegand facility:number
	CredentialPIN  CredentialKind = "pin"  // code typed on the reader's keypad
	CredentialRaw  CredentialKind = "raw"  // a Wiegand frame of a proprietary layout
)

// MinPINDigits is the shortest PIN a club may hand out; wiegand accepts
// shorter ones, but a 1-digit PIN is a door left open.
const MinPINDigits = 4

// ParseCredentialKey validates a credential key in the canonical text form
// of protocol/wiegand ("card:123:45678", "pin:0042", "raw:40:0123456789")
// and returns its kind. A key that parses but is not canonical (leading
// zeros in a card number, upper-case hex) is refused, so that equal
// credentials always have equal text and the per-tenant uniqueness holds.
func ParseCredentialKey(key string) (CredentialKind, error) {
	k, err := wiegand.ParseKey(key)
	if err != nil || k.String() != key {
		return "", Invalid("key", `Key must be canonical, like "card:123:45678" or "pin:1234".`)
	}
	if k.Kind() == wiegand.KindPIN && len(key)-len("pin:") < MinPINDigits {
		return "", Invalid("key", "A PIN has at least %d digits.", MinPINDigits)
	}
	return CredentialKind(k.Kind().String()), nil
}

// Credential is a badge or PIN that identifies a member at a reader. Its key
// is unique in the tenant.
type Credential struct {
	ID         int64          `json:"id"`
	TenantID   int64          `json:"-"`
	MemberID   int64          `json:"member_id"`
	Key        string         `json:"key"`
	Kind       CredentialKind `json:"kind"`
	Label      string         `json:"label"`
	ValidFrom  Date           `json:"valid_from"`
	ValidUntil Date           `json:"valid_until"`
	Disabled   bool           `json:"disabled"`
	Version    int            `json:"version"`
	CreatedAt  time.Time      `json:"created_at"`
}

// Validate checks a credential and sets its kind from the key.
func (c *Credential) Validate() error {
	c.Key = strings.TrimSpace(c.Key)
	kind, err := ParseCredentialKey(c.Key)
	if err != nil {
		return err
	}
	c.Kind = kind
	if len(c.Label) > 100 {
		return Invalid("label", "Label is at most 100 characters.")
	}
	if !c.ValidFrom.IsZero() && !c.ValidUntil.IsZero() && c.ValidUntil.Before(c.ValidFrom) {
		return Invalid("valid_until", "valid_until is before valid_from.")
	}
	return nil
}

// CredentialUpdate holds the fields of a credential that can change; null
// clears a validity bound. The key cannot: issue a new credential instead.
type CredentialUpdate struct {
	Label      *string        `json:"label"`
	ValidFrom  Optional[Date] `json:"valid_from,omitzero"`
	ValidUntil Optional[Date] `json:"valid_until,omitzero"`
	Disabled   *bool          `json:"disabled"`
}

// Membership is a paid right to enter, with validity dates, the sites it
// covers (no sites means every site of the tenant) and the device types it
// opens (none means every device type; an add-on such as a spa membership
// lists only "spa").
type Membership struct {
	ID          int64        `json:"id"`
	TenantID    int64        `json:"-"`
	MemberID    int64        `json:"member_id"`
	Name        string       `json:"name"`
	StartsOn    Date         `json:"starts_on"`
	EndsOn      Date         `json:"ends_on"`
	SiteIDs     []int64      `json:"site_ids"`
	DeviceTypes []DeviceType `json:"device_types"`
	Cancelled   bool         `json:"cancelled"`
	Version     int          `json:"version"`
	CreatedAt   time.Time    `json:"created_at"`
}

// Validate checks a membership.
func (ms *Membership) Validate() error {
	if strings.TrimSpace(ms.Name) == "" {
		return Invalid("name", "Name is required.")
	}
	if ms.StartsOn.IsZero() {
		return Invalid("starts_on", "Start date is required.")
	}
	if ms.EndsOn.IsZero() {
		return Invalid("ends_on", "End date is required.")
	}
	if ms.EndsOn.Before(ms.StartsOn) {
		return Invalid("ends_on", "End date is before start date.")
	}
	if len(ms.Name) > 100 {
		return Invalid("name", "Name is at most 100 characters.")
	}
	if ms.SiteIDs == nil {
		ms.SiteIDs = []int64{}
	}
	if ms.DeviceTypes == nil {
		ms.DeviceTypes = []DeviceType{}
	}
	seen := map[DeviceType]bool{}
	for _, d := range ms.DeviceTypes {
		if !d.Valid() {
			return Invalid("device_types", "Unknown device type %q.", d)
		}
		if seen[d] {
			return Invalid("device_types", "Device type %q is listed twice.", d)
		}
		seen[d] = true
	}
	return nil
}

// Opens reports whether the membership opens gates of device type d.
func (ms *Membership) Opens(d DeviceType) bool {
	return len(ms.DeviceTypes) == 0 || slices.Contains(ms.DeviceTypes, d)
}

// Covers reports whether the membership is valid on day at site.
func (ms *Membership) Covers(siteID int64, day Date) bool {
	if ms.Cancelled || day.Before(ms.StartsOn) || day.After(ms.EndsOn) {
		return false
	}
	if len(ms.SiteIDs) == 0 {
		return true
	}
	for _, id := range ms.SiteIDs {
		if id == siteID {
			return true
		}
	}
	return false
}

// MembershipUpdate holds the fields of a membership that can change.
type MembershipUpdate struct {
	Name        *string       `json:"name"`
	StartsOn    *Date         `json:"starts_on"`
	EndsOn      *Date         `json:"ends_on"`
	SiteIDs     *[]int64      `json:"site_ids"`
	DeviceTypes *[]DeviceType `json:"device_types"`
	Cancelled   *bool         `json:"cancelled"`
}

// Apply copies the set fields of u onto ms.
func (u *MembershipUpdate) Apply(ms *Membership) {
	if u.Name != nil {
		ms.Name = *u.Name
	}
	if u.StartsOn != nil {
		ms.StartsOn = *u.StartsOn
	}
	if u.EndsOn != nil {
		ms.EndsOn = *u.EndsOn
	}
	if u.SiteIDs != nil {
		ms.SiteIDs = slices.Clone(*u.SiteIDs)
	}
	if u.DeviceTypes != nil {
		ms.DeviceTypes = slices.Clone(*u.DeviceTypes)
	}
	if u.Cancelled != nil {
		ms.Cancelled = *u.Cancelled
	}
}
