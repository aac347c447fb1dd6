package postgres_test

import (
	"context"
	"fmt"
	"hash/crc32"
	"net/http"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"varco.dev/cloud"
	"varco.dev/cloud/fcm"
	"varco.dev/cloud/internal/gatewaytest"
	"varco.dev/cloud/internal/retry"
	"varco.dev/cloud/postgres"
	"varco.dev/cloud/smtp"
	"varco.dev/cloud/twilio"
)

// gateways are the loopback servers a messaging test sends to.
type gateways struct {
	smtp   *gatewaytest.SMTP
	twilio *gatewaytest.Twilio
	fcm    *gatewaytest.FCM
}

// noWait retries at once: the tests check what is retried, not how long.
var noWait = retry.Policy{Attempts: 3, Sleep: func(context.Context, time.Duration) error { return nil }}

func newGateways(t testing.TB) *gateways {
	return &gateways{smtp: gatewaytest.NewSMTP(t), twilio: gatewaytest.NewTwilio(t), fcm: gatewaytest.NewFCM(t)}
}

// service returns a CommunicationService wired to the gateways, with its
// own HTTP transport closed at the end of the test.
func (g *gateways) service(t testing.TB, db *postgres.DB) *postgres.CommunicationService {
	t.Helper()
	tr := &http.Transport{}
	hc := &http.Client{Transport: tr}
	mail := &smtp.Sender{Addr: g.smtp.Addr, From: mailFrom, TLS: smtp.TLSNone, Retry: noWait}
	t.Cleanup(func() { _ = mail.Close(); tr.CloseIdleConnections() })
	s := postgres.NewCommunicationService(db)
	s.Email = mail
	s.SMS = &twilio.Client{BaseURL: g.twilio.URL, AccountSID: g.twilio.AccountSID, AuthToken: g.twilio.AuthToken, From: "+15005550006",
		HTTPClient: hc, Retry: noWait, Timeout: 5 * time.Second}
	s.Push = &fcm.Client{BaseURL: g.fcm.URL, ProjectID: g.fcm.ProjectID, AccessToken: fcm.StaticToken(g.fcm.AccessToken), HTTPClient: hc,
		Retry: noWait, Timeout: 5 * time.Second}
	s.UnsubscribeURL = "https://crm.club.test/api/v1/unsubscribe"
	s.BatchSize = 4
	return s
}

var mailFrom = mail.Address{Name: "Club A", Address: "noreply@club-a.test"}

// recipient creates a member with the given consents (channel → purposes).
func (b *bundle) recipient(t testing.TB, first string, consents map[cloud.Channel][]cloud.Purpose) *cloud.Member {
	t.Helper()
	m := &cloud.Member{Kind: cloud.KindPerson, FirstName: first, LastName: "Rossi", Language: "it",
		Email: strings.ToLower(first) + "@x.test", Mobile: fmt.Sprintf("+39333%07d", crc32.ChecksumIEEE([]byte(first))%10_000_000)}
	for ch, ps := range consents {
		for _, p := range ps {
			m.Consents = append(m.Consents, cloud.Consent{Channel: ch, Purpose: p, Granted: true})
		}
	}
	if err := b.members.CreateMember(b.admin, m); err != nil {
		t.Fatalf("CreateMember: %v", err)
	}
	return m
}

func (b *bundle) template(t testing.TB, tmpl *cloud.Template) *cloud.Template {
	t.Helper()
	if err := postgres.NewTemplateService(b.db).CreateTemplate(b.admin, tmpl); err != nil {
		t.Fatalf("CreateTemplate: %v", err)
	}
	return tmpl
}

func service(ps ...cloud.Purpose) []cloud.Purpose {
	return append([]cloud.Purpose{cloud.PurposeService}, ps...)
}

func TestTemplates(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ts := postgres.NewTemplateService(b.db)
	tmpl := &cloud.Template{Name: "Renewal", Channel: cloud.ChannelSMS, Text: "Ciao [FirstName], scade il [MembershipEndDate]"}
	if err := ts.CreateTemplate(b.admin, tmpl); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		tmpl  cloud.Template
		code  string
		field string
	}{
		{cloud.Template{Name: "Bad", Channel: cloud.ChannelSMS, Text: "Ciao [Nome]"}, cloud.EINVALID, "text"},
		{cloud.Template{Name: "renewal", Channel: cloud.ChannelSMS, Text: "x"}, cloud.ECONFLICT, "name"},
	} {
		err := ts.CreateTemplate(b.admin, &tc.tmpl)
		if cloud.ErrorCode(err) != tc.code || cloud.ErrorField(err) != tc.field {
			t.Errorf("CreateTemplate(%s) = %v, want %s on %s", tc.tmpl.Name, err, tc.code, tc.field)
		}
	}
	opCtx, _ := b.operator(t, "op@a.test", cloud.RoleOperator)
	if err := ts.CreateTemplate(opCtx, &cloud.Template{Name: "x", Channel: cloud.ChannelSMS, Text: "x"}); cloud.ErrorCode(err) != cloud.EFORBIDDEN {
		t.Errorf("operator created a template: %v", err)
	}
	if _, err := ts.FindTemplateByID(opCtx, tmpl.ID); err != nil {
		t.Errorf("operator cannot read a template: %v", err)
	}
	txt := "Ciao [FirstName]!"
	if _, err := ts.UpdateTemplate(b.admin, tmpl.ID, 2, cloud.TemplateUpdate{Text: &txt}); cloud.ErrorCode(err) != cloud.EPRECONDITION {
		t.Errorf("stale update: %v", err)
	}
	bad := "[Boh]"
	if _, err := ts.UpdateTemplate(b.admin, tmpl.ID, 1, cloud.TemplateUpdate{Text: &bad}); cloud.ErrorCode(err) != cloud.EINVALID ||
		!strings.Contains(cloud.ErrorMessage(err), "[Boh]") {
		t.Errorf("update with an unknown placeholder: %v", err)
	}
	up, err := ts.UpdateTemplate(b.admin, tmpl.ID, 1, cloud.TemplateUpdate{Text: &txt})
	if err != nil || up.Version != 2 || up.Text != txt {
		t.Fatalf("UpdateTemplate = %+v, %v", up, err)
	}
	if _, err := ts.ArchiveTemplate(b.admin, tmpl.ID, 2); err != nil {
		t.Fatal(err)
	}
	if list, err := ts.FindTemplates(b.admin, ""); err != nil || len(list) != 0 {
		t.Errorf("FindTemplates after archive = %d, %v", len(list), err)
	}
	// Another tenant sees nothing of it.
	other := &cloud.Operator{Email: "admin@b.test", Name: "B"}
	if err := b.tenants.CreateTenant(context.Background(), &cloud.Tenant{Name: "Club B", Slug: "club-b"}, other, "correct horse battery"); err != nil {
		t.Fatal(err)
	}
	bctx := cloud.NewContextWithOperator(context.Background(), other)
	if _, err := ts.FindTemplateByID(bctx, tmpl.ID); cloud.ErrorCode(err) != cloud.ENOTFOUND {
		t.Errorf("tenant B found A's template: %v", err)
	}
	if _, err := ts.UpdateTemplate(bctx, tmpl.ID, 3, cloud.TemplateUpdate{Text: &txt}); cloud.ErrorCode(err) != cloud.ENOTFOUND {
		t.Errorf("tenant B edited A's template: %v", err)
	}
}

// TestCommunicate sends through the Communicator each channel's messages to
// real loopback gateways, checks consent, fallback and skips, and that a
// second call with the same dedup key sends nothing.
func TestCommunicate(t *testing.T) {
	t.Parallel()
	b := setup(t)
	g := newGateways(t)
	s := g.service(t, b.db)
	anna := b.recipient(t, "Anna", map[cloud.Channel][]cloud.Purpose{cloud.ChannelEmail: service(), cloud.ChannelSMS: service(), cloud.ChannelPush: service()})
	bruno := b.recipient(t, "Bruno", map[cloud.Channel][]cloud.Purpose{cloud.ChannelSMS: service(), cloud.ChannelPush: service()})
	carla := b.recipient(t, "Carla", map[cloud.Channel][]cloud.Purpose{cloud.ChannelSMS: {cloud.PurposeMarketing}})
	if err := s.RegisterPushToken(b.admin, anna.ID, "tok-anna", "android"); err != nil {
		t.Fatal(err)
	}
	if err := b.members.CreateMembership(b.admin, &cloud.Membership{MemberID: anna.ID, Name: "Annual", StartsOn: cloud.NewDate(2025, 1, 1),
		EndsOn: cloud.NewDate(2025, 12, 31)}); err != nil {
		t.Fatal(err)
	}
	push := b.template(t, &cloud.Template{Name: "Push", Channel: cloud.ChannelPush, Title: "Ciao [FirstName]", Subtitle: "[ClubName]",
		Text: "A presto", Link: "https://club.test/app", SMSText: "Ciao [FirstName], ti aspettiamo al [ClubName]"})
	email := b.template(t, &cloud.Template{Name: "Mail", Channel: cloud.ChannelEmail, Subject: "[ClubName]", Text: "Scade il [MembershipEndDate]"})
	ids := []int64{anna.ID, bruno.ID, carla.ID, 999999}

	res, err := s.Communicate(context.Background(), cloud.CommunicationRequest{TenantID: b.tenantID, OperatorID: b.adminOp.ID,
		TemplateID: push.ID, Channel: string(cloud.DeliveryPushOrSMS), Purpose: "service", MemberIDs: ids, DedupKey: "op:1:2025-03-04"})
	if err != nil {
		t.Fatal(err)
	}
	if res != (cloud.CommunicationResult{Sent: 2, Skipped: 2, Failed: 0}) {
		t.Errorf("push result = %+v, want 2 sent (Anna by push, Bruno by SMS), 2 skipped", res)
	}
	if d := g.fcm.Delivered(); len(d) != 1 || d[0].Token != "tok-anna" || d[0].Notification.Title != "Ciao Anna" {
		t.Errorf("push deliveries %+v", d)
	}
	if d := g.twilio.Delivered(); len(d) != 1 || d[0].Body != "Ciao Bruno, ti aspettiamo al Club A" || d[0].To != bruno.Mobile {
		t.Errorf("sms deliveries %+v", d)
	}

	// The same dedup key again: nobody is sent anything twice.
	res, err = s.Communicate(context.Background(), cloud.CommunicationRequest{TenantID: b.tenantID, OperatorID: b.adminOp.ID,
		TemplateID: push.ID, Channel: string(cloud.DeliveryPushOrSMS), Purpose: "service", MemberIDs: ids, DedupKey: "op:1:2025-03-04"})
	if err != nil || res != (cloud.CommunicationResult{Skipped: 4}) {
		t.Errorf("repeat = %+v, %v; want all skipped", res, err)
	}
	if len(g.fcm.Delivered()) != 1 || len(g.twilio.Delivered()) != 1 {
		t.Error("a repeated dedup key sent again")
	}

	// E-mail: Anna has a membership end date; Bruno has no e-mail consent.
	res, err = s.Communicate(context.Background(), cloud.CommunicationRequest{TenantID: b.tenantID, OperatorID: b.adminOp.ID,
		TemplateID: email.ID, Purpose: "service", MemberIDs: []int64{anna.ID, bruno.ID}, DedupKey: "op:2:2025-03-04"})
	if err != nil || res != (cloud.CommunicationResult{Sent: 1, Skipped: 1}) {
		t.Fatalf("email = %+v, %v", res, err)
	}
	mails := g.smtp.Mails()
	if len(mails) != 1 || !strings.Contains(string(mails[0].Data), "List-Unsubscribe: <https://crm.club.test/api/v1/unsubscribe/") {
		t.Fatalf("mails %d: %s", len(mails), mails)
	}

	// The history of each member says what happened.
	hist, err := s.FindMessages(b.admin, cloud.MessageFilter{MemberID: carla.ID})
	if err != nil || len(hist) != 1 || hist[0].Status != cloud.MessageSkipped || hist[0].SkipReason != cloud.SkipNoConsent {
		t.Errorf("Carla's history = %+v, %v", hist, err)
	}
	hist, err = s.FindMessages(b.admin, cloud.MessageFilter{MemberID: anna.ID})
	if err != nil || len(hist) != 2 || hist[0].Channel != cloud.ChannelEmail || hist[0].Status != cloud.MessageSent ||
		hist[0].ProviderID == "" || hist[1].Channel != cloud.ChannelPush || hist[1].To != "app" {
		t.Errorf("Anna's history = %+v, %v", hist, err)
	}

	// One-click unsubscribe withdraws the e-mail consent for the purpose.
	var token string
	if err := b.db.Pool.QueryRow(context.Background(), `SELECT unsubscribe_token FROM messages WHERE member_id = $1 AND channel = 'email'`, anna.ID).Scan(&token); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(mails[0].Data), token) {
		t.Error("the e-mail does not carry its unsubscribe token")
	}
	for range 2 { // idempotent
		if err := s.Unsubscribe(context.Background(), token); err != nil {
			t.Fatal(err)
		}
	}
	if m, _ := b.members.FindMemberByID(b.admin, anna.ID); m.HasConsent(cloud.ChannelEmail, cloud.PurposeService) || !m.HasConsent(cloud.ChannelSMS, cloud.PurposeService) {
		t.Errorf("consents after unsubscribe: %+v", m.Consents)
	}
	if err := s.Unsubscribe(context.Background(), "nope"); cloud.ErrorCode(err) != cloud.ENOTFOUND {
		t.Errorf("unknown token: %v", err)
	}
}

func TestCommunicateNotConfigured(t *testing.T) {
	t.Parallel()
	b := setup(t)
	s := postgres.NewCommunicationService(b.db)
	m := b.recipient(t, "Anna", map[cloud.Channel][]cloud.Purpose{cloud.ChannelSMS: service()})
	tmpl := b.template(t, &cloud.Template{Name: "S", Channel: cloud.ChannelSMS, Text: "Ciao"})
	res, err := s.Communicate(context.Background(), cloud.CommunicationRequest{TenantID: b.tenantID, OperatorID: b.adminOp.ID,
		TemplateID: tmpl.ID, Purpose: "service", MemberIDs: []int64{m.ID}, DedupKey: "k"})
	if err != nil || res.Failed != 1 {
		t.Fatalf("result %+v, %v", res, err)
	}
	hist, _ := s.FindMessages(b.admin, cloud.MessageFilter{MemberID: m.ID})
	if len(hist) != 1 || hist[0].Error != "sms gateway not configured" {
		t.Errorf("history %+v", hist)
	}
	// Bad requests.
	for _, req := range []cloud.CommunicationRequest{
		{TenantID: b.tenantID, OperatorID: b.adminOp.ID, TemplateID: tmpl.ID, Purpose: "service", MemberIDs: []int64{m.ID}},
		{TenantID: b.tenantID, OperatorID: b.adminOp.ID, TemplateID: tmpl.ID, MemberIDs: []int64{m.ID}, DedupKey: "x"},
		{TenantID: b.tenantID, OperatorID: b.adminOp.ID, TemplateID: tmpl.ID, Purpose: "spam", MemberIDs: []int64{m.ID}, DedupKey: "x"},
		{TenantID: b.tenantID, OperatorID: b.adminOp.ID, TemplateID: tmpl.ID, Channel: "email", Purpose: "service", MemberIDs: []int64{m.ID}, DedupKey: "x"},
		{TenantID: b.tenantID + 1, OperatorID: b.adminOp.ID, TemplateID: tmpl.ID, Purpose: "service", MemberIDs: []int64{m.ID}, DedupKey: "x"},
	} {
		if _, err := s.Communicate(context.Background(), req); cloud.ErrorCode(err) != cloud.EINVALID {
			t.Errorf("Communicate(%+v) = %v, want EINVALID", req, err)
		}
	}
}

// TestCommunicationResumes stops the worker between batches and, in another
// test, in the middle of a send whose gateway accepted the message and never
// answered; a new worker (the next process) finishes the job and every
// member gets exactly one SMS.
func TestCommunicationResumes(t *testing.T) {
	t.Parallel()
	for _, midSend := range []bool{false, true} {
		t.Run(fmt.Sprintf("midSend=%v", midSend), func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			g := newGateways(t)
			var ids []int64
			for i := range 10 {
				ids = append(ids, b.recipient(t, fmt.Sprintf("M%02d", i), map[cloud.Channel][]cloud.Purpose{cloud.ChannelSMS: service()}).ID)
			}
			tmpl := b.template(t, &cloud.Template{Name: "S", Channel: cloud.ChannelSMS, Text: "Ciao [FirstName]"})

			first := g.service(t, b.db)
			stopped := make(chan struct{})
			var once sync.Once
			stop := func() { once.Do(func() { close(stopped) }) }
			if midSend {
				g.twilio.Push(gatewaytest.Fault{}, gatewaytest.Fault{}, gatewaytest.Fault{Hang: true})
				var n int
				var mu sync.Mutex
				g.twilio.OnRequest = func(string) {
					mu.Lock()
					defer mu.Unlock()
					if n++; n == 3 {
						stop() // the third SMS is in the gateway's hands
					}
				}
			} else {
				first.OnBatch = func(_ int64, processed int) {
					if processed >= 8 {
						stop()
					}
				}
			}
			if err := first.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			c, err := first.CreateCommunication(b.admin, cloud.SendRequest{TemplateID: tmpl.ID, Purpose: cloud.PurposeService, MemberIDs: ids})
			if err != nil {
				first.Stop()
				t.Fatal(err)
			}
			<-stopped
			first.Stop()
			g.twilio.OnRequest = nil

			second := g.service(t, b.db)
			done := make(chan *cloud.Communication, 1)
			second.OnJobEnd = func(c *cloud.Communication) { done <- c }
			if err := second.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			defer second.Stop()
			var end *cloud.Communication
			select {
			case end = <-done:
			case <-time.After(time.Minute): // a guard against a hang, not a timing assertion
				t.Fatal("the job did not end")
			}
			if end.ID != c.ID || end.Status != cloud.CommDone || end.Sent != 10 || end.Pending != 0 || end.Failed != 0 {
				t.Errorf("job %+v", end)
			}
			delivered := g.twilio.Delivered()
			seen := map[string]bool{}
			for _, d := range delivered {
				if seen[d.To] {
					t.Errorf("%s got two SMS", d.To)
				}
				seen[d.To] = true
			}
			if len(delivered) != 10 {
				t.Errorf("delivered %d SMS, want 10", len(delivered))
			}
			if midSend {
				// The messages in flight when the worker stopped (at least the
				// one the gateway kept) were sent again, under the same key.
				reqs := g.twilio.Requests()
				count := map[string]int{}
				for _, r := range reqs {
					count[r]++
				}
				retried := 0
				for _, n := range count {
					if n > 1 {
						retried++
					}
				}
				if retried == 0 || len(reqs) != 10+retried {
					t.Errorf("requests %d, keys retried %d; want 10 + the retried ones", len(reqs), retried)
				}
			}
		})
	}
}

func TestPreviewAndCRM(t *testing.T) {
	t.Parallel()
	b := setup(t)
	g := newGateways(t)
	s := g.service(t, b.db)
	anna := b.recipient(t, "Anna", map[cloud.Channel][]cloud.Purpose{cloud.ChannelSMS: service()})
	bruno := b.recipient(t, "Bruno", map[cloud.Channel][]cloud.Purpose{cloud.ChannelSMS: service()})
	carla := b.recipient(t, "Carla", nil)
	if _, err := b.members.ArchiveMember(b.admin, bruno.ID, 1); err != nil {
		t.Fatal(err)
	}
	tmpl := b.template(t, &cloud.Template{Name: "S", Channel: cloud.ChannelSMS, Text: "Ciao [FirstName]"})
	pv, err := s.PreviewCommunication(b.admin, cloud.SendRequest{TemplateID: tmpl.ID, Purpose: cloud.PurposeService,
		MemberIDs: []int64{anna.ID, bruno.ID, carla.ID, anna.ID, 424242}}, 5)
	if err != nil {
		t.Fatal(err)
	}
	if pv.Members != 4 || pv.Channels[cloud.ChannelSMS] != 1 || pv.Skipped != 3 || pv.SkipCounts[cloud.SkipArchived] != 1 ||
		pv.SkipCounts[cloud.SkipNoConsent] != 1 || pv.SkipCounts[cloud.SkipNotFound] != 1 || len(pv.Messages) != 1 || pv.Messages[0].Text != "Ciao Anna" {
		t.Errorf("preview %+v", pv)
	}
	if len(g.twilio.Requests()) != 0 {
		t.Error("a preview sent something")
	}
	opCtx, _ := b.operator(t, "op@a.test", cloud.RoleOperator)
	if _, err := s.PreviewCommunication(opCtx, cloud.SendRequest{TemplateID: tmpl.ID, Purpose: cloud.PurposeService, MemberIDs: []int64{anna.ID}}, 5); cloud.ErrorCode(err) != cloud.EFORBIDDEN {
		t.Errorf("an operator previewed a send: %v", err)
	}

	c, err := s.CreateCRMCommunication(b.admin, cloud.CRMRequest{TypeID: b.typeID(t, "Reception check"), Text: "Please call about the renewal",
		MemberIDs: []int64{anna.ID, bruno.ID, carla.ID, 424242}})
	if err != nil {
		t.Fatal(err)
	}
	if c.Kind != cloud.CommCRM || c.Status != cloud.CommDone || c.Actions != 2 || c.SkipCounts[cloud.SkipArchived] != 1 || c.SkipCounts[cloud.SkipNotFound] != 1 {
		t.Errorf("crm communication %+v", c)
	}
	acts, err := b.actions.FindActions(b.admin, cloud.ActionFilter{MemberID: carla.ID})
	if err != nil || len(acts) != 1 || acts[0].Description != "Please call about the renewal" {
		t.Errorf("Carla's actions %+v, %v", acts, err)
	}
}
