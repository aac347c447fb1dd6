package cloud

import (
	"context"
	"net/mail"
	"regexp"
	"slices"
	"strings"
	"time"
)

// MemberKind tells a person from a company.
type MemberKind string

// Member kinds.
const (
	KindPerson  MemberKind = "person"
	KindCompany MemberKind = "company"
)

// Channel is a way to reach a member.
type Channel string

// Communication channels.
const (
	ChannelSMS   Channel = "sms"
	ChannelEmail Channel = "email"
	ChannelPush  Channel = "push"
)

// Purpose is a GDPR processing purpose a consent is given for.
type Purpose string

// GDPR purposes.
const (
	PurposeService     Purpose = "service"     // communications about the member's own membership
	PurposeMarketing   Purpose = "marketing"   // offers and promotions
	PurposeProfiling   Purpose = "profiling"   // analysis of habits
	PurposeThirdParty  Purpose = "third_party" // sharing with partners
	PurposeHealthCheck Purpose = "health"      // medical certificate reminders
)

var purposes = []Purpose{PurposeService, PurposeMarketing, PurposeProfiling, PurposeThirdParty, PurposeHealthCheck}

// Valid reports whether p is a known purpose.
func (p Purpose) Valid() bool { return slices.Contains(purposes, p) }

// Consent records whether a member agreed to be contacted on a channel for a purpose.
type Consent struct {
	Channel Channel   `json:"channel"`
	Purpose Purpose   `json:"purpose"`
	Granted bool      `json:"granted"`
	At      time.Time `json:"at,omitzero"`
}

// Languages the reader messages are rendered in.
var Languages = []string{"it", "en"}

// Member is a person or a company known to the club (the "anagrafica").
type Member struct {
	ID       int64      `json:"id"`
	TenantID int64      `json:"-"`
	Kind     MemberKind `json:"kind"`
	// Person.
	FirstName string `json:"first_name"`
	LastName  string `json:"last_name"`
	BirthDate Date   `json:"birth_date"`
	TaxCode   string `json:"tax_code"`
	// Company.
	CompanyName string `json:"company_name"`
	VATNumber   string `json:"vat_number"`
	LegalRepID  *int64 `json:"legal_rep_id"` // a person member of the same tenant
	// Contacts.
	Email    string    `json:"email"`
	Mobile   string    `json:"mobile"`
	Phone    string    `json:"phone"`
	Language string    `json:"language"`
	Consents []Consent `json:"consents"`
	Tags     []string  `json:"tags"`
	// CRM.
	CommercialStatusID *int64 `json:"commercial_status_id"`
	OperatorID         *int64 `json:"operator_id"` // the member's assigned operator
	// Access.
	MedicalCertExpiry Date       `json:"medical_cert_expiry"`
	Suspended         bool       `json:"suspended"`
	ArchivedAt        *time.Time `json:"archived_at"`
	// LastVisitAt is the member's latest granted passage, as the edges
	// reported it; read-only.
	LastVisitAt *time.Time `json:"last_visit_at"`

	Version   int       `json:"version"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// DisplayName is the name shown to staff and on reader displays.
func (m *Member) DisplayName() string {
	if m.Kind == KindCompany {
		return m.CompanyName
	}
	return strings.TrimSpace(m.FirstName + " " + m.LastName)
}

var (
	mobileRE  = regexp.MustCompile(`^\+?[0-9]{6,15}$`)
	phoneRE   = regexp.MustCompile(`^\+?[0-9 ./-]{5,20}$`)
	taxCodeRE = regexp.MustCompile(`^[A-Z0-9]{11,16}$`)
	vatRE     = regexp.MustCompile(`^[A-Z]{0,2}[0-9A-Z]{8,12}$`)
	tagRE     = regexp.MustCompile(`^[\p{L}\p{N} _.-]{1,40}$`)
)

// Normalize trims and canonicalises a member's text fields.
func (m *Member) Normalize() {
	m.FirstName = strings.TrimSpace(m.FirstName)
	m.LastName = strings.TrimSpace(m.LastName)
	m.CompanyName = strings.TrimSpace(m.CompanyName)
	m.TaxCode = strings.ToUpper(strings.TrimSpace(m.TaxCode))
	m.VATNumber = strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(m.VATNumber), " ", ""))
	m.Email = strings.ToLower(strings.TrimSpace(m.Email))
	m.Mobile = strings.ReplaceAll(strings.TrimSpace(m.Mobile), " ", "")
	m.Phone = strings.TrimSpace(m.Phone)
	if m.Language == "" {
		m.Language = "it"
	}
	if m.Tags == nil {
		m.Tags = []string{}
	}
	for i, t := range m.Tags {
		m.Tags[i] = strings.TrimSpace(t)
	}
	slices.Sort(m.Tags)
	m.Tags = slices.Compact(m.Tags)
	if m.Consents == nil {
		m.Consents = []Consent{}
	}
}

// Validate checks a member against the rules that need no database. The
// store checks that referenced IDs (legal representative, operator, status)
// belong to the tenant.
func (m *Member) Validate(today Date) error {
	m.Normalize()
	switch m.Kind {
	case KindPerson:
		if m.FirstName == "" && m.LastName == "" {
			return Invalid("last_name", "A person needs a first or last name.")
		}
		if m.CompanyName != "" || m.VATNumber != "" || m.LegalRepID != nil {
			return Invalid("kind", "company_name, vat_number and legal_rep_id are for companies.")
		}
		if !m.BirthDate.IsZero() && (m.BirthDate.After(today) || m.BirthDate.Before(NewDate(1900, 1, 1))) {
			return Invalid("birth_date", "Birth date must be between 1900-01-01 and today.")
		}
		if m.TaxCode != "" && !taxCodeRE.MatchString(m.TaxCode) {
			return Invalid("tax_code", "Tax code must be 11 to 16 letters or digits.")
		}
	case KindCompany:
		if m.CompanyName == "" {
			return Invalid("company_name", "A company needs a name.")
		}
		if m.VATNumber == "" {
			return Invalid("vat_number", "A company needs a VAT number.")
		}
		if !vatRE.MatchString(m.VATNumber) {
			return Invalid("vat_number", "VAT number must be an optional country prefix and 8 to 12 letters or digits.")
		}
		if !m.BirthDate.IsZero() || m.FirstName != "" || m.LastName != "" {
			return Invalid("kind", "first_name, last_name and birth_date are for persons.")
		}
		if m.TaxCode != "" && !taxCodeRE.MatchString(m.TaxCode) {
			return Invalid("tax_code", "Tax code must be 11 to 16 letters or digits.")
		}
	default:
		return Invalid("kind", "Kind must be person or company.")
	}
	if len(m.FirstName) > 100 || len(m.LastName) > 100 || len(m.CompanyName) > 200 {
		return Invalid("name", "Names are at most 100 characters (200 for companies).")
	}
	if m.Email != "" {
		if a, err := mail.ParseAddress(m.Email); err != nil || a.Address != m.Email {
			return Invalid("email", "E-mail address is not valid.")
		}
	}
	if m.Mobile != "" && !mobileRE.MatchString(m.Mobile) {
		return Invalid("mobile", "Mobile must be 6 to 15 digits with an optional leading +.")
	}
	if m.Phone != "" && !phoneRE.MatchString(m.Phone) {
		return Invalid("phone", "Phone number is not valid.")
	}
	if !slices.Contains(Languages, m.Language) {
		return Invalid("language", "Language must be one of %s.", strings.Join(Languages, ", "))
	}
	if len(m.Tags) > 50 {
		return Invalid("tags", "At most 50 tags.")
	}
	for _, t := range m.Tags {
		if !tagRE.MatchString(t) {
			return Invalid("tags", "Tag %q is not valid: 1-40 letters, digits, spaces, '_', '.', '-'.", t)
		}
	}
	seen := map[[2]string]bool{}
	for _, c := range m.Consents {
		switch c.Channel {
		case ChannelSMS:
			if c.Granted && m.Mobile == "" {
				return Invalid("mobile", "A mobile number is required for SMS consent.")
			}
		case ChannelEmail:
			if c.Granted && m.Email == "" {
				return Invalid("email", "An e-mail address is required for e-mail consent.")
			}
		case ChannelPush:
		default:
			return Invalid("consents", "Unknown channel %q.", c.Channel)
		}
		if !c.Purpose.Valid() {
			return Invalid("consents", "Unknown purpose %q.", c.Purpose)
		}
		k := [2]string{string(c.Channel), string(c.Purpose)}
		if seen[k] {
			return Invalid("consents", "Consent for %s/%s given twice.", c.Channel, c.Purpose)
		}
		seen[k] = true
	}
	if m.LegalRepID != nil && *m.LegalRepID <= 0 {
		return Invalid("legal_rep_id", "Legal representative not found.")
	}
	return nil
}

// HasConsent reports whether the member granted ch for p.
func (m *Member) HasConsent(ch Channel, p Purpose) bool {
	for _, c := range m.Consents {
		if c.Channel == ch && c.Purpose == p {
			return c.Granted
		}
	}
	return false
}

// MemberUpdate holds the fields of a member that can change; nil (or an
// unset Optional) leaves a field as is, an Optional set to null clears it.
// The kind of a member cannot change.
type MemberUpdate struct {
	FirstName          *string         `json:"first_name"`
	LastName           *string         `json:"last_name"`
	BirthDate          Optional[Date]  `json:"birth_date,omitzero"`
	TaxCode            *string         `json:"tax_code"`
	CompanyName        *string         `json:"company_name"`
	VATNumber          *string         `json:"vat_number"`
	LegalRepID         Optional[int64] `json:"legal_rep_id,omitzero"`
	Email              *string         `json:"email"`
	Mobile             *string         `json:"mobile"`
	Phone              *string         `json:"phone"`
	Language           *string         `json:"language"`
	Consents           *[]Consent      `json:"consents"`
	Tags               *[]string       `json:"tags"`
	CommercialStatusID Optional[int64] `json:"commercial_status_id,omitzero"`
	OperatorID         Optional[int64] `json:"operator_id,omitzero"`
	MedicalCertExpiry  Optional[Date]  `json:"medical_cert_expiry,omitzero"`
	Suspended          *bool           `json:"suspended"`
}

// Apply copies the set fields of u onto m.
func (u *MemberUpdate) Apply(m *Member) {
	set := func(dst *string, src *string) {
		if src != nil {
			*dst = *src
		}
	}
	set(&m.FirstName, u.FirstName)
	set(&m.LastName, u.LastName)
	set(&m.TaxCode, u.TaxCode)
	set(&m.CompanyName, u.CompanyName)
	set(&m.VATNumber, u.VATNumber)
	set(&m.Email, u.Email)
	set(&m.Mobile, u.Mobile)
	set(&m.Phone, u.Phone)
	set(&m.Language, u.Language)
	u.BirthDate.ApplyValue(&m.BirthDate)
	u.LegalRepID.Apply(&m.LegalRepID)
	if u.Consents != nil {
		m.Consents = *u.Consents
	}
	if u.Tags != nil {
		m.Tags = slices.Clone(*u.Tags)
	}
	u.CommercialStatusID.Apply(&m.CommercialStatusID)
	u.OperatorID.Apply(&m.OperatorID)
	u.MedicalCertExpiry.ApplyValue(&m.MedicalCertExpiry)
	if u.Suspended != nil {
		m.Suspended = *u.Suspended
	}
}

// MemberFilter selects members. Results are ordered by ID; Cursor is the last
// ID of the previous page.
type MemberFilter struct {
	Query              string // matches names, e-mail, mobile, tax code, VAT number
	Tag                string
	CommercialStatusID int64
	OperatorID         int64
	IncludeArchived    bool
	Cursor             int64
	Limit              int
}

// MemberImportError is one bad row of a CSV import.
type MemberImportError struct {
	Row    int    `json:"row"` // 1-based line number in the file, header is line 1
	Field  string `json:"field"`
	Reason string `json:"reason"`
}

// MemberService manages members. Any operator may use it.
type MemberService interface {
	CreateMember(ctx context.Context, m *Member) error
	// FindMemberByID returns ENOTFOUND if the member is not the tenant's.
	FindMemberByID(ctx context.Context, id int64) (*Member, error)
	FindMembers(ctx context.Context, f MemberFilter) ([]*Member, error)
	// UpdateMember returns EPRECONDITION when version is stale.
	UpdateMember(ctx context.Context, id int64, version int, upd MemberUpdate) (*Member, error)
	// ArchiveMember hides a member from lists and access; members are never
	// hard-deleted because CRM history and passages refer to them.
	ArchiveMember(ctx context.Context, id int64, version int) (*Member, error)

	// CreateCredential returns ECONFLICT if the key is taken in the tenant.
	CreateCredential(ctx context.Context, c *Credential) error
	FindCredentials(ctx context.Context, memberID int64) ([]*Credential, error)
	UpdateCredential(ctx context.Context, id int64, version int, upd CredentialUpdate) (*Credential, error)

	CreateMembership(ctx context.Context, ms *Membership) error
	FindMemberships(ctx context.Context, memberID int64) ([]*Membership, error)
	UpdateMembership(ctx context.Context, id int64, version int, upd MembershipUpdate) (*Membership, error)

	// CreateInstalment returns ENOTFOUND if the member is not the tenant's
	// and EINVALID if the membership is not the member's.
	CreateInstalment(ctx context.Context, in *Instalment) error
	// FindInstalments lists a member's instalments by due date.
	FindInstalments(ctx context.Context, memberID int64) ([]*Instalment, error)
	// UpdateInstalment returns EPRECONDITION when version is stale.
	UpdateInstalment(ctx context.Context, id int64, version int, upd InstalmentUpdate) (*Instalment, error)

	// CreateBooking returns ENOTFOUND if the member is not the tenant's and
	// EINVALID if the site is not.
	CreateBooking(ctx context.Context, b *Booking) error
	FindBookings(ctx context.Context, f BookingFilter) ([]*Booking, error)
	// UpdateBooking returns EPRECONDITION when version is stale.
	UpdateBooking(ctx context.Context, id int64, version int, upd BookingUpdate) (*Booking, error)
}

// MemberImportRow is one parsed CSV row: the line it came from, the member
// and optionally one credential key for it. Err is set when the row could
// not be parsed at all.
type MemberImportRow struct {
	Line       int
	Member     Member
	Credential string
	Err        *Error
}
