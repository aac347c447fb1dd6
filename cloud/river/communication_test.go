package river_test

import (
	"context"
	"fmt"
	"hash/crc32"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"varco.dev/cloud"
	"varco.dev/cloud/internal/gatewaytest"
	"varco.dev/cloud/internal/retry"
	"varco.dev/cloud/postgres"
	"varco.dev/cloud/twilio"
)

// noWait retries at once: these tests check what is sent, not when.
var noWait = retry.Policy{Attempts: 3, Sleep: func(context.Context, time.Duration) error { return nil }}

// communicator wires a real CommunicationService on the replica's pool to
// the loopback Twilio gateway, as varco-cloud serve does, and starts its
// background worker (which finishes the jobs a stopped replica released).
func communicator(t *testing.T, gw *gatewaytest.Twilio, configure func(*postgres.CommunicationService)) func(*replica) {
	return func(r *replica) {
		tr := &http.Transport{}
		s := postgres.NewCommunicationService(r.db)
		s.SMS = &twilio.Client{BaseURL: gw.URL, AccountSID: gw.AccountSID, AuthToken: gw.AuthToken, From: "+15005550006",
			HTTPClient: &http.Client{Transport: tr}, Retry: noWait, Timeout: time.Second}
		s.BatchSize = 4
		s.PollInterval = 100 * time.Millisecond
		if configure != nil {
			configure(s)
		}
		if err := s.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		// Cleanups run last in, first out: this one after the scheduler's.
		t.Cleanup(func() { s.Stop(); tr.CloseIdleConnections() })
		r.runner.Communicator, r.comms = s, s
	}
}

// person creates a member of the club, with a valid medical certificate
// (the blocking recipe leaves them alone), consents (channel → purposes)
// and, when membershipEnds is set, an annual membership ending then.
func (b *bundle) person(first, lang, mobile string, tags []string, membershipEnds cloud.Date, consents map[cloud.Channel][]cloud.Purpose) *cloud.Member {
	b.t.Helper()
	m := &cloud.Member{Kind: cloud.KindPerson, FirstName: first, LastName: "Rossi", Language: lang, Mobile: mobile, Tags: tags,
		Email: strings.ToLower(first) + "@x.test", MedicalCertExpiry: cloud.NewDate(2026, 1, 1)}
	for ch, ps := range consents {
		for _, p := range ps {
			m.Consents = append(m.Consents, cloud.Consent{Channel: ch, Purpose: p, Granted: true})
		}
	}
	members := postgres.NewMemberService(b.db)
	if err := members.CreateMember(b.admin, m); err != nil {
		b.t.Fatal(err)
	}
	if !membershipEnds.IsZero() {
		if err := members.CreateMembership(b.admin, &cloud.Membership{MemberID: m.ID, Name: "Annual", StartsOn: cloud.NewDate(2025, 1, 1),
			EndsOn: membershipEnds}); err != nil {
			b.t.Fatal(err)
		}
	}
	return m
}

func mobileOf(name string) string {
	return fmt.Sprintf("+39333%07d", crc32.ChecksumIEEE([]byte(name))%10_000_000)
}

func smsConsent(ps ...cloud.Purpose) map[cloud.Channel][]cloud.Purpose {
	return map[cloud.Channel][]cloud.Purpose{cloud.ChannelSMS: ps}
}

func (b *bundle) template(tmpl *cloud.Template) *cloud.Template {
	b.t.Helper()
	if err := postgres.NewTemplateService(b.db).CreateTemplate(b.admin, tmpl); err != nil {
		b.t.Fatal(err)
	}
	return tmpl
}

// smsOperation creates an active daily operation sending tmpl by SMS for
// the service purpose, at 10:00 from the 5th, to the members tagged tag.
func (b *bundle) smsOperation(tag string, tmpl *cloud.Template) *cloud.Schedule {
	b.t.Helper()
	tg := &cloud.Target{Name: "Tagged " + tag, Schedulable: true, TargetDefinition: cloud.TargetDefinition{DateMode: cloud.DateNone,
		Criteria: []cloud.Criterion{{Kind: cloud.CriterionTags, Tags: []string{tag}, Match: "any"}}}}
	if err := postgres.NewTargetService(b.db).CreateTarget(b.admin, tg); err != nil {
		b.t.Fatal(err)
	}
	sc := &cloud.Schedule{Name: "Course news " + tag, Active: true, TargetID: tg.ID,
		Timing: cloud.Timing{Recurrence: cloud.RecurDaily, SendTime: "10:00", StartsOn: cloud.NewDate(2025, 3, 5)},
		Body:   cloud.ScheduleBody{Kind: cloud.BodyCommunication, TemplateID: &tmpl.ID, Channel: cloud.DeliverySMS, Purpose: cloud.PurposeService}}
	if err := b.schedule.CreateSchedule(b.admin, sc); err != nil {
		b.t.Fatal(err)
	}
	return sc
}

// messageOf returns the one message (sent or skipped) of a member, from
// the member's send history.
func (b *bundle) messageOf(m *cloud.Member) *cloud.Message {
	b.t.Helper()
	msgs, err := postgres.NewCommunicationService(b.db).FindMessages(b.admin, cloud.MessageFilter{MemberID: m.ID})
	if err != nil {
		b.t.Fatal(err)
	}
	if len(msgs) != 1 {
		b.t.Fatalf("%s has %d messages, want 1: %+v", m.FirstName, len(msgs), msgs)
	}
	return msgs[0]
}

// bodiesTo groups the SMS the gateway delivered by phone number.
func bodiesTo(gw *gatewaytest.Twilio) map[string][]string {
	out := map[string][]string{}
	for _, d := range gw.Delivered() {
		out[d.To] = append(out[d.To], d.Body)
	}
	return out
}

// TestScheduledSMSTwoSchedulers runs a day of three operations on two
// scheduler instances (two River clients, two pools, each with a real
// CommunicationService sending through the loopback Twilio gateway): a
// daily SMS with placeholders to a target, the seeded "membership ending"
// recipe activated with a template, and the seeded daily blocking
// operation. Each consenting member gets exactly one SMS, rendered for
// them, although the gateway fails with a 500 and then times out after
// accepting; the others are recorded as skipped with the reason; the run
// history counts them; running the day again sends nothing; the blocking
// actions reach the turnstiles' outbox.
func TestScheduledSMSTwoSchedulers(t *testing.T) {
	b, block := setup(t, 3) // three members without a certificate: blocked
	gw := gatewaytest.NewTwilio(t)
	ends := cloud.NewDate(2025, 12, 31)
	yoga := []string{"yoga"}
	anna := b.person("Anna", "it", mobileOf("Anna"), yoga, ends, smsConsent(cloud.PurposeService))
	bruno := b.person("Bruno", "en", mobileOf("Bruno"), yoga, ends, smsConsent(cloud.PurposeService, cloud.PurposeMarketing))
	carla := b.person("Carla", "it", mobileOf("Carla"), yoga, ends, smsConsent(cloud.PurposeMarketing))
	// Without a mobile there is no SMS consent (members refuse one).
	dario := b.person("Dario", "it", "", yoga, ends, map[cloud.Channel][]cloud.Purpose{cloud.ChannelEmail: {cloud.PurposeService}})
	elena := b.person("Elena", "it", mobileOf("Elena"), yoga, ends, map[cloud.Channel][]cloud.Purpose{cloud.ChannelEmail: {cloud.PurposeService}})
	gino := b.person("Gino", "it", mobileOf("Gino"), yoga, cloud.Date{}, smsConsent(cloud.PurposeService)) // no membership to name
	// Franca is not in the yoga course; her membership ends in 15 days.
	franca := b.person("Franca", "it", mobileOf("Franca"), nil, cloud.NewDate(2025, 3, 20), smsConsent(cloud.PurposeService))

	news := b.smsOperation("yoga", b.template(&cloud.Template{Name: "Yoga", Channel: cloud.ChannelSMS,
		Text: "Ciao [FirstName] [LastName], il tuo [MembershipName] scade il [MembershipEndDate]. [ClubName]"}))

	// The recipe is activated with a template of its channel, and only so.
	renewal := b.recipe("membership_ending_15d")
	activate := func(tmpl int64) (*cloud.Schedule, error) {
		body := renewal.Body
		body.TemplateID = &tmpl
		return b.schedule.UpdateSchedule(b.admin, renewal.ID, renewal.Version, cloud.ScheduleUpdate{Active: new(true), Body: &body})
	}
	mail := b.template(&cloud.Template{Name: "Mail", Channel: cloud.ChannelEmail, Subject: "[ClubName]", Text: "Ciao"})
	for _, bad := range []int64{987654, mail.ID} {
		if _, err := activate(bad); cloud.ErrorCode(err) != cloud.EINVALID || cloud.ErrorField(err) != "body.template_id" {
			t.Errorf("activating the SMS recipe with template %d: %v", bad, err)
		}
	}
	renewal, err := activate(b.template(&cloud.Template{Name: "Renewal", Channel: cloud.ChannelSMS,
		Text: "[FirstName], il tuo abbonamento scade il [MembershipEndDate]: rinnova al [ClubName]!"}).ID)
	if err != nil {
		t.Fatalf("activating the recipe: %v", err)
	}

	var outboxBefore int64
	if err := b.db.Pool.QueryRow(context.Background(), `SELECT coalesce(max(id), 0) FROM access_outbox`).Scan(&outboxBefore); err != nil {
		t.Fatal(err)
	}
	// The gateway fails the first request with a 500, then accepts one and
	// never answers (the client times out): both are retried, nothing twice.
	gw.Push(gatewaytest.Fault{Status: http.StatusInternalServerError}, gatewaytest.Fault{Hang: true})
	b.clock.Set(time.Date(2025, 3, 5, 9, 30, 0, 0, time.UTC)) // 10:30 in Rome: all three are due
	r1 := b.replica("replica-1", communicator(t, gw, nil))
	r2 := b.replica("replica-2", communicator(t, gw, nil))
	for _, r := range []*replica{r1, r2, r1, r2} {
		if err := r.scheduler.Tick(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	day := cloud.NewDate(2025, 3, 5)
	got := map[int64]*cloud.ScheduleRun{}
	for len(got) < 3 {
		e := b.wait(func(e runEnd) bool { return e.res != nil && e.res.Status != cloud.RunRunning })
		if e.err != nil || e.res.Status != cloud.RunDone || e.res.Day != day {
			t.Fatalf("run of %d = %+v, %v", e.run.ScheduleID, e.res, e.err)
		}
		got[e.run.ScheduleID] = e.res
	}

	// Exactly one SMS per consenting member and operation, rendered.
	want := map[string][]string{
		anna.Mobile:   {"Ciao Anna Rossi, il tuo Annual scade il 31/12/2025. Club"},
		bruno.Mobile:  {"Ciao Bruno Rossi, il tuo Annual scade il 31 Dec 2025. Club"},
		franca.Mobile: {"Franca, il tuo abbonamento scade il 20/03/2025: rinnova al Club!"},
	}
	if delivered := bodiesTo(gw); fmt.Sprint(delivered) != fmt.Sprint(want) {
		t.Errorf("delivered %v\nwant      %v", delivered, want)
	}
	for _, d := range gw.Delivered() {
		if d.From != "+15005550006" || d.IdempotencyToken == "" {
			t.Errorf("delivered %+v", d)
		}
	}
	if n, d := len(gw.Requests()), len(gw.Delivered()); n != d+2 {
		t.Errorf("%d requests for %d messages, want the two faults retried once each", n, d)
	}
	// The others are in their send history as skipped, with the reason.
	for _, tc := range []struct {
		m      *cloud.Member
		status cloud.MessageStatus
		reason cloud.SkipReason
	}{
		{anna, cloud.MessageSent, ""},
		{bruno, cloud.MessageSent, ""},
		{carla, cloud.MessageSkipped, cloud.SkipNoConsent},
		{dario, cloud.MessageSkipped, cloud.SkipNoConsent},
		{elena, cloud.MessageSkipped, cloud.SkipNoConsent},
		{gino, cloud.MessageSkipped, cloud.SkipMissingValue},
		{franca, cloud.MessageSent, ""},
	} {
		m := b.messageOf(tc.m)
		if m.Status != tc.status || m.SkipReason != tc.reason || m.Channel != cloud.ChannelSMS || m.Purpose != cloud.PurposeService {
			t.Errorf("%s: %s %q (%s), want %s %q", tc.m.FirstName, m.Status, m.SkipReason, m.Error, tc.status, tc.reason)
		}
		if tc.status == cloud.MessageSent && (m.ProviderID == "" || m.To != tc.m.Mobile) {
			t.Errorf("%s's message = %+v", tc.m.FirstName, m)
		}
	}
	// The run history counts them, the skipped by reason.
	runs, err := b.schedule.FindScheduleRuns(b.admin, news.ID, cloud.Date{}, 0)
	if err != nil || len(runs) != 1 {
		t.Fatalf("history = %+v, %v", runs, err)
	}
	wantReasons := map[string]int{string(cloud.SkipNoConsent): 3, string(cloud.SkipMissingValue): 1}
	if r := runs[0]; r.Status != cloud.RunDone || r.Day != day || r.Members != 6 || r.Sent != 2 || r.Skipped != 4 || r.Failed != 0 ||
		fmt.Sprint(r.SkippedReasons) != fmt.Sprint(wantReasons) || r.Attempts != 1 || r.SenderID == 0 || *r.Body.TemplateID != *news.Body.TemplateID {
		t.Errorf("run = %+v, want 6 members, 2 sent, 4 skipped %v", r, wantReasons)
	}
	if r := got[renewal.ID]; r.Members != 1 || r.Sent != 1 || r.Skipped != 0 {
		t.Errorf("recipe run = %+v", r)
	}

	// The blocking recipe: one message+block action per blocked member,
	// each queued in the sync outbox by the trigger, in its transaction.
	if r := got[block.ID]; r.Created != 3 {
		t.Errorf("blocking run = %+v", r)
	}
	b.exactlyOneEach()
	rows, err := b.db.Pool.Query(context.Background(), `SELECT DISTINCT o.member_id FROM access_outbox o
		JOIN crm_actions a ON a.tenant_id = o.tenant_id AND a.member_id = o.member_id
		JOIN action_types ty ON ty.tenant_id = a.tenant_id AND ty.id = a.type_id AND ty.access_action = 'message_block'
		WHERE o.id > $1 ORDER BY 1`, outboxBefore)
	if err != nil {
		t.Fatal(err)
	}
	var queued []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		queued = append(queued, id)
	}
	if rows.Err() != nil || fmt.Sprint(queued) != fmt.Sprint(b.members) {
		t.Errorf("members queued for the turnstiles %v, want %v (%v)", queued, b.members, rows.Err())
	}

	// The same day again: ticks enqueue nothing, the runs executed again
	// (a re-enqueued job) return the finished run, and nothing is sent.
	for _, r := range []*replica{r1, r2} {
		if err := r.scheduler.Tick(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range []*replica{r1, r2} {
		for id := range got {
			res, err := r.runner.ExecuteRun(context.Background(), postgres.DueRun{TenantID: news.TenantID, ScheduleID: id, Day: day})
			if err != nil || res.Status != cloud.RunDone || res.Attempts != 1 {
				t.Errorf("again %d = %+v, %v", id, res, err)
			}
		}
	}
	// A direct send may not take an operation's dedup key.
	_, err = r1.comms.CreateCommunication(b.admin, cloud.SendRequest{TemplateID: *news.Body.TemplateID, Purpose: cloud.PurposeService,
		MemberIDs: []int64{anna.ID}, DedupKey: cloud.DedupKey(news.ID, day.AddDays(1))})
	if cloud.ErrorCode(err) != cloud.EINVALID || cloud.ErrorField(err) != "dedup_key" {
		t.Errorf("direct send with an operation's key: %v", err)
	}
	if n := len(gw.Delivered()); n != 3 {
		t.Errorf("%d SMS delivered after running the day again, want 3", n)
	}
	b.exactlyOneEach()
}

// TestScheduledSMSCrashMidRun stops a scheduler while its run is sending
// (its context cancelled mid-request, as a process going away; the gateway
// accepts that request after the client left). The other replica retries
// the run and its communications worker finishes what the first left
// pending: every member gets exactly one SMS, and the run history counts
// all of them as sent.
func TestScheduledSMSCrashMidRun(t *testing.T) {
	b, _ := setup(t, 0)
	gw := gatewaytest.NewTwilio(t)
	var consenting []*cloud.Member
	for i := range 10 {
		name := fmt.Sprintf("Socio%02d", i)
		consenting = append(consenting, b.person(name, "it", mobileOf(name), []string{"spinning"}, cloud.NewDate(2025, 12, 31),
			smsConsent(cloud.PurposeService)))
	}
	news := b.smsOperation("spinning", b.template(&cloud.Template{Name: "Spinning", Channel: cloud.ChannelSMS, Text: "Ciao [FirstName]"}))

	// The third request holds until replica 1 has stopped.
	crash, resume := make(chan struct{}), make(chan struct{})
	var once sync.Once
	requests := 0
	var mu sync.Mutex
	gw.OnRequest = func(string) {
		mu.Lock()
		requests++
		third := requests == 3
		mu.Unlock()
		if third {
			once.Do(func() { close(crash) })
			<-resume
		}
	}
	b.clock.Set(time.Date(2025, 3, 5, 9, 30, 0, 0, time.UTC))
	r1 := b.replica("crashing", communicator(t, gw, func(s *postgres.CommunicationService) { s.Concurrency = 1 }))
	if err := r1.scheduler.Tick(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-crash:
	case <-time.After(time.Minute):
		t.Fatal("no third request in a minute")
	}
	stopped, cancel := context.WithCancel(context.Background())
	cancel() // no grace: the run in progress is cancelled
	if err := r1.scheduler.Stop(stopped); err != nil {
		t.Fatal(err)
	}
	r1.comms.Stop() // the whole process is gone
	close(resume)
	if e := b.wait(func(e runEnd) bool { return e.run.ScheduleID == news.ID && e.err != nil }); e.res == nil || e.res.Status != cloud.RunFailed {
		t.Fatalf("interrupted run = %+v, %v", e.res, e.err)
	}

	var pendingLeft int
	b.replica("taking-over", communicator(t, gw, nil))
	e := b.wait(func(e runEnd) bool {
		return e.run.ScheduleID == news.ID && e.res != nil && e.res.Status == cloud.RunDone
	})
	if e.res.Attempts < 2 {
		t.Fatalf("resumed run = %+v", e.res)
	}
	// The released job's pending messages are sent by a worker soon after.
	deadline := time.Now().Add(30 * time.Second)
	for {
		if err := b.db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM messages WHERE status = 'pending'`).Scan(&pendingLeft); err != nil {
			t.Fatal(err)
		}
		if pendingLeft == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	delivered := bodiesTo(gw)
	for _, m := range consenting {
		if got := delivered[m.Mobile]; len(got) != 1 || got[0] != "Ciao "+m.FirstName {
			t.Errorf("%s got %q", m.FirstName, got)
		}
		if msg := b.messageOf(m); msg.Status != cloud.MessageSent {
			t.Errorf("%s's message = %+v", m.FirstName, msg)
		}
	}
	if len(delivered) != len(consenting) || pendingLeft != 0 {
		t.Errorf("%d members got an SMS, %d messages pending; want %d, 0", len(delivered), pendingLeft, len(consenting))
	}
	// Two attempts, two jobs; the held request was sent again, under its
	// idempotency key, by the worker that took the first job over.
	var jobs int
	if err := b.db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM communications WHERE dedup_key = $1`,
		cloud.DedupKey(news.ID, e.res.Day)).Scan(&jobs); err != nil {
		t.Fatal(err)
	}
	if n := len(gw.Requests()); jobs != 2 || n != len(consenting)+1 {
		t.Errorf("%d jobs, %d requests; want 2 jobs, %d requests", jobs, n, len(consenting)+1)
	}
	runs, err := b.schedule.FindScheduleRuns(b.admin, news.ID, cloud.Date{}, 0)
	if err != nil || len(runs) != 1 {
		t.Fatalf("history = %+v, %v", runs, err)
	}
	if r := runs[0]; r.Status != cloud.RunDone || r.Members != 10 || r.Sent != 10 || r.Skipped != 0 || r.Failed != 0 {
		t.Errorf("run = %+v, want the 10 members sent", r)
	}
}
