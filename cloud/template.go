package cloud

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Placeholder names a value of a recipient that a template puts in its text,
// written [Name] in the template: "Hi [FirstName], your membership ends on
// [MembershipEndDate]".
type Placeholder string

// The placeholders a template may use. Each has a value for a member or
// none (no membership, no booking...): a member without the value of a
// placeholder the template uses is skipped, never sent a blank.
const (
	PhFirstName            Placeholder = "FirstName"
	PhLastName             Placeholder = "LastName"
	PhFullName             Placeholder = "FullName"
	PhCompanyName          Placeholder = "CompanyName"
	PhEmail                Placeholder = "Email"
	PhMobile               Placeholder = "Mobile"
	PhBirthDate            Placeholder = "BirthDate"
	PhMembershipName       Placeholder = "MembershipName"
	PhMembershipStartDate  Placeholder = "MembershipStartDate"
	PhMembershipEndDate    Placeholder = "MembershipEndDate"
	PhMedicalCertExpiry    Placeholder = "MedicalCertExpiry"
	PhInstalmentDueDate    Placeholder = "InstalmentDueDate"
	PhInstalmentAmount     Placeholder = "InstalmentAmount"
	PhReservationTitle     Placeholder = "ReservationTitle"
	PhReservationDate      Placeholder = "ReservationDate"
	PhReservationTimeStart Placeholder = "ReservationTimeStart"
	PhReservationTimeEnd   Placeholder = "ReservationTimeEnd"
	PhReservationSite      Placeholder = "ReservationSite"
	PhClubName             Placeholder = "ClubName"
)

// PlaceholderInfo documents a placeholder for the template editor.
type PlaceholderInfo struct {
	Name        Placeholder `json:"name"`
	Description string      `json:"description"`
}

// Placeholders lists every placeholder with what it stands for.
var Placeholders = []PlaceholderInfo{
	{PhFirstName, "First name of a person; a company's name."},
	{PhLastName, "Last name of a person; empty-valued for companies, which are skipped."},
	{PhFullName, "First and last name of a person, or a company's name."},
	{PhCompanyName, "Company name (companies only)."},
	{PhEmail, "The member's e-mail address."},
	{PhMobile, "The member's mobile number."},
	{PhBirthDate, "Birth date."},
	{PhMembershipName, "Name of the member's membership ending last (not cancelled)."},
	{PhMembershipStartDate, "First day of that membership."},
	{PhMembershipEndDate, "Last day of that membership."},
	{PhMedicalCertExpiry, "Expiry date of the medical certificate."},
	{PhInstalmentDueDate, "Due date of the earliest instalment not paid nor cancelled."},
	{PhInstalmentAmount, "Amount of that instalment, e.g. 49.90 EUR."},
	{PhReservationTitle, "What the member's next booking is for (e.g. Spinning)."},
	{PhReservationDate, "Date of the next booking, in its site's time zone."},
	{PhReservationTimeStart, "Start time of the next booking (HH:MM, site time zone)."},
	{PhReservationTimeEnd, "End time of the next booking (HH:MM, site time zone)."},
	{PhReservationSite, "Name of the site of the next booking."},
	{PhClubName, "The club's (tenant's) name."},
}

// Known reports whether p is a placeholder a template may use.
func (p Placeholder) Known() bool {
	return slices.ContainsFunc(Placeholders, func(i PlaceholderInfo) bool { return i.Name == p })
}

// maxPlaceholderName bounds what the parser takes for a placeholder name;
// longer bracketed words are text.
const maxPlaceholderName = 40

// TemplateText is a parsed template field: literal text and placeholders.
// The zero value is the empty text.
type TemplateText struct {
	parts []textPart
}

type textPart struct {
	lit string
	ph  Placeholder // set for a placeholder part
}

// UnknownPlaceholderError is returned by ParseTemplateText for a
// placeholder that is not one of Placeholders.
type UnknownPlaceholderError struct{ Name string }

func (e *UnknownPlaceholderError) Error() string {
	return fmt.Sprintf("unknown placeholder [%s]", e.Name)
}

// ParseTemplateText parses a template field. A placeholder is "[" then a
// letter, letters or digits (at most 40), then "]"; any other "[" is text,
// so "[50% off]" reads as written. A well-formed placeholder that is not
// known is an *UnknownPlaceholderError: it would otherwise reach members as
// a blank or as "[Frist­Name]". Text that is not valid UTF-8 is an error.
func ParseTemplateText(s string) (TemplateText, error) {
	if !utf8.ValidString(s) {
		return TemplateText{}, fmt.Errorf("text is not valid UTF-8")
	}
	var t TemplateText
	lit := 0 // start of the pending literal
	for i := 0; i < len(s); {
		if s[i] != '[' {
			i++
			continue
		}
		n := placeholderLen(s[i+1:])
		if n == 0 {
			i++
			continue
		}
		name := s[i+1 : i+1+n]
		if !Placeholder(name).Known() {
			return TemplateText{}, &UnknownPlaceholderError{Name: name}
		}
		if lit < i {
			t.parts = append(t.parts, textPart{lit: s[lit:i]})
		}
		t.parts = append(t.parts, textPart{ph: Placeholder(name)})
		i += n + 2
		lit = i
	}
	if lit < len(s) {
		t.parts = append(t.parts, textPart{lit: s[lit:]})
	}
	return t, nil
}

// placeholderLen returns the length of the name at the start of s when s
// starts with a placeholder name followed by "]", else 0.
func placeholderLen(s string) int {
	for i := 0; i < len(s) && i <= maxPlaceholderName; i++ {
		c := s[i]
		switch {
		case c == ']':
			return i
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case '0' <= c && c <= '9' && i > 0:
		default:
			return 0
		}
	}
	return 0
}

// Placeholders returns the placeholders t uses, in order of first use.
func (t TemplateText) Placeholders() []Placeholder {
	var out []Placeholder
	for _, p := range t.parts {
		if p.ph != "" && !slices.Contains(out, p.ph) {
			out = append(out, p.ph)
		}
	}
	return out
}

// Render returns the text with each placeholder replaced by value(p),
// passed through escape when escape is not nil (HTML). When value has none
// for a placeholder, Render returns that placeholder as missing and no text.
func (t TemplateText) Render(value func(Placeholder) (string, bool), escape func(string) string) (text string, missing Placeholder) {
	var b strings.Builder
	for _, p := range t.parts {
		if p.ph == "" {
			b.WriteString(p.lit)
			continue
		}
		v, ok := value(p.ph)
		if !ok {
			return "", p.ph
		}
		if escape != nil {
			v = escape(v)
		}
		b.WriteString(v)
	}
	return b.String(), ""
}

// Template is a message saved for reuse, for one channel. The fields a
// channel uses:
//   - email: Subject, Text (the text/plain part) and optionally HTML (the
//     text/html part; derived from Text when empty);
//   - sms: Text;
//   - push: Title, Subtitle, Text (the body), ImageURL, Link, and SMSText,
//     the SMS sent instead to members without the app (Text when empty).
//
// Every text field may use placeholders; ImageURL and Link are fixed URLs.
// Templates are archived, never deleted: past communications name them.
type Template struct {
	ID         int64      `json:"id"`
	TenantID   int64      `json:"-"`
	Name       string     `json:"name"`
	Channel    Channel    `json:"channel"`
	Subject    string     `json:"subject"`
	Text       string     `json:"text"`
	HTML       string     `json:"html"`
	Title      string     `json:"title"`
	Subtitle   string     `json:"subtitle"`
	ImageURL   string     `json:"image_url"`
	Link       string     `json:"link"`
	SMSText    string     `json:"sms_text"`
	CreatedBy  int64      `json:"created_by"`
	ArchivedAt *time.Time `json:"archived_at"`
	Version    int        `json:"version"`
	CreatedAt  time.Time  `json:"created_at"`
	UpdatedAt  time.Time  `json:"updated_at"`
}

// RowVersion implements Versioned.
func (t *Template) RowVersion() int { return t.Version }

// Limits of template fields. SMSMaxChars is Twilio's limit for one message
// body (it is split into segments by the carrier).
const (
	SMSMaxChars      = 1600
	EmailMaxBytes    = 256 << 10
	PushTitleMaxChar = 120
	PushBodyMaxChars = 1000
)

// templateField is one text field of a template with its rules.
type templateField struct {
	name string
	val  *string
	max  int // characters
}

func (t *Template) fields() []templateField {
	return []templateField{
		{"subject", &t.Subject, 250},
		{"text", &t.Text, EmailMaxBytes},
		{"html", &t.HTML, EmailMaxBytes},
		{"title", &t.Title, PushTitleMaxChar},
		{"subtitle", &t.Subtitle, PushTitleMaxChar},
		{"sms_text", &t.SMSText, SMSMaxChars},
	}
}

// used lists the fields a channel reads, the first ones required.
func (c Channel) templateFields() (required, optional []string) {
	switch c {
	case ChannelEmail:
		return []string{"subject", "text"}, []string{"html"}
	case ChannelSMS:
		return []string{"text"}, nil
	case ChannelPush:
		return []string{"title", "text"}, []string{"subtitle", "sms_text", "image_url", "link"}
	}
	return nil, nil
}

// Validate checks a template: its channel's required fields are set, the
// other channels' fields are empty, the texts parse and use only known
// placeholders (EINVALID naming the field and the placeholder), lengths fit
// the channel and the URLs are absolute http(s).
func (t *Template) Validate() error {
	t.Name = strings.TrimSpace(t.Name)
	if t.Name == "" || utf8.RuneCountInString(t.Name) > 100 {
		return Invalid("name", "Name is required, at most 100 characters.")
	}
	required, optional := t.Channel.templateFields()
	if required == nil {
		return Invalid("channel", "Channel must be email, sms or push.")
	}
	t.Subject = strings.TrimSpace(t.Subject)
	t.Title = strings.TrimSpace(t.Title)
	t.Subtitle = strings.TrimSpace(t.Subtitle)
	t.ImageURL, t.Link = strings.TrimSpace(t.ImageURL), strings.TrimSpace(t.Link)
	max := map[string]int{"text": map[Channel]int{ChannelEmail: EmailMaxBytes, ChannelSMS: SMSMaxChars, ChannelPush: PushBodyMaxChars}[t.Channel]}
	for _, f := range t.fields() {
		if *f.val == "" {
			if slices.Contains(required, f.name) {
				return Invalid(f.name, "A %s template needs %s.", t.Channel, f.name)
			}
			continue
		}
		if !slices.Contains(required, f.name) && !slices.Contains(optional, f.name) {
			return Invalid(f.name, "A %s template has no %s.", t.Channel, f.name)
		}
		if _, err := ParseTemplateText(*f.val); err != nil {
			return Invalid(f.name, "%s", capitalize(err.Error()+"."))
		}
		limit := cmpOr(max[f.name], f.max)
		if utf8.RuneCountInString(*f.val) > limit {
			return Invalid(f.name, "At most %d characters.", limit)
		}
	}
	if strings.ContainsAny(t.Subject+t.Title+t.Subtitle, "\r\n") {
		return Invalid("subject", "Subject, title and subtitle are one line.")
	}
	for _, u := range []struct {
		name string
		val  string
	}{{"image_url", t.ImageURL}, {"link", t.Link}} {
		if u.val == "" {
			continue
		}
		if !slices.Contains(optional, u.name) {
			return Invalid(u.name, "A %s template has no %s.", t.Channel, u.name)
		}
		p, err := url.Parse(u.val)
		if err != nil || (p.Scheme != "https" && p.Scheme != "http") || p.Host == "" || len(u.val) > 2000 {
			return Invalid(u.name, "Must be an absolute http(s) URL.")
		}
	}
	return nil
}

func cmpOr(a, b int) int {
	if a != 0 {
		return a
	}
	return b
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// TemplateUpdate holds the fields of a template that can change; the
// channel cannot.
type TemplateUpdate struct {
	Name     *string `json:"name"`
	Subject  *string `json:"subject"`
	Text     *string `json:"text"`
	HTML     *string `json:"html"`
	Title    *string `json:"title"`
	Subtitle *string `json:"subtitle"`
	ImageURL *string `json:"image_url"`
	Link     *string `json:"link"`
	SMSText  *string `json:"sms_text"`
}

// Apply copies the set fields of u onto t.
func (u *TemplateUpdate) Apply(t *Template) {
	for _, f := range []struct {
		dst *string
		src *string
	}{{&t.Name, u.Name}, {&t.Subject, u.Subject}, {&t.Text, u.Text}, {&t.HTML, u.HTML}, {&t.Title, u.Title},
		{&t.Subtitle, u.Subtitle}, {&t.ImageURL, u.ImageURL}, {&t.Link, u.Link}, {&t.SMSText, u.SMSText}} {
		if f.src != nil {
			*f.dst = *f.src
		}
	}
}

// TemplateService manages the tenant's message templates. Any operator may
// read them; admins and CRM managers write them.
type TemplateService interface {
	// CreateTemplate returns EINVALID naming the field (and the placeholder)
	// at fault, ECONFLICT when the name is taken.
	CreateTemplate(ctx context.Context, t *Template) error
	// FindTemplateByID returns ENOTFOUND if the template is not the
	// tenant's; archived templates are found (communications name them).
	FindTemplateByID(ctx context.Context, id int64) (*Template, error)
	// FindTemplates lists the tenant's templates not archived, by name;
	// channel "" lists every channel.
	FindTemplates(ctx context.Context, channel Channel) ([]*Template, error)
	// UpdateTemplate returns EPRECONDITION when version is stale.
	UpdateTemplate(ctx context.Context, id int64, version int, upd TemplateUpdate) (*Template, error)
	// ArchiveTemplate hides a template from lists and new sends.
	ArchiveTemplate(ctx context.Context, id int64, version int) (*Template, error)
}
