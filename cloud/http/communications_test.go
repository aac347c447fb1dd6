package http_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"varco.dev/cloud"
)

func TestTemplatesAPI(t *testing.T) {
	t.Parallel()
	e := setup(t)
	a := e.tenant("club-a")
	status, b, h := a.do("POST", "/api/v1/templates", map[string]any{"name": "Renewal", "channel": "sms", "text": "Ciao [FirstName], scade il [MembershipEndDate]"})
	if status != 201 || h.Get("ETag") != `"1"` || !strings.HasPrefix(h.Get("Location"), "/api/v1/templates/") {
		t.Fatalf("create = %d %s %v", status, b, h)
	}
	var tmpl cloud.Template
	a.must("GET", h.Get("Location"), nil, 200, &tmpl)
	path := fmt.Sprintf("/api/v1/templates/%d", tmpl.ID)

	for _, tc := range []struct {
		name   string
		method string
		path   string
		body   any
		hdr    []string
		status int
		field  string
		msg    string
	}{
		{"unknown placeholder", "POST", "/api/v1/templates", map[string]any{"name": "Bad", "channel": "sms", "text": "Ciao [Nome]"}, nil, 400, "text", "[Nome]"},
		{"unknown placeholder in the subject", "POST", "/api/v1/templates", map[string]any{"name": "Bad", "channel": "email", "subject": "[Club]", "text": "x"}, nil, 400, "subject", "[Club]"},
		{"name taken", "POST", "/api/v1/templates", map[string]any{"name": "renewal", "channel": "sms", "text": "x"}, nil, 409, "name", ""},
		{"unknown field", "POST", "/api/v1/templates", map[string]any{"name": "x", "channel": "sms", "text": "x", "bcc": "x"}, nil, 400, "bcc", ""},
		{"invalid JSON", "POST", "/api/v1/templates", `{"name": `, nil, 400, "", ""},
		{"patch without version", "PATCH", path, map[string]any{"text": "Ciao"}, nil, 428, "", ""},
		{"patch stale", "PATCH", path, map[string]any{"text": "Ciao"}, []string{"If-Match", `"7"`}, 412, "version", ""},
		{"patch unknown placeholder", "PATCH", path, map[string]any{"text": "[X]"}, []string{"If-Match", `"1"`}, 400, "text", "[X]"},
		{"bad channel filter", "GET", "/api/v1/templates?channel=fax", nil, nil, 400, "channel", ""},
	} {
		status, b, _ := a.do(tc.method, tc.path, tc.body, tc.hdr...)
		if status != tc.status {
			t.Errorf("%s: %d %s, want %d", tc.name, status, b, tc.status)
			continue
		}
		if e := decodeErr(t, b); e.Error.Field != tc.field || !strings.Contains(e.Error.Message, tc.msg) {
			t.Errorf("%s: error %+v, want field %q with %q", tc.name, e.Error, tc.field, tc.msg)
		}
	}
	status, b, h = a.do("PATCH", path, map[string]any{"text": "Ciao [FirstName]!"}, "If-Match", `"1"`)
	if status != 200 || h.Get("ETag") != `"2"` {
		t.Fatalf("patch = %d %s", status, b)
	}
	var list struct{ Items []cloud.Template }
	a.must("GET", "/api/v1/templates?channel=sms", nil, 200, &list)
	if len(list.Items) != 1 || list.Items[0].Text != "Ciao [FirstName]!" {
		t.Errorf("list %+v", list.Items)
	}
	var ph struct{ Items []cloud.PlaceholderInfo }
	a.must("GET", "/api/v1/templates/placeholders", nil, 200, &ph)
	if len(ph.Items) != len(cloud.Placeholders) {
		t.Errorf("placeholders %d", len(ph.Items))
	}
	if status, b, _ := a.do("POST", path+"/archive", nil, "If-Match", `"2"`); status != 200 {
		t.Fatalf("archive = %d %s", status, b)
	}
	a.must("GET", "/api/v1/templates", nil, 200, &list)
	if len(list.Items) != 0 {
		t.Errorf("archived template listed")
	}
}

func TestCommunicationsAPI(t *testing.T) {
	t.Parallel()
	e := setup(t)
	a := e.tenant("club-a")
	f := populate(t, a, "A") // Anna A: SMS consent for service
	var tmpl, member struct {
		ID int64 `json:"id"`
	}
	a.must("POST", "/api/v1/templates", map[string]any{"name": "S", "channel": "sms", "text": "Ciao [FirstName], ci vediamo il [ReservationDate] alle [ReservationTimeStart]"}, 201, &tmpl)
	a.must("POST", "/api/v1/members", map[string]any{"kind": "person", "first_name": "Bruno", "last_name": "A"}, 201, &member)
	send := map[string]any{"template_id": tmpl.ID, "purpose": "service", "member_ids": []int64{f.memberID, member.ID}}

	var pv cloud.Preview
	a.must("POST", "/api/v1/communications/preview?first=3", send, 200, &pv)
	if pv.Members != 2 || pv.Channels[cloud.ChannelSMS] != 1 || pv.SkipCounts[cloud.SkipNoConsent] != 1 || len(pv.Messages) != 1 ||
		pv.Messages[0].Text != "Ciao Anna, ci vediamo il 05/03/2025 alle 18:00" {
		t.Errorf("preview %+v", pv)
	}
	// A target as the recipients: the members it selects today.
	var tg, foreign struct {
		ID int64 `json:"id"`
	}
	a.must("POST", "/api/v1/targets", map[string]any{"name": "SMS ok", "criteria": []map[string]any{{"kind": "consent", "channel": "sms", "purpose": "service"}}}, 201, &tg)
	a.must("POST", "/api/v1/communications/preview?first=3", map[string]any{"template_id": tmpl.ID, "purpose": "service", "target_id": tg.ID}, 200, &pv)
	if pv.Members != 1 || pv.Channels[cloud.ChannelSMS] != 1 {
		t.Errorf("preview of a target %+v", pv)
	}
	clubB := e.tenant("club-b")
	clubB.must("POST", "/api/v1/targets", map[string]any{"name": "B", "criteria": []map[string]any{{"kind": "membership_active"}}}, 201, &foreign)
	for _, bad := range []struct {
		body  any
		field string
	}{
		{map[string]any{"template_id": tmpl.ID, "purpose": "service", "target_id": foreign.ID}, "target_id"},
		{map[string]any{"template_id": tmpl.ID, "purpose": "service", "target_id": -1}, "target_id"},
		{map[string]any{"template_id": tmpl.ID, "member_ids": []int64{f.memberID}}, "purpose"},
		{map[string]any{"template_id": tmpl.ID, "purpose": "spam", "member_ids": []int64{f.memberID}}, "purpose"},
		{map[string]any{"template_id": tmpl.ID, "purpose": "service", "member_ids": []int64{}}, "member_ids"},
		{map[string]any{"template_id": tmpl.ID, "purpose": "service", "channel": "email", "member_ids": []int64{f.memberID}}, "channel"},
		{map[string]any{"template_id": 999999, "purpose": "service", "member_ids": []int64{f.memberID}}, "template_id"},
		{map[string]any{"template_id": tmpl.ID, "purpose": "service", "target_id": 3, "member_ids": []int64{f.memberID}}, "target_id"},
	} {
		status, b, _ := a.do("POST", "/api/v1/communications", bad.body)
		if status != 400 || decodeErr(t, b).Error.Field != bad.field {
			t.Errorf("POST %v = %d %s, want 400 on %s", bad.body, status, b, bad.field)
		}
	}

	status, b, h := a.do("POST", "/api/v1/communications", send)
	if status != 202 || !strings.HasPrefix(h.Get("Location"), "/api/v1/communications/") {
		t.Fatalf("create = %d %s", status, b)
	}
	select {
	case <-e.sends:
	case <-time.After(time.Minute): // a guard against a hang, not a timing assertion
		t.Fatal("the send did not end")
	}
	var c cloud.Communication
	a.must("GET", h.Get("Location"), nil, 200, &c)
	if c.Status != cloud.CommDone || c.Sent != 1 || c.Skipped != 1 || c.SkipCounts[cloud.SkipNoConsent] != 1 || c.Members != 2 {
		t.Errorf("communication %+v", c)
	}
	if d := e.twilio.Delivered(); len(d) != 1 || d[0].Body != "Ciao Anna, ci vediamo il 05/03/2025 alle 18:00" {
		t.Errorf("delivered %+v", d)
	}
	var hist struct{ Items []cloud.Message }
	a.must("GET", fmt.Sprintf("/api/v1/members/%d/messages", f.memberID), nil, 200, &hist)
	if len(hist.Items) != 1 || hist.Items[0].Status != cloud.MessageSent || hist.Items[0].ProviderID == "" || hist.Items[0].Channel != cloud.ChannelSMS {
		t.Errorf("Anna's history %+v", hist.Items)
	}
	a.must("GET", fmt.Sprintf("/api/v1/members/%d/messages", member.ID), nil, 200, &hist)
	if len(hist.Items) != 1 || hist.Items[0].Status != cloud.MessageSkipped || hist.Items[0].SkipReason != cloud.SkipNoConsent {
		t.Errorf("Bruno's history %+v", hist.Items)
	}
	a.must("GET", fmt.Sprintf("/api/v1/communications/%d/messages", c.ID), nil, 200, &hist)
	if len(hist.Items) != 2 {
		t.Errorf("communication messages %+v", hist.Items)
	}
	var list struct{ Items []cloud.Communication }
	a.must("GET", "/api/v1/communications", nil, 200, &list)
	if len(list.Items) != 1 || list.Items[0].Sent != 1 {
		t.Errorf("list %+v", list.Items)
	}

	var crm cloud.Communication
	a.must("POST", "/api/v1/communications/crm", map[string]any{"type_id": f.typeID, "text": "Call about the renewal",
		"member_ids": []int64{f.memberID, member.ID}}, 201, &crm)
	if crm.Kind != cloud.CommCRM || crm.Actions != 2 {
		t.Errorf("crm %+v", crm)
	}
	if status, b, _ := a.do("POST", fmt.Sprintf("/api/v1/members/%d/push-tokens", member.ID), map[string]any{"token": "tok", "platform": "ios"}); status != 204 {
		t.Errorf("push token = %d %s", status, b)
	}
	if status, _, _ := a.do("POST", fmt.Sprintf("/api/v1/members/%d/push-tokens", member.ID), map[string]any{"token": "tok", "platform": "symbian"}); status != 400 {
		t.Errorf("bad platform = %d", status)
	}
	// An operator reads the history but does not send.
	a.must("POST", "/api/v1/operators", map[string]any{"email": "op2@a.test", "name": "Op", "role": "operator", "password": password}, 201, nil)
	op := e.login("op2@a.test", password)
	if status, _, _ := op.do("POST", "/api/v1/communications", send); status != 403 {
		t.Errorf("operator send = %d, want 403", status)
	}
	op.must("GET", fmt.Sprintf("/api/v1/members/%d/messages", f.memberID), nil, 200, nil)
	// The unsubscribe link needs no token but a real one.
	anon := &client{e: e}
	if status, _, _ := anon.do("POST", "/api/v1/unsubscribe/0123456789abcdef0123456789abcdef", "List-Unsubscribe=One-Click"); status != 404 {
		t.Errorf("unknown unsubscribe token = %d", status)
	}
}

// TestMessagingIsolation checks every messaging route with an id against
// another tenant's ids and hostile strings, and body references across
// tenants.
func TestMessagingIsolation(t *testing.T) {
	t.Parallel()
	e := setup(t)
	a := e.tenant("club-a")
	b := e.tenant("club-b")
	fa := populate(t, a, "A")
	populate(t, b, "B")
	var tmpl struct {
		ID int64 `json:"id"`
	}
	a.must("POST", "/api/v1/templates", map[string]any{"name": "secret A", "channel": "sms", "text": "secret A [FirstName]"}, 201, &tmpl)
	var c cloud.Communication
	a.must("POST", "/api/v1/communications", map[string]any{"template_id": tmpl.ID, "purpose": "service", "member_ids": []int64{fa.memberID}}, 202, &c)
	<-e.sends
	ids := map[string]int64{"templates": tmpl.ID, "communications": c.ID, "members": fa.memberID}
	for _, rt := range []struct{ method, path string }{
		{"GET", "/api/v1/templates/%s"}, {"PATCH", "/api/v1/templates/%s"}, {"POST", "/api/v1/templates/%s/archive"},
		{"GET", "/api/v1/communications/%s"}, {"GET", "/api/v1/communications/%s/messages"},
		{"GET", "/api/v1/members/%s/messages"}, {"POST", "/api/v1/members/%s/push-tokens"},
	} {
		seg := strings.SplitN(strings.TrimPrefix(rt.path, "/api/v1/"), "/%s", 2)[0]
		for _, id := range []string{fmt.Sprint(ids[seg]), "0", "-1", "abc", "1;DROP TABLE messages", "99999999999999999999"} {
			var body any
			switch {
			case rt.method == "PATCH":
				body = map[string]any{"text": "pwned", "version": 1}
			case strings.HasSuffix(rt.path, "/archive"):
				body = map[string]any{"version": 1}
			case strings.HasSuffix(rt.path, "/push-tokens"):
				body = map[string]any{"token": "t", "platform": "ios"}
			}
			status, resp, _ := b.do(rt.method, fmt.Sprintf(rt.path, id), body)
			if status != 404 {
				t.Errorf("B %s %s = %d %s, want 404", rt.method, fmt.Sprintf(rt.path, id), status, resp)
			}
			if bytes.Contains(resp, []byte("secret A")) {
				t.Errorf("B %s leaked A's data: %s", rt.path, resp)
			}
		}
	}
	// B naming A's template or members gets nothing of A.
	status, resp, _ := b.do("POST", "/api/v1/communications/preview", map[string]any{"template_id": tmpl.ID, "purpose": "service", "member_ids": []int64{fa.memberID}})
	if status != 400 || decodeErr(t, resp).Error.Field != "template_id" {
		t.Errorf("B previewing A's template = %d %s", status, resp)
	}
	var bt struct {
		ID int64 `json:"id"`
	}
	b.must("POST", "/api/v1/templates", map[string]any{"name": "B", "channel": "sms", "text": "Ciao [FirstName]"}, 201, &bt)
	var pv cloud.Preview
	b.must("POST", "/api/v1/communications/preview", map[string]any{"template_id": bt.ID, "purpose": "service", "member_ids": []int64{fa.memberID}}, 200, &pv)
	if pv.SkipCounts[cloud.SkipNotFound] != 1 || len(pv.Messages) != 0 {
		t.Errorf("B previewing A's member: %+v", pv)
	}
	var lists struct{ Items []cloud.Communication }
	b.must("GET", "/api/v1/communications", nil, 200, &lists)
	if len(lists.Items) != 0 {
		t.Errorf("B lists A's communications: %+v", lists.Items)
	}
	status, resp, _ = b.do("POST", "/api/v1/communications/crm", map[string]any{"type_id": fa.typeID, "text": "x", "member_ids": []int64{fa.memberID}})
	if status == 201 && bytes.Contains(resp, []byte(`"actions":1`)) {
		t.Errorf("B created actions on A's member: %s", resp)
	}
}
