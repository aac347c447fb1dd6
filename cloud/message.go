package cloud

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"html"
	"strconv"
	"strings"
	"time"
)

// Delivery is how a communication reaches its members: on one channel, or
// by app push with an SMS instead to members without the app.
type Delivery string

// Deliveries. The template's channel is the delivery's, push for
// DeliveryPushOrSMS.
const (
	DeliveryEmail     Delivery = "email"
	DeliverySMS       Delivery = "sms"
	DeliveryPush      Delivery = "push"
	DeliveryPushOrSMS Delivery = "push_or_sms"
)

// ParseDelivery checks a delivery given by a client or a scheduled
// operation; "" means the template's channel.
func ParseDelivery(s string, tmpl Channel) (Delivery, error) {
	d := Delivery(s)
	if d == "" {
		d = Delivery(tmpl)
	}
	switch d {
	case DeliveryEmail, DeliverySMS, DeliveryPush, DeliveryPushOrSMS:
	default:
		return "", Invalid("channel", "Channel must be email, sms, push or push_or_sms.")
	}
	if d.TemplateChannel() != tmpl {
		return "", Invalid("channel", "The template is for %s, not %s.", tmpl, d)
	}
	return d, nil
}

// TemplateChannel is the channel of the templates d sends.
func (d Delivery) TemplateChannel() Channel {
	if d == DeliveryPushOrSMS {
		return ChannelPush
	}
	return Channel(d)
}

// SkipReason says why a member was not sent a message. Skips are recorded in
// the member's history like messages.
type SkipReason string

// Skip reasons.
const (
	SkipNoConsent    SkipReason = "no_consent"    // no consent for the purpose on the channel
	SkipNoAddress    SkipReason = "no_address"    // no e-mail address or mobile number
	SkipNoApp        SkipReason = "no_app"        // push without the app, and no SMS instead
	SkipMissingValue SkipReason = "missing_value" // the template uses a value the member lacks
	SkipArchived     SkipReason = "archived"      // the member is archived
	SkipNotFound     SkipReason = "not_found"     // no such member in the tenant
	SkipDuplicate    SkipReason = "duplicate"     // already sent (or skipped) for the same dedup key
)

// Skip is a member left out of a communication, and why.
type Skip struct {
	MemberID int64      `json:"member_id"`
	Reason   SkipReason `json:"reason"`
	Detail   string     `json:"detail"`
}

// RecipientData is everything a message to one member is rendered from, read in
// one query per batch of members.
type RecipientData struct {
	Member   *Member
	ClubName string
	// Membership is the member's membership ending last that is not
	// cancelled; Instalment the earliest one neither paid nor cancelled;
	// Booking the next one still booked, at BookingSite (whose time zone
	// is BookingZone). Each is nil when there is none.
	Membership  *Membership
	Instalment  *Instalment
	Booking     *Booking
	BookingSite string
	BookingZone *time.Location
	// PushTokens are the member's app installations (FCM registration
	// tokens), newest first; none means the member has not got the app.
	PushTokens []string
}

// dateFormats are how dates read in each member language.
var dateFormats = map[string]string{"it": "02/01/2006", "en": "2 Jan 2006"}

func (r *RecipientData) date(d Date) (string, bool) {
	if d.IsZero() {
		return "", false
	}
	f, ok := dateFormats[r.Member.Language]
	if !ok {
		f = time.DateOnly
	}
	return d.Time().Format(f), true
}

func nonEmpty(s string) (string, bool) { return s, s != "" }

// Value returns the value of placeholder p for this recipient, false when
// the member has none.
func (r *RecipientData) Value(p Placeholder) (string, bool) {
	m := r.Member
	person := m.Kind == KindPerson
	switch p {
	case PhFirstName:
		if !person {
			return nonEmpty(m.CompanyName)
		}
		return nonEmpty(m.FirstName)
	case PhLastName:
		if !person {
			return "", false
		}
		return nonEmpty(m.LastName)
	case PhFullName:
		return nonEmpty(m.DisplayName())
	case PhCompanyName:
		return nonEmpty(m.CompanyName)
	case PhEmail:
		return nonEmpty(m.Email)
	case PhMobile:
		return nonEmpty(m.Mobile)
	case PhBirthDate:
		return r.date(m.BirthDate)
	case PhMedicalCertExpiry:
		return r.date(m.MedicalCertExpiry)
	case PhClubName:
		return nonEmpty(r.ClubName)
	}
	if ms := r.Membership; ms != nil {
		switch p {
		case PhMembershipName:
			return nonEmpty(ms.Name)
		case PhMembershipStartDate:
			return r.date(ms.StartsOn)
		case PhMembershipEndDate:
			return r.date(ms.EndsOn)
		}
	}
	if in := r.Instalment; in != nil {
		switch p {
		case PhInstalmentDueDate:
			return r.date(in.DueOn)
		case PhInstalmentAmount:
			return formatAmount(in.AmountCents, in.Currency, r.Member.Language), true
		}
	}
	if b := r.Booking; b != nil {
		loc := r.BookingZone
		if loc == nil {
			loc = time.UTC
		}
		switch p {
		case PhReservationTitle:
			return nonEmpty(b.Title)
		case PhReservationDate:
			return r.date(DateOf(b.StartsAt.In(loc)))
		case PhReservationTimeStart:
			return b.StartsAt.In(loc).Format("15:04"), true
		case PhReservationTimeEnd:
			return b.EndsAt.In(loc).Format("15:04"), true
		case PhReservationSite:
			return nonEmpty(r.BookingSite)
		}
	}
	return "", false
}

// formatAmount writes cents as "49,90 EUR" (Italian) or "49.90 EUR".
func formatAmount(cents int64, currency, lang string) string {
	s := strconv.FormatInt(cents/100, 10) + "." + fmt.Sprintf("%02d", cents%100)
	if lang == "it" {
		s = strings.Replace(s, ".", ",", 1)
	}
	return s + " " + currency
}

// Outgoing is one message rendered for one member, ready for a sender. It
// is stored (as the message's payload) before it is sent, so that a send
// resumed after a crash sends the same bytes under the same key.
type Outgoing struct {
	Channel Channel `json:"channel"`
	// To is the e-mail address, the mobile number or the push token.
	To     string `json:"to"`
	ToName string `json:"to_name,omitempty"`
	// E-mail.
	Subject string `json:"subject,omitempty"`
	HTML    string `json:"html,omitempty"`
	// Text is the e-mail's text part, the SMS, or the push body.
	Text string `json:"text"`
	// Push.
	Title    string `json:"title,omitempty"`
	Subtitle string `json:"subtitle,omitempty"`
	ImageURL string `json:"image_url,omitempty"`
	Link     string `json:"link,omitempty"`
	// Language of the member (the e-mail's Content-Language).
	Language string `json:"language,omitempty"`
}

// PlanMessage decides what one member is sent by delivery d for purpose p,
// rendering tmpl, or why the member is skipped: archived, no consent for p
// on the channel, no address, no app (push without SMS instead), or a value
// the template uses that the member lacks. It is pure: the preview and the
// sender share it.
func PlanMessage(tmpl *Template, d Delivery, p Purpose, r *RecipientData) (*Outgoing, *Skip) {
	m := r.Member
	skip := func(reason SkipReason, format string, args ...any) (*Outgoing, *Skip) {
		return nil, &Skip{MemberID: m.ID, Reason: reason, Detail: fmt.Sprintf(format, args...)}
	}
	if m.ArchivedAt != nil {
		return skip(SkipArchived, "The member is archived.")
	}
	ch := d.TemplateChannel()
	fallback := false
	switch {
	case ch == ChannelPush && m.HasConsent(ChannelPush, p) && len(r.PushTokens) > 0:
	case ch == ChannelPush && d == DeliveryPushOrSMS:
		ch, fallback = ChannelSMS, true
	case ch == ChannelPush && !m.HasConsent(ChannelPush, p):
		return skip(SkipNoConsent, "No consent to push messages for %s.", p)
	case ch == ChannelPush:
		return skip(SkipNoApp, "The member has not got the app.")
	}
	if !m.HasConsent(ch, p) {
		if fallback {
			return skip(SkipNoConsent, "Without the app, and no consent to SMS for %s.", p)
		}
		return skip(SkipNoConsent, "No consent to %s for %s.", ch, p)
	}
	o := &Outgoing{Channel: ch, ToName: m.DisplayName(), Language: m.Language}
	switch ch {
	case ChannelEmail:
		o.To = m.Email
	case ChannelSMS:
		o.To = m.Mobile
	case ChannelPush:
		o.To = r.PushTokens[0]
	}
	if o.To == "" {
		return skip(SkipNoAddress, "No %s.", map[Channel]string{ChannelEmail: "e-mail address", ChannelSMS: "mobile number"}[ch])
	}
	type field struct {
		src    string
		dst    *string
		escape func(string) string
	}
	var fields []field
	switch {
	case fallback:
		fields = []field{{cmpOrStr(tmpl.SMSText, tmpl.Text), &o.Text, nil}}
	case ch == ChannelEmail:
		htmlSrc := tmpl.HTML
		if htmlSrc == "" {
			htmlSrc = TextToHTML(tmpl.Text)
		}
		fields = []field{{tmpl.Subject, &o.Subject, nil}, {tmpl.Text, &o.Text, nil}, {htmlSrc, &o.HTML, html.EscapeString}}
	case ch == ChannelSMS:
		fields = []field{{tmpl.Text, &o.Text, nil}}
	case ch == ChannelPush:
		fields = []field{{tmpl.Title, &o.Title, nil}, {tmpl.Subtitle, &o.Subtitle, nil}, {tmpl.Text, &o.Text, nil}}
		o.ImageURL, o.Link = tmpl.ImageURL, tmpl.Link
	}
	for _, f := range fields {
		t, err := ParseTemplateText(f.src)
		if err != nil {
			return skip(SkipMissingValue, "The template cannot be read: %v.", err) // Validate refuses such templates
		}
		out, missing := t.Render(r.Value, f.escape)
		if missing != "" {
			return skip(SkipMissingValue, "No value for [%s].", missing)
		}
		*f.dst = out
	}
	return o, nil
}

func cmpOrStr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// TextToHTML turns a plain text into a minimal HTML body: escaped,
// paragraphs on blank lines, line breaks kept. Placeholders pass through
// (they are escaped when rendered).
func TextToHTML(text string) string {
	var b strings.Builder
	b.WriteString("<!DOCTYPE html>\n<html><body>\n")
	for para := range strings.SplitSeq(strings.ReplaceAll(text, "\r\n", "\n"), "\n\n") {
		if strings.TrimSpace(para) == "" {
			continue
		}
		b.WriteString("<p>")
		b.WriteString(strings.ReplaceAll(html.EscapeString(para), "\n", "<br>\n"))
		b.WriteString("</p>\n")
	}
	b.WriteString("</body></html>\n")
	return b.String()
}

// IdempotencyKey is the key of the one message a member gets for a dedup
// key on a channel. It is stored with the message before the message is
// sent and given to the gateway on every attempt (Twilio's idempotency
// token, FCM's message id and collapse key, the e-mail's Message-ID), so a
// send whose outcome is unknown is retried under the same key. It is a
// hash, so that member ids do not leak to gateways.
func IdempotencyKey(tenantID int64, dedupKey string, memberID int64, ch Channel) string {
	h := sha256.Sum256(fmt.Appendf(nil, "varco/message/v1\x00%d\x00%s\x00%d\x00%s", tenantID, dedupKey, memberID, ch))
	return hex.EncodeToString(h[:16])
}
