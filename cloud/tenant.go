package cloud

import (
	"context"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Tenant is a club or a chain of clubs. All other data belongs to one tenant.
type Tenant struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
	Slug string `json:"slug"`
	// MembershipWarnDays is how many days before a membership ends the reader
	// display starts saying so; MedicalWarnDays the same for the medical
	// certificate.
	MembershipWarnDays int `json:"membership_warn_days"`
	MedicalWarnDays    int `json:"medical_warn_days"`
	// CredentialKey is the tenant's secret for sync.CredentialHash (32 random
	// bytes, shared with its edges): the wire carries hashed credentials.
	CredentialKey []byte    `json:"-"`
	CreatedAt     time.Time `json:"created_at"`
}

// slugRE: the slug is the tenant's id on the wire (protocol/sync ids are at
// most 64 bytes) and prefixes its signing key ids, "<slug>-<generation>":
// 56 bytes leave room for the generation.
var slugRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{1,55}$`)

// Validate checks a tenant before it is created.
func (t *Tenant) Validate() error {
	if strings.TrimSpace(t.Name) == "" {
		return Invalid("name", "Name is required.")
	}
	if !slugRE.MatchString(t.Slug) {
		return Invalid("slug", "Slug must be 2-56 lowercase letters, digits or dashes.")
	}
	if t.MembershipWarnDays < 0 || t.MembershipWarnDays > 365 {
		return Invalid("membership_warn_days", "Must be between 0 and 365.")
	}
	if t.MedicalWarnDays < 0 || t.MedicalWarnDays > 365 {
		return Invalid("medical_warn_days", "Must be between 0 and 365.")
	}
	return nil
}

// TenantService creates tenants. It is used by the bootstrap command, not
// by the tenant-scoped API.
type TenantService interface {
	// CreateTenant creates a tenant, its first admin operator with the given
	// password, and seeds the default CRM configuration.
	// Returns ECONFLICT if the slug or the admin e-mail is taken.
	CreateTenant(ctx context.Context, t *Tenant, admin *Operator, password string) error
	// FindTenant returns the tenant of the operator in ctx.
	FindTenant(ctx context.Context) (*Tenant, error)
}

// DeviceType says what a gate is; CRM action types apply to some of them.
type DeviceType string

// The device types a gate can have.
const (
	DeviceEntrance DeviceType = "entrance"
	DeviceExit     DeviceType = "exit"
	DeviceDoor     DeviceType = "door"
	DeviceSpa      DeviceType = "spa"
	DevicePool     DeviceType = "pool"
	DeviceLocker   DeviceType = "locker"
)

// DeviceTypes lists every valid device type.
var DeviceTypes = []DeviceType{DeviceEntrance, DeviceExit, DeviceDoor, DeviceSpa, DevicePool, DeviceLocker}

// Valid reports whether d is a known device type.
func (d DeviceType) Valid() bool { return slices.Contains(DeviceTypes, d) }

// Site is one club location of a tenant.
type Site struct {
	ID        int64     `json:"id"`
	TenantID  int64     `json:"-"`
	Name      string    `json:"name"`
	Timezone  string    `json:"timezone"`
	Version   int       `json:"version"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Validate checks a site.
func (s *Site) Validate() error {
	if strings.TrimSpace(s.Name) == "" {
		return Invalid("name", "Name is required.")
	}
	if s.Timezone == "" {
		s.Timezone = "Europe/Rome"
	}
	if _, err := time.LoadLocation(s.Timezone); err != nil {
		return Invalid("timezone", "Unknown time zone %q.", s.Timezone)
	}
	return nil
}

// Gate is a turnstile, door or reader of a site.
type Gate struct {
	ID         int64      `json:"id"`
	TenantID   int64      `json:"-"`
	SiteID     int64      `json:"site_id"`
	Name       string     `json:"name"`
	DeviceType DeviceType `json:"device_type"`
	Version    int        `json:"version"`
	CreatedAt  time.Time  `json:"created_at"`
	UpdatedAt  time.Time  `json:"updated_at"`
}

// Validate checks a gate.
func (g *Gate) Validate() error {
	if strings.TrimSpace(g.Name) == "" {
		return Invalid("name", "Name is required.")
	}
	if g.SiteID <= 0 {
		return Invalid("site_id", "Site is required.")
	}
	if !g.DeviceType.Valid() {
		return Invalid("device_type", "Unknown device type %q.", g.DeviceType)
	}
	return nil
}

// SiteUpdate holds the fields of a site that can change; nil leaves a field as is.
type SiteUpdate struct {
	Name     *string `json:"name"`
	Timezone *string `json:"timezone"`
}

// GateUpdate holds the fields of a gate that can change.
type GateUpdate struct {
	Name       *string     `json:"name"`
	DeviceType *DeviceType `json:"device_type"`
}

// SiteService manages sites and gates. Writes need the admin role.
type SiteService interface {
	CreateSite(ctx context.Context, s *Site) error
	FindSites(ctx context.Context) ([]*Site, error)
	// FindSiteByID returns ENOTFOUND if the site does not exist in the tenant.
	FindSiteByID(ctx context.Context, id int64) (*Site, error)
	// UpdateSite returns EPRECONDITION when version is not the stored one.
	UpdateSite(ctx context.Context, id int64, version int, upd SiteUpdate) (*Site, error)
	// CreateGate returns EINVALID if the site is not one of the tenant's.
	CreateGate(ctx context.Context, g *Gate) error
	FindGates(ctx context.Context, siteID int64) ([]*Gate, error)
	FindGateByID(ctx context.Context, id int64) (*Gate, error)
	UpdateGate(ctx context.Context, id int64, version int, upd GateUpdate) (*Gate, error)
}
