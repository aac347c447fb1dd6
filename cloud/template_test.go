package cloud_test

import (
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"varco.dev/cloud"
)

// parseCases drive the parser test and seed its fuzz test.
var parseCases = []struct {
	in      string
	render  string // with values "<Name>" for every placeholder
	unknown string // the unknown placeholder's name, when parsing fails
}{
	{"", "", ""},
	{"plain text", "plain text", ""},
	{"Hi [FirstName]!", "Hi <FirstName>!", ""},
	{"[FirstName][LastName]", "<FirstName><LastName>", ""},
	{"[ClubName]: ends [MembershipEndDate].", "<ClubName>: ends <MembershipEndDate>.", ""},
	{"[50% off] today", "[50% off] today", ""},
	{"a [ b ] c", "a [ b ] c", ""},
	{"[[FirstName]]", "[<FirstName>]", ""},
	{"unclosed [FirstName", "unclosed [FirstName", ""},
	{"[]", "[]", ""},
	{"[1st]", "[1st]", ""},
	{"trailing [", "trailing [", ""},
	{"Ciao [FirstName], è tutto ok ✓", "Ciao <FirstName>, è tutto ok ✓", ""},
	{"Hi [Firstname]", "", "Firstname"},
	{"Hi [FirstName] [Nickname]", "", "Nickname"},
	{"[A1]", "", "A1"},
}

func TestParseTemplateText(t *testing.T) {
	t.Parallel()
	for _, tc := range parseCases {
		tt, err := cloud.ParseTemplateText(tc.in)
		if tc.unknown != "" {
			var ue *cloud.UnknownPlaceholderError
			if !errors.As(err, &ue) || ue.Name != tc.unknown {
				t.Errorf("Parse(%q) = %v, want unknown placeholder %s", tc.in, err, tc.unknown)
			}
			continue
		}
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.in, err)
			continue
		}
		got, missing := tt.Render(func(p cloud.Placeholder) (string, bool) { return "<" + string(p) + ">", true }, nil)
		if got != tc.render || missing != "" {
			t.Errorf("Render(%q) = %q (missing %q), want %q", tc.in, got, missing, tc.render)
		}
	}
	if _, err := cloud.ParseTemplateText("bad \xff utf-8"); err == nil {
		t.Error("invalid UTF-8 parsed")
	}
}

func TestRenderMissingAndEscape(t *testing.T) {
	t.Parallel()
	tt, err := cloud.ParseTemplateText("<b>[FirstName]</b> ends [MembershipEndDate]")
	if err != nil {
		t.Fatal(err)
	}
	if got := tt.Placeholders(); len(got) != 2 || got[0] != cloud.PhFirstName || got[1] != cloud.PhMembershipEndDate {
		t.Errorf("Placeholders = %v", got)
	}
	vals := map[cloud.Placeholder]string{cloud.PhFirstName: "<Tom & Jerry>"}
	lookup := func(p cloud.Placeholder) (string, bool) { v, ok := vals[p]; return v, ok }
	if out, missing := tt.Render(lookup, nil); out != "" || missing != cloud.PhMembershipEndDate {
		t.Errorf("Render = %q, missing %q; want the end date missing", out, missing)
	}
	vals[cloud.PhMembershipEndDate] = "31/12/2025"
	out, _ := tt.Render(lookup, func(s string) string { return strings.NewReplacer("<", "&lt;", ">", "&gt;", "&", "&amp;").Replace(s) })
	if want := "<b>&lt;Tom &amp; Jerry&gt;</b> ends 31/12/2025"; out != want {
		t.Errorf("escaped render = %q, want %q", out, want)
	}
}

// FuzzParseTemplateText checks that the parser never panics, that what it
// accepts renders without losing text, and that a text with no "[" renders
// unchanged.
func FuzzParseTemplateText(f *testing.F) {
	for _, tc := range parseCases {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tt, err := cloud.ParseTemplateText(s)
		if err != nil {
			var ue *cloud.UnknownPlaceholderError
			if utf8.ValidString(s) && (!errors.As(err, &ue) || !strings.Contains(s, "["+ue.Name+"]")) {
				t.Fatalf("Parse(%q) = %v", s, err)
			}
			return
		}
		// Rendering each placeholder as itself gives the input back.
		out, missing := tt.Render(func(p cloud.Placeholder) (string, bool) { return "[" + string(p) + "]", true }, nil)
		if missing != "" || out != s {
			t.Fatalf("Render(Parse(%q)) = %q", s, out)
		}
		for _, p := range tt.Placeholders() {
			if !p.Known() {
				t.Fatalf("Parse(%q) accepted unknown %s", s, p)
			}
		}
	})
}

func TestTemplateValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		tmpl  cloud.Template
		field string // "" when valid
		msg   string // a part of the message
	}{
		{"email", cloud.Template{Name: "Renewal", Channel: cloud.ChannelEmail, Subject: "[ClubName]", Text: "Hi [FirstName]"}, "", ""},
		{"sms", cloud.Template{Name: "x", Channel: cloud.ChannelSMS, Text: "Hi [FirstName], ends [MembershipEndDate]"}, "", ""},
		{"push", cloud.Template{Name: "x", Channel: cloud.ChannelPush, Title: "Hi", Text: "b", ImageURL: "https://x.test/i.png", Link: "https://x.test/"}, "", ""},
		{"unknown placeholder", cloud.Template{Name: "x", Channel: cloud.ChannelSMS, Text: "Hi [FristName]"}, "text", "[FristName]"},
		{"unknown in html", cloud.Template{Name: "x", Channel: cloud.ChannelEmail, Subject: "s", Text: "t", HTML: "<p>[Foo]</p>"}, "html", "[Foo]"},
		{"no name", cloud.Template{Channel: cloud.ChannelSMS, Text: "x"}, "name", ""},
		{"bad channel", cloud.Template{Name: "x", Channel: "fax", Text: "x"}, "channel", ""},
		{"email without subject", cloud.Template{Name: "x", Channel: cloud.ChannelEmail, Text: "x"}, "subject", ""},
		{"sms with subject", cloud.Template{Name: "x", Channel: cloud.ChannelSMS, Text: "x", Subject: "s"}, "subject", ""},
		{"sms too long", cloud.Template{Name: "x", Channel: cloud.ChannelSMS, Text: strings.Repeat("a", 1601)}, "text", "1600"},
		{"push without title", cloud.Template{Name: "x", Channel: cloud.ChannelPush, Text: "b"}, "title", ""},
		{"push bad link", cloud.Template{Name: "x", Channel: cloud.ChannelPush, Title: "t", Text: "b", Link: "javascript:alert(1)"}, "link", ""},
		{"sms with image", cloud.Template{Name: "x", Channel: cloud.ChannelSMS, Text: "b", ImageURL: "https://x.test/i.png"}, "image_url", ""},
		{"subject on two lines", cloud.Template{Name: "x", Channel: cloud.ChannelEmail, Subject: "a\nBcc: x@y", Text: "t"}, "subject", ""},
	} {
		err := tc.tmpl.Validate()
		if tc.field == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		if cloud.ErrorCode(err) != cloud.EINVALID || cloud.ErrorField(err) != tc.field || !strings.Contains(cloud.ErrorMessage(err), tc.msg) {
			t.Errorf("%s: err = %v, want EINVALID on %s with %q", tc.name, err, tc.field, tc.msg)
		}
	}
}

func TestPlanMessage(t *testing.T) {
	t.Parallel()
	consent := func(ch cloud.Channel) cloud.Consent {
		return cloud.Consent{Channel: ch, Purpose: cloud.PurposeService, Granted: true}
	}
	anna := func() *cloud.Member {
		return &cloud.Member{ID: 7, Kind: cloud.KindPerson, FirstName: "Anna", LastName: "Rossi", Email: "anna@x.test", Mobile: "+393331234567",
			Language: "it", Consents: []cloud.Consent{consent(cloud.ChannelEmail), consent(cloud.ChannelSMS), consent(cloud.ChannelPush)}}
	}
	rome, _ := time.LoadLocation("Europe/Rome")
	full := func(m *cloud.Member) *cloud.RecipientData {
		return &cloud.RecipientData{Member: m, ClubName: "Palestra <Roma>",
			Membership:  &cloud.Membership{Name: "Annual", StartsOn: cloud.NewDate(2025, 1, 1), EndsOn: cloud.NewDate(2025, 12, 31)},
			Instalment:  &cloud.Instalment{AmountCents: 4990, Currency: "EUR", DueOn: cloud.NewDate(2025, 4, 1)},
			Booking:     &cloud.Booking{Title: "Spinning", StartsAt: time.Date(2025, 3, 5, 17, 0, 0, 0, time.UTC), EndsAt: time.Date(2025, 3, 5, 18, 0, 0, 0, time.UTC)},
			BookingSite: "Centro", BookingZone: rome, PushTokens: []string{"tok-1"}}
	}
	sms := &cloud.Template{Channel: cloud.ChannelSMS, Text: "Ciao [FirstName], [ReservationTitle] il [ReservationDate] alle [ReservationTimeStart]; rata [InstalmentAmount]"}
	email := &cloud.Template{Channel: cloud.ChannelEmail, Subject: "[ClubName]: scade il [MembershipEndDate]", Text: "Ciao [FirstName]"}
	push := &cloud.Template{Channel: cloud.ChannelPush, Title: "Ciao [FirstName]", Subtitle: "[ClubName]", Text: "Scade il [MembershipEndDate]",
		Link: "https://club.test/renew", SMSText: "SMS: scade il [MembershipEndDate]"}
	for _, tc := range []struct {
		name    string
		tmpl    *cloud.Template
		d       cloud.Delivery
		r       func() *cloud.RecipientData
		skip    cloud.SkipReason
		channel cloud.Channel
		check   func(t *testing.T, o *cloud.Outgoing)
	}{
		{"sms renders in the site's zone", sms, cloud.DeliverySMS, func() *cloud.RecipientData { return full(anna()) }, "", cloud.ChannelSMS, func(t *testing.T, o *cloud.Outgoing) {
			if want := "Ciao Anna, Spinning il 05/03/2025 alle 18:00; rata 49,90 EUR"; o.Text != want || o.To != "+393331234567" {
				t.Errorf("sms = %q to %s, want %q", o.Text, o.To, want)
			}
		}},
		{"email escapes html, not the subject", email, cloud.DeliveryEmail, func() *cloud.RecipientData {
			r := full(anna())
			r.Member.FirstName = "<Anna>"
			return r
		}, "", cloud.ChannelEmail, func(t *testing.T, o *cloud.Outgoing) {
			if o.Subject != "Palestra <Roma>: scade il 31/12/2025" || !strings.Contains(o.HTML, "<p>Ciao &lt;Anna&gt;</p>") || o.Text != "Ciao <Anna>" {
				t.Errorf("email = %+v", o)
			}
		}},
		{"english dates", email, cloud.DeliveryEmail, func() *cloud.RecipientData {
			r := full(anna())
			r.Member.Language = "en"
			return r
		}, "", cloud.ChannelEmail, func(t *testing.T, o *cloud.Outgoing) {
			if !strings.HasSuffix(o.Subject, "31 Dec 2025") {
				t.Errorf("subject = %q", o.Subject)
			}
		}},
		{"push", push, cloud.DeliveryPushOrSMS, func() *cloud.RecipientData { return full(anna()) }, "", cloud.ChannelPush, func(t *testing.T, o *cloud.Outgoing) {
			if o.To != "tok-1" || o.Title != "Ciao Anna" || o.Subtitle != "Palestra <Roma>" || o.Link != "https://club.test/renew" {
				t.Errorf("push = %+v", o)
			}
		}},
		{"push falls back to sms without the app", push, cloud.DeliveryPushOrSMS, func() *cloud.RecipientData {
			r := full(anna())
			r.PushTokens = nil
			return r
		}, "", cloud.ChannelSMS, func(t *testing.T, o *cloud.Outgoing) {
			if o.Text != "SMS: scade il 31/12/2025" || o.To != "+393331234567" {
				t.Errorf("fallback = %+v", o)
			}
		}},
		{"push only, no app", push, cloud.DeliveryPush, func() *cloud.RecipientData {
			r := full(anna())
			r.PushTokens = nil
			return r
		}, cloud.SkipNoApp, "", nil},
		{"fallback needs sms consent", push, cloud.DeliveryPushOrSMS, func() *cloud.RecipientData {
			r := full(anna())
			r.PushTokens = nil
			r.Member.Consents = []cloud.Consent{consent(cloud.ChannelPush)}
			return r
		}, cloud.SkipNoConsent, "", nil},
		{"no consent for the purpose", sms, cloud.DeliverySMS, func() *cloud.RecipientData {
			r := full(anna())
			r.Member.Consents = []cloud.Consent{{Channel: cloud.ChannelSMS, Purpose: cloud.PurposeMarketing, Granted: true}}
			return r
		}, cloud.SkipNoConsent, "", nil},
		{"consent withdrawn", sms, cloud.DeliverySMS, func() *cloud.RecipientData {
			r := full(anna())
			r.Member.Consents = []cloud.Consent{{Channel: cloud.ChannelSMS, Purpose: cloud.PurposeService, Granted: false}}
			return r
		}, cloud.SkipNoConsent, "", nil},
		{"no e-mail address", email, cloud.DeliveryEmail, func() *cloud.RecipientData {
			r := full(anna())
			r.Member.Email = ""
			return r
		}, cloud.SkipNoAddress, "", nil},
		{"no membership end date", email, cloud.DeliveryEmail, func() *cloud.RecipientData {
			r := full(anna())
			r.Membership = nil
			return r
		}, cloud.SkipMissingValue, "", nil},
		{"no booking", sms, cloud.DeliverySMS, func() *cloud.RecipientData {
			r := full(anna())
			r.Booking = nil
			return r
		}, cloud.SkipMissingValue, "", nil},
		{"archived", sms, cloud.DeliverySMS, func() *cloud.RecipientData {
			r := full(anna())
			r.Member.ArchivedAt = new(time.Now())
			return r
		}, cloud.SkipArchived, "", nil},
	} {
		o, skip := cloud.PlanMessage(tc.tmpl, tc.d, cloud.PurposeService, tc.r())
		if tc.skip != "" {
			if skip == nil || skip.Reason != tc.skip || skip.MemberID != 7 || skip.Detail == "" {
				t.Errorf("%s: skip = %+v, outgoing %+v; want %s", tc.name, skip, o, tc.skip)
			}
			continue
		}
		if skip != nil || o == nil || o.Channel != tc.channel {
			t.Errorf("%s: skipped %+v, outgoing %+v; want %s", tc.name, skip, o, tc.channel)
			continue
		}
		tc.check(t, o)
	}
	// The missing value is named.
	r := full(anna())
	r.Membership = nil
	if _, skip := cloud.PlanMessage(email, cloud.DeliveryEmail, cloud.PurposeService, r); !strings.Contains(skip.Detail, "[MembershipEndDate]") {
		t.Errorf("detail = %q", skip.Detail)
	}
}

func TestIdempotencyKey(t *testing.T) {
	t.Parallel()
	k := cloud.IdempotencyKey(1, "op:3:2025-03-04", 7, cloud.ChannelSMS)
	if len(k) != 32 || k != cloud.IdempotencyKey(1, "op:3:2025-03-04", 7, cloud.ChannelSMS) {
		t.Fatalf("key %q is not stable", k)
	}
	for _, other := range []string{
		cloud.IdempotencyKey(2, "op:3:2025-03-04", 7, cloud.ChannelSMS),
		cloud.IdempotencyKey(1, "op:3:2025-03-05", 7, cloud.ChannelSMS),
		cloud.IdempotencyKey(1, "op:3:2025-03-04", 8, cloud.ChannelSMS),
		cloud.IdempotencyKey(1, "op:3:2025-03-04", 7, cloud.ChannelEmail),
	} {
		if other == k {
			t.Errorf("key collision %s", k)
		}
	}
}
