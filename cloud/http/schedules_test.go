package http_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"varco.dev/cloud"
	"varco.dev/cloud/postgres"
)

func TestSchedulesOverHTTP(t *testing.T) {
	t.Parallel()
	e := setup(t)
	a := e.tenant("club-a")
	f := populate(t, a, "A") // Anna: membership valid today, no medical certificate

	// The recipes are there, disabled.
	var list struct{ Items []cloud.Schedule }
	a.must("GET", "/api/v1/schedules", nil, 200, &list)
	if len(list.Items) != len(cloud.Recipes()) {
		t.Fatalf("%d operations, want the %d recipes", len(list.Items), len(cloud.Recipes()))
	}
	for _, s := range list.Items {
		if s.Active || s.Recipe == "" || s.NextRunAt != nil || s.Timezone != "Europe/Rome" {
			t.Errorf("recipe %+v", s)
		}
	}
	a.must("GET", "/api/v1/schedules?active=true", nil, 200, &list)
	if len(list.Items) != 0 {
		t.Errorf("%d active operations", len(list.Items))
	}

	var tg cloud.Target
	a.must("POST", "/api/v1/targets", map[string]any{"name": "No certificate", "schedulable": true,
		"criteria": []map[string]any{{"kind": "medical_cert", "state": "missing"}}}, 201, &tg)
	var sc cloud.Schedule
	a.must("POST", "/api/v1/schedules", map[string]any{"name": "Block without certificate", "active": true, "recurrence": "daily",
		"send_time": "06:00", "target_id": tg.ID, "body": map[string]any{"kind": "actions", "action_type_id": f.typeID,
			"action_text": "Bring your certificate", "complete_days": 0}}, 201, &sc)
	// Created at 09:30 in Rome: first run tomorrow at 06:00 (05:00 UTC).
	if sc.SenderID == 0 || sc.StartsOn != cloud.NewDate(2025, 3, 4) || sc.NextRunAt == nil || sc.NextRunAt.UTC().Format("2006-01-02T15:04") != "2025-03-05T05:00" {
		t.Fatalf("created %+v", sc)
	}
	path := fmt.Sprintf("/api/v1/schedules/%d", sc.ID)
	status, _, hdr := a.do("GET", path, nil)
	if status != 200 || hdr.Get("ETag") != `"1"` {
		t.Fatalf("GET = %d %s", status, hdr.Get("ETag"))
	}
	if status, _, _ := a.do("PATCH", path, map[string]any{"send_time": "07:00"}, "If-Match", `"9"`); status != 412 {
		t.Errorf("stale PATCH = %d", status)
	}
	var upd cloud.Schedule
	a.must("PATCH", path, map[string]any{"send_time": "07:00", "version": 1}, 200, &upd)
	if upd.Version != 2 || upd.NextRunAt.UTC().Format("15:04") != "06:00" {
		t.Errorf("updated %+v", upd)
	}
	// A target in use cannot stop being schedulable, nor be archived.
	if status, b, _ := a.do("PATCH", fmt.Sprintf("/api/v1/targets/%d", tg.ID), map[string]any{"schedulable": false, "version": 1}); status != 409 {
		t.Errorf("unschedule a used target = %d %s", status, b)
	}
	if status, b, _ := a.do("POST", fmt.Sprintf("/api/v1/targets/%d/archive", tg.ID), map[string]any{"version": 1}); status != 409 {
		t.Errorf("archive a used target = %d %s", status, b)
	}

	// One run, executed as the scheduler does; its history.
	e.clock.Set(t0.Add(24 * time.Hour))
	a = e.login("admin@club-a.test", password) // yesterday's session expired
	var tenantID int64
	if err := e.db.Pool.QueryRow(context.Background(), `SELECT tenant_id FROM schedules WHERE id = $1`, sc.ID).Scan(&tenantID); err != nil {
		t.Fatal(err)
	}
	runner := postgres.NewScheduleRunner(e.db)
	if _, err := runner.ExecuteRun(context.Background(), postgres.DueRun{TenantID: tenantID, ScheduleID: sc.ID, Day: cloud.NewDate(2025, 3, 5)}); err != nil {
		t.Fatal(err)
	}
	var runs struct {
		Items      []cloud.ScheduleRun
		NextCursor *string `json:"next_cursor"`
	}
	a.must("GET", path+"/runs", nil, 200, &runs)
	if len(runs.Items) != 1 {
		t.Fatalf("runs = %+v", runs.Items)
	}
	// Anna's blocking action from populate is still open: skipped, with the reason.
	r := runs.Items[0]
	if r.Status != cloud.RunDone || r.Members != 1 || r.Created != 0 || r.Skipped != 1 || r.SkippedReasons[cloud.SkipOpenAction] != 1 ||
		r.SenderID != sc.SenderID || r.Body.Kind != cloud.BodyActions || r.Day != cloud.NewDate(2025, 3, 5) || r.Attempts != 1 {
		t.Errorf("run = %+v", r)
	}
	var acts struct{ Items []cloud.Action }
	a.must("GET", fmt.Sprintf("/api/v1/members/%d/actions", f.memberID), nil, 200, &acts)
	if len(acts.Items) != 1 {
		t.Errorf("member's actions = %+v", acts.Items)
	}
	a.must("GET", path+"/runs?before=2025-03-05", nil, 200, &runs)
	if len(runs.Items) != 0 {
		t.Errorf("runs before the 5th = %+v", runs.Items)
	}
}

func TestScheduleValidationOverHTTP(t *testing.T) {
	t.Parallel()
	e := setup(t)
	a := e.tenant("club-a")
	b := e.tenant("club-b")
	fa := populate(t, a, "A")
	var tg, closed, other cloud.Target
	crit := []map[string]any{{"kind": "membership_active"}}
	a.must("POST", "/api/v1/targets", map[string]any{"name": "Active", "schedulable": true, "criteria": crit}, 201, &tg)
	a.must("POST", "/api/v1/targets", map[string]any{"name": "Not for schedules", "criteria": crit}, 201, &closed)
	b.must("POST", "/api/v1/targets", map[string]any{"name": "B's", "schedulable": true, "criteria": crit}, 201, &other)
	comm := map[string]any{"kind": "communication", "channel": "sms", "purpose": "service", "template_id": 5}
	base := func(edit func(m map[string]any)) map[string]any {
		m := map[string]any{"name": "x", "recurrence": "daily", "send_time": "09:00", "target_id": tg.ID, "body": comm}
		edit(m)
		return m
	}
	for _, tc := range []struct {
		body  any
		field string
	}{
		{base(func(m map[string]any) { m["target_id"] = closed.ID }), "target_id"},
		{base(func(m map[string]any) { m["target_id"] = other.ID }), "target_id"},
		{base(func(m map[string]any) { m["sender_id"] = fa.memberID + 1000 }), "sender_id"},
		{base(func(m map[string]any) { m["send_time"] = "25:00" }), "send_time"},
		{base(func(m map[string]any) { m["timezone"] = "Moon/Base" }), "timezone"},
		{base(func(m map[string]any) { m["recurrence"] = "hourly" }), "recurrence"},
		{base(func(m map[string]any) { m["starts_on"] = "2025-03-10"; m["ends_on"] = "2025-03-01" }), "ends_on"},
		{base(func(m map[string]any) {
			m["active"] = true
			m["body"] = map[string]any{"kind": "communication", "channel": "sms", "purpose": "service"}
		}), "body.template_id"},
		{base(func(m map[string]any) { m["body"] = map[string]any{"kind": "communication", "channel": "sms"} }), "body.purpose"},
		{base(func(m map[string]any) { m["body"] = map[string]any{"kind": "actions", "action_type_id": 987654} }), "body.action_type_id"},
		{base(func(m map[string]any) { m["body"] = map[string]any{"kind": "telegram"} }), "body.kind"},
		{base(func(m map[string]any) { m["colour"] = "red" }), "colour"},
	} {
		status, resp, _ := a.do("POST", "/api/v1/schedules", tc.body)
		if status != 400 {
			t.Errorf("%v = %d %s, want 400", tc.body, status, resp)
			continue
		}
		if got := decodeErr(t, resp).Error.Field; got != tc.field {
			t.Errorf("%v: field %q, want %q (%s)", tc.body, got, tc.field, resp)
		}
	}
	// Operators read operations but may not create them.
	o := e.login("op-A@x.test", password)
	o.must("GET", "/api/v1/schedules", nil, 200, nil)
	if status, _, _ := o.do("POST", "/api/v1/schedules", base(func(map[string]any) {})); status != 403 {
		t.Errorf("operator creates an operation = %d", status)
	}
}

// TestScheduleIsolation calls every schedule route on tenant A's operation
// as tenant B: 404, nothing leaks, A's operation is untouched.
func TestScheduleIsolation(t *testing.T) {
	t.Parallel()
	e := setup(t)
	a := e.tenant("club-a")
	b := e.tenant("club-b")
	var list struct{ Items []cloud.Schedule }
	a.must("GET", "/api/v1/schedules", nil, 200, &list)
	sa := list.Items[0]
	a.must("PATCH", fmt.Sprintf("/api/v1/schedules/%d", sa.ID), map[string]any{"name": "secret A operation", "version": sa.Version}, 200, &sa)
	for _, id := range []string{fmt.Sprint(sa.ID), "0", "-1", "9223372036854775807", "abc", "1;DROP TABLE schedules", "01"} {
		for _, rt := range []struct {
			method, path string
			body         any
		}{
			{"GET", "/api/v1/schedules/%s", nil},
			{"PATCH", "/api/v1/schedules/%s", map[string]any{"active": true, "version": sa.Version}},
			{"GET", "/api/v1/schedules/%s/runs", nil},
		} {
			p := fmt.Sprintf(rt.path, id)
			status, resp, _ := b.do(rt.method, p, rt.body)
			if status != 404 {
				t.Errorf("B %s %s = %d %s, want 404", rt.method, p, status, resp)
			}
			if bytes.Contains(resp, []byte("secret A")) {
				t.Errorf("B %s %s leaks: %s", rt.method, p, resp)
			}
		}
	}
	status, resp, _ := b.do("GET", "/api/v1/schedules", nil)
	if status != 200 || bytes.Contains(resp, []byte("secret A")) || bytes.Contains(resp, fmt.Appendf(nil, `"id":%d,`, sa.ID)) {
		t.Errorf("B's list = %d %s", status, resp)
	}
	// B cannot point an operation at A's target.
	var ta cloud.Target
	a.must("POST", "/api/v1/targets", map[string]any{"name": "A's", "schedulable": true, "criteria": []map[string]any{{"kind": "membership_active"}}}, 201, &ta)
	status, resp, _ = b.do("POST", "/api/v1/schedules", map[string]any{"name": "x", "recurrence": "daily", "send_time": "09:00", "target_id": ta.ID,
		"body": map[string]any{"kind": "communication", "channel": "sms", "purpose": "service"}})
	if status != 400 || decodeErr(t, resp).Error.Field != "target_id" {
		t.Errorf("B uses A's target = %d %s", status, resp)
	}
	var got cloud.Schedule
	a.must("GET", fmt.Sprintf("/api/v1/schedules/%d", sa.ID), nil, 200, &got)
	if got.Active || got.Version != sa.Version {
		t.Errorf("A's operation changed: %+v", got)
	}
}
