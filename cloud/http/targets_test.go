package http_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/xuri/excelize/v2"

	"varco.dev/cloud"
)

// targetPage is the body of run and preview.
type targetPage struct {
	Day      string         `json:"day"`
	Page     int            `json:"page"`
	Items    []cloud.Member `json:"items"`
	NextPage *int           `json:"next_page"`
}

func TestTargetsOverHTTP(t *testing.T) {
	t.Parallel()
	e := setup(t)
	a := e.tenant("club-a")
	for _, name := range []string{"Anna", "Bruno", "Carla"} {
		tags := []string{"pool"}
		if name != "Carla" {
			tags = append(tags, "yoga")
		}
		a.must("POST", "/api/v1/members", map[string]any{"kind": "person", "first_name": name, "last_name": "Rossi", "tags": tags}, 201, nil)
	}
	yoga := []map[string]any{{"kind": "tags", "tags": []string{"yoga"}}}

	// Create, read with its ETag, edit with If-Match.
	var tg cloud.Target
	a.must("POST", "/api/v1/targets", map[string]any{"name": "Yoga", "description": "Yoga lovers", "criteria": yoga, "in_menu": true}, 201, &tg)
	if tg.ID == 0 || tg.DateMode != cloud.DateNone || !tg.InMenu || tg.ReferenceDate != cloud.NewDate(2025, 3, 4) {
		t.Fatalf("created %+v", tg)
	}
	status, b, hdr := a.do("GET", fmt.Sprintf("/api/v1/targets/%d", tg.ID), nil)
	if status != 200 || hdr.Get("ETag") != `"1"` {
		t.Fatalf("GET = %d %s %s", status, hdr.Get("ETag"), b)
	}
	path := fmt.Sprintf("/api/v1/targets/%d", tg.ID)
	if status, _, _ := a.do("PATCH", path, map[string]any{"description": "x"}); status != 428 {
		t.Errorf("PATCH without version = %d", status)
	}
	if status, _, _ := a.do("PATCH", path, map[string]any{"description": "x"}, "If-Match", `"7"`); status != 412 {
		t.Errorf("PATCH stale = %d", status)
	}
	status, b, hdr = a.do("PATCH", path, map[string]any{"description": "Yoga and pool", "schedulable": true}, "If-Match", `"1"`)
	if status != 200 || hdr.Get("ETag") != `"2"` || !strings.Contains(string(b), "Yoga and pool") {
		t.Fatalf("PATCH = %d %s %s", status, hdr.Get("ETag"), b)
	}
	var list struct{ Items []cloud.Target }
	a.must("GET", "/api/v1/targets?menu=true", nil, 200, &list)
	if len(list.Items) != 1 || list.Items[0].ID != tg.ID {
		t.Errorf("list = %+v", list.Items)
	}

	// Run, page by page; count; preview.
	var p targetPage
	a.must("POST", path+"/run?page=1&limit=1", nil, 200, &p)
	if len(p.Items) != 1 || p.Items[0].FirstName != "Anna" || p.NextPage == nil || *p.NextPage != 2 || p.Day != "2025-03-04" {
		t.Fatalf("page 1 = %+v", p)
	}
	a.must("POST", path+"/run?page=2&limit=1", nil, 200, &p)
	if len(p.Items) != 1 || p.Items[0].FirstName != "Bruno" {
		t.Fatalf("page 2 = %+v", p)
	}
	a.must("POST", path+"/run?page=3&limit=1", nil, 200, &p)
	if len(p.Items) != 0 || p.NextPage != nil {
		t.Fatalf("page 3 = %+v", p)
	}
	var count struct{ Count int }
	a.must("POST", path+"/count", nil, 200, &count)
	if count.Count != 2 {
		t.Errorf("count = %d", count.Count)
	}
	a.must("POST", "/api/v1/targets/preview", map[string]any{"criteria": []map[string]any{{"kind": "tags", "tags": []string{"yoga"}, "not": true}}}, 200, &p)
	if len(p.Items) != 1 || p.Items[0].FirstName != "Carla" {
		t.Errorf("preview = %+v", p)
	}

	// Exports, in the member CSV format.
	status, b, hdr = a.do("GET", path+"/export.csv", nil)
	if status != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/csv") || !strings.Contains(hdr.Get("Content-Disposition"), "target-") {
		t.Fatalf("csv = %d %v", status, hdr)
	}
	rows, err := cloud.ParseMembersCSV(bytes.NewReader(b))
	if err != nil || len(rows) != 2 || rows[0].Member.FirstName != "Anna" || rows[1].Member.FirstName != "Bruno" {
		t.Errorf("csv does not parse back: %v\n%s", err, b)
	}
	status, b, hdr = a.do("GET", path+"/export.xlsx", nil)
	if status != 200 || !strings.Contains(hdr.Get("Content-Type"), "spreadsheetml") {
		t.Fatalf("xlsx = %d %v", status, hdr)
	}
	x, err := excelize.OpenReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	sheet, err := x.GetRows("Sheet1")
	_ = x.Close()
	if err != nil || len(sheet) != 3 || sheet[0][0] != "id" || sheet[2][2] != "Bruno" {
		t.Errorf("xlsx rows = %v %v", sheet, err)
	}

	// CRM actions for all.
	var cfg cloud.CRMConfig
	a.must("GET", "/api/v1/crm/config", nil, 200, &cfg)
	var res cloud.TargetActionsResult
	a.must("POST", path+"/actions", map[string]any{"type_id": cfg.ActionTypes[0].ID, "description": "Invite to the yoga week"}, 201, &res)
	if res.Members != 2 || len(res.Actions) != 2 || res.Actions[0].Description != "Invite to the yoga week" {
		t.Errorf("actions = %+v", res)
	}

	// Archive (version required), then it is gone from the list.
	if status, _, _ := a.do("POST", path+"/archive", nil); status != 428 {
		t.Errorf("archive without version = %d", status)
	}
	a.must("POST", path+"/archive", map[string]any{"version": 2}, 200, nil)
	a.must("GET", "/api/v1/targets", nil, 200, &list)
	for _, x := range list.Items {
		if x.ID == tg.ID {
			t.Errorf("archived target still listed")
		}
	}
}

// TestTargetValidationOverHTTP sends bad bodies and parameters: each is a
// 400 naming the field at fault.
func TestTargetValidationOverHTTP(t *testing.T) {
	t.Parallel()
	e := setup(t)
	a := e.tenant("club-a")
	ok := []map[string]any{{"kind": "membership_active"}}
	var tg cloud.Target
	a.must("POST", "/api/v1/targets", map[string]any{"name": "Active", "criteria": ok}, 201, &tg)
	for _, tc := range []struct {
		method, path string
		body         any
		field        string
	}{
		{"POST", "/api/v1/targets", map[string]any{"name": "", "criteria": ok}, "name"},
		{"POST", "/api/v1/targets", map[string]any{"name": "x"}, "criteria"},
		{"POST", "/api/v1/targets", map[string]any{"name": "x", "criteria": ok, "colour": "red"}, "colour"},
		{"POST", "/api/v1/targets", map[string]any{"name": "x", "criteria": []map[string]any{{"kind": "horoscope"}}}, "criteria[0].kind"},
		{"POST", "/api/v1/targets", map[string]any{"name": "x", "criteria": []map[string]any{{"kind": "birthday"}}}, "criteria[0].days"},
		{"POST", "/api/v1/targets", map[string]any{"name": "x", "criteria": []map[string]any{{"kind": "birthday", "days": 0, "state": "expired"}}}, "criteria[0].state"},
		{"POST", "/api/v1/targets", map[string]any{"name": "x", "criteria": []map[string]any{{"kind": "birthday", "days": "tomorrow"}}}, "criteria.days"},
		{"POST", "/api/v1/targets", map[string]any{"name": "x", "criteria": []map[string]any{{"kind": "registered", "from": "03/04/2025"}}}, ""},
		{"POST", "/api/v1/targets", map[string]any{"name": "x", "date_mode": "none", "criteria": []map[string]any{{"kind": "registered", "from": "2025-03-04"}}}, "criteria[0].from"},
		{"POST", "/api/v1/targets", map[string]any{"name": "x", "date_mode": "weekly", "criteria": ok}, "date_mode"},
		{"POST", "/api/v1/targets", map[string]any{"name": "x", "criteria": []map[string]any{{"kind": "commercial_status", "status_ids": []int64{987654}}}}, "criteria[0].status_ids"},
		{"POST", "/api/v1/targets", map[string]any{"name": "x", "criteria": []map[string]any{{"kind": "crm_history", "action_type_id": 987654}}}, "criteria[0].action_type_id"},
		{"POST", "/api/v1/targets", "{not json", ""},
		{"POST", "/api/v1/targets", `["a"]`, ""},
		{"POST", "/api/v1/targets/preview", map[string]any{"criteria": []map[string]any{{"kind": "tags", "tags": []string{"<script>"}}}}, "criteria[0].tags"},
		{"POST", "/api/v1/targets/preview?page=0", map[string]any{"criteria": ok}, "page"},
		{"POST", "/api/v1/targets/preview?limit=5000", map[string]any{"criteria": ok}, "limit"},
		{"POST", fmt.Sprintf("/api/v1/targets/%d/run?day=tomorrow", tg.ID), nil, "day"},
		{"POST", fmt.Sprintf("/api/v1/targets/%d/count?day=2025-02-30", tg.ID), nil, "day"},
		{"GET", fmt.Sprintf("/api/v1/targets/%d/export.csv?day=x", tg.ID), nil, "day"},
		{"GET", "/api/v1/targets?menu=maybe", nil, "menu"},
		{"POST", fmt.Sprintf("/api/v1/targets/%d/actions", tg.ID), map[string]any{"member_id": 1}, "member_id"},
		{"PATCH", fmt.Sprintf("/api/v1/targets/%d", tg.ID), map[string]any{"criteria": []map[string]any{}, "version": 1}, "criteria"},
	} {
		status, b, _ := a.do(tc.method, tc.path, tc.body)
		if status != 400 {
			t.Errorf("%s %s %v = %d %s, want 400", tc.method, tc.path, tc.body, status, b)
			continue
		}
		if e := decodeErr(t, b); e.Error.Field != tc.field {
			t.Errorf("%s %s %v: field %q, want %q (%s)", tc.method, tc.path, tc.body, e.Error.Field, tc.field, b)
		}
	}
	// Operators run targets but may not write them.
	var op struct{ ID int64 }
	a.must("POST", "/api/v1/operators", map[string]any{"email": "op@a.test", "name": "Op", "role": "operator", "password": password}, 201, &op)
	o := e.login("op@a.test", password)
	o.must("POST", fmt.Sprintf("/api/v1/targets/%d/count", tg.ID), nil, 200, nil)
	if status, _, _ := o.do("POST", "/api/v1/targets", map[string]any{"name": "y", "criteria": ok}); status != 403 {
		t.Errorf("operator creates a target = %d", status)
	}
}

// TestTargetIsolation calls every target route of tenant A's target as
// tenant B, with hostile IDs too: always 404, nothing of A's leaks, and
// A's target is untouched.
func TestTargetIsolation(t *testing.T) {
	t.Parallel()
	e := setup(t)
	a := e.tenant("club-a")
	b := e.tenant("club-b")
	a.must("POST", "/api/v1/members", map[string]any{"kind": "person", "first_name": "Secret", "last_name": "A", "tags": []string{"yoga"}}, 201, nil)
	b.must("POST", "/api/v1/members", map[string]any{"kind": "person", "first_name": "Bee", "last_name": "B", "tags": []string{"yoga"}}, 201, nil)
	var tg cloud.Target
	a.must("POST", "/api/v1/targets", map[string]any{"name": "secret A target", "criteria": []map[string]any{{"kind": "tags", "tags": []string{"yoga"}}}}, 201, &tg)
	ids := []string{fmt.Sprint(tg.ID), "0", "-1", "9223372036854775807", "99999999999999999999", "abc", "1;DROP TABLE targets", "1%20OR%201=1", "01"}
	routes := []struct {
		method, path string
		body         any
	}{
		{"GET", "/api/v1/targets/%s", nil},
		{"PATCH", "/api/v1/targets/%s", map[string]any{"name": "pwned", "version": 1}},
		{"POST", "/api/v1/targets/%s/archive", map[string]any{"version": 1}},
		{"POST", "/api/v1/targets/%s/run", nil},
		{"POST", "/api/v1/targets/%s/count", nil},
		{"GET", "/api/v1/targets/%s/export.csv", nil},
		{"GET", "/api/v1/targets/%s/export.xlsx", nil},
		{"POST", "/api/v1/targets/%s/actions", map[string]any{"description": "pwned"}},
	}
	for _, rt := range routes {
		for _, id := range ids {
			p := fmt.Sprintf(rt.path, id)
			status, resp, _ := b.do(rt.method, p, rt.body)
			if status != 404 {
				t.Errorf("B %s %s = %d %s, want 404", rt.method, p, status, resp)
			}
			if bytes.Contains(resp, []byte("Secret")) || bytes.Contains(resp, []byte("secret A")) {
				t.Errorf("B %s %s leaks A's data: %s", rt.method, p, resp)
			}
		}
	}
	var list struct{ Items []cloud.Target }
	b.must("GET", "/api/v1/targets?archived=true", nil, 200, &list)
	for _, x := range list.Items {
		if x.ID == tg.ID || x.Name == tg.Name {
			t.Errorf("B lists A's target: %+v", x)
		}
	}
	var p targetPage
	b.must("POST", "/api/v1/targets/preview", map[string]any{"criteria": []map[string]any{{"kind": "tags", "tags": []string{"yoga"}}}}, 200, &p)
	if len(p.Items) != 1 || p.Items[0].FirstName != "Bee" {
		t.Errorf("B preview = %+v", p.Items)
	}
	var got cloud.Target
	a.must("GET", fmt.Sprintf("/api/v1/targets/%d", tg.ID), nil, 200, &got)
	if got.Version != 1 || got.Name != "secret A target" || got.ArchivedAt != nil {
		t.Errorf("A's target changed: %+v", got)
	}
	var actions struct{ Items []cloud.Action }
	a.must("GET", "/api/v1/actions", nil, 200, &actions)
	if len(actions.Items) != 0 {
		t.Errorf("B created actions in A: %+v", actions.Items)
	}
}
