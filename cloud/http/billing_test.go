package http_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"varco.dev/cloud"
)

func TestInstalmentsOverHTTP(t *testing.T) {
	t.Parallel()
	e := setup(t)
	a := e.tenant("club-a")
	f := populate(t, a, "A") // an instalment due 1 April: not overdue on t0
	path := fmt.Sprintf("/api/v1/members/%d/instalments", f.memberID)
	for _, tc := range []struct {
		body  any
		field string
	}{
		{map[string]any{"amount_cents": 0, "due_on": "2025-03-01"}, "amount_cents"},
		{map[string]any{"amount_cents": "12", "due_on": "2025-03-01"}, "amount_cents"},
		{map[string]any{"amount_cents": 100, "due_on": "2025-03-01", "currency": "EURO"}, "currency"},
		{map[string]any{"amount_cents": 100}, "due_on"},
		{map[string]any{"amount_cents": 100, "due_on": "2025-03-01", "paid_at": "2099-01-01T00:00:00Z"}, "paid_at"},
		{map[string]any{"amount_cents": 100, "due_on": "2025-03-01", "cancelled": true}, "cancelled"},
		{map[string]any{"amount_cents": 100, "due_on": "2025-03-01", "membership_id": 424242}, "membership_id"},
		{`{"amount_cents": 100, "due_on": "1/3/2025"}`, ""},
	} {
		status, b, _ := a.do("POST", path, tc.body)
		if status != 400 || decodeErr(t, b).Error.Field != tc.field {
			t.Errorf("POST %v = %d %s, want 400 on %q", tc.body, status, b, tc.field)
		}
	}
	var in cloud.Instalment
	status, b, hdr := a.do("POST", path, map[string]any{"amount_cents": 4990, "currency": "eur", "due_on": "2025-03-01", "description": "March"})
	if status != 201 || hdr.Get("ETag") != `"1"` || decodeInto(t, b, &in).Currency != "EUR" || hdr.Get("Location") != fmt.Sprintf("/api/v1/instalments/%d", in.ID) {
		t.Fatalf("POST = %d %s %v", status, b, hdr)
	}
	var view cloud.AccessView
	access := fmt.Sprintf("/api/v1/members/%d/access?site_id=%d", f.memberID, f.siteID)
	a.must("GET", access, nil, 200, &view)
	if len(view.Record.Notices) != 1 || view.Record.Notices[0].Text != "Rata scaduta il 01/03/2025" {
		t.Fatalf("notices = %+v, want the overdue instalment in Italian", view.Record.Notices)
	}
	ipath := fmt.Sprintf("/api/v1/instalments/%d", in.ID)
	if status, b, _ := a.do("PATCH", ipath, map[string]any{"paid_at": "2025-03-04T08:00:00Z"}); status != 428 {
		t.Errorf("PATCH without version = %d %s", status, b)
	}
	a.must("PATCH", ipath, map[string]any{"paid_at": "2025-03-04T08:00:00Z", "version": 1}, 200, &in)
	if in.PaidAt == nil || in.Version != 2 {
		t.Fatalf("paid = %+v", in)
	}
	if status, b, _ := a.do("PATCH", ipath, map[string]any{"paid_at": nil}, "If-Match", `"1"`); status != 412 {
		t.Errorf("stale PATCH = %d %s", status, b)
	}
	a.must("GET", access, nil, 200, &view)
	if len(view.Record.Notices) != 0 {
		t.Errorf("notices after paying = %+v", view.Record.Notices)
	}
	// null clears the payment (recorded by mistake).
	if status, b, _ := a.do("PATCH", ipath, map[string]any{"paid_at": nil}, "If-Match", `"2"`); status != 200 || decodeInto(t, b, &in).PaidAt != nil || in.Version != 3 {
		t.Fatalf("PATCH paid_at null = %d %s", status, b)
	}
	var list struct{ Items []cloud.Instalment }
	a.must("GET", path, nil, 200, &list)
	if len(list.Items) != 2 || list.Items[0].ID != in.ID || list.Items[1].ID != f.instalmentID {
		t.Errorf("instalments = %+v, want by due date", list.Items)
	}
}

func TestBookingsOverHTTP(t *testing.T) {
	t.Parallel()
	e := setup(t)
	a := e.tenant("club-a")
	f := populate(t, a, "A") // a booking on 5 March, 17:00Z
	path := fmt.Sprintf("/api/v1/members/%d/bookings", f.memberID)
	slot := func(day, hour int) map[string]any {
		start := time.Date(2025, 3, day, hour, 0, 0, 0, time.UTC)
		return map[string]any{"site_id": f.siteID, "title": "Yoga", "starts_at": start, "ends_at": start.Add(time.Hour)}
	}
	with := func(m map[string]any, k string, v any) map[string]any { m[k] = v; return m }
	for _, tc := range []struct {
		body  any
		field string
	}{
		{with(slot(6, 9), "ends_at", "2025-03-06T08:00:00Z"), "ends_at"},
		{with(slot(6, 9), "ends_at", "2025-03-08T08:00:00Z"), "ends_at"},
		{with(slot(6, 9), "site_id", 0), "site_id"},
		{with(slot(6, 9), "site_id", 424242), "site_id"},
		{with(slot(6, 9), "kind", "party"), "kind"},
		{with(slot(6, 9), "status", "maybe"), "status"},
		{with(slot(6, 9), "title", ""), "title"},
		{with(slot(6, 9), "starts_at", "tomorrow"), ""},
	} {
		status, b, _ := a.do("POST", path, tc.body)
		if status != 400 || decodeErr(t, b).Error.Field != tc.field {
			t.Errorf("POST %v = %d %s, want 400 on %q", tc.body, status, b, tc.field)
		}
	}
	var made []int64
	for _, s := range []map[string]any{slot(6, 9), slot(4, 18), with(slot(6, 7), "kind", "appointment"), slot(20, 9)} {
		var bk cloud.Booking
		a.must("POST", path, s, 201, &bk)
		made = append(made, bk.ID)
	}
	var got []int64
	cursor := ""
	for range 5 {
		var p struct {
			Items      []cloud.Booking
			NextCursor *string `json:"next_cursor"`
		}
		a.must("GET", path+"?from=2025-03-05&to=2025-03-06&limit=2"+cursor, nil, 200, &p)
		for _, bk := range p.Items {
			got = append(got, bk.ID)
		}
		if p.NextCursor == nil {
			break
		}
		cursor = "&cursor=" + *p.NextCursor
	}
	if want := []int64{f.bookingID, made[2], made[0]}; !slices.Equal(got, want) {
		t.Errorf("bookings 5-6 March = %v, want %v", got, want)
	}
	for _, q := range []string{"from=5/3/2025", "to=x", "limit=0", "cursor=-1"} {
		if status, b, _ := a.do("GET", path+"?"+q, nil); status != 400 {
			t.Errorf("GET ?%s = %d %s", q, status, b)
		}
	}
	bpath := fmt.Sprintf("/api/v1/bookings/%d", made[0])
	if status, b, _ := a.do("PATCH", bpath, map[string]any{"status": "attended"}); status != 428 {
		t.Errorf("PATCH without version = %d %s", status, b)
	}
	var bk cloud.Booking
	if status, b, hdr := a.do("PATCH", bpath, map[string]any{"status": "attended"}, "If-Match", `"1"`); status != 200 || hdr.Get("ETag") != `"2"` ||
		decodeInto(t, b, &bk).Status != cloud.BookingAttended {
		t.Errorf("PATCH attended = %d %s", status, b)
	}
	if status, b, _ := a.do("PATCH", bpath, map[string]any{"status": "cancelled", "version": 1}); status != 412 {
		t.Errorf("stale PATCH = %d %s", status, b)
	}
	if status, b, _ := a.do("PATCH", bpath, map[string]any{"status": "lost", "version": 2}); status != 400 || decodeErr(t, b).Error.Field != "status" {
		t.Errorf("bad status = %d %s", status, b)
	}
}

// TestNullClearsAField checks that PATCH with null clears a nullable
// field, where leaving the field out keeps it.
func TestNullClearsAField(t *testing.T) {
	t.Parallel()
	e := setup(t)
	a := e.tenant("club-a")
	f := populate(t, a, "A")
	mpath := fmt.Sprintf("/api/v1/members/%d", f.memberID)
	var m cloud.Member
	a.must("PATCH", mpath, map[string]any{"operator_id": f.operatorID, "version": 1}, 200, &m)
	a.must("PATCH", mpath, map[string]any{"first_name": "Anna Maria", "version": 2}, 200, &m)
	if m.OperatorID == nil || *m.OperatorID != f.operatorID {
		t.Fatalf("operator after an edit without it = %v", m.OperatorID)
	}
	a.must("PATCH", mpath, map[string]any{"medical_cert_expiry": "2025-09-30", "version": 3}, 200, &m)
	a.must("PATCH", mpath, map[string]any{"operator_id": nil, "medical_cert_expiry": nil, "version": 4}, 200, &m)
	if m.OperatorID != nil || !m.MedicalCertExpiry.IsZero() {
		t.Errorf("nulls kept operator %v, certificate expiry %v", m.OperatorID, m.MedicalCertExpiry)
	}
	// A temporary badge made permanent.
	cpath := fmt.Sprintf("/api/v1/credentials/%d", f.credentialID)
	var c cloud.Credential
	a.must("PATCH", cpath, map[string]any{"valid_until": "2025-03-31", "version": 1}, 200, &c)
	a.must("PATCH", cpath, map[string]any{"label": "keyfob", "version": 2}, 200, &c)
	if c.ValidUntil.String() != "2025-03-31" {
		t.Fatalf("valid_until after an edit without it = %v", c.ValidUntil)
	}
	a.must("PATCH", cpath, map[string]any{"valid_until": nil, "version": 3}, 200, &c)
	if !c.ValidUntil.IsZero() || c.Label != "keyfob" {
		t.Errorf("credential after valid_until: null = %+v", c)
	}
	apath := fmt.Sprintf("/api/v1/actions/%d", f.actionID)
	var act cloud.Action
	a.must("PATCH", apath, map[string]any{"planned_at": "2025-03-05T10:00:00Z", "operator_id": f.operatorID, "version": 1}, 200, &act)
	a.must("PATCH", apath, map[string]any{"complete_by": "2025-03-10", "version": 2}, 200, &act)
	a.must("PATCH", apath, map[string]any{"planned_at": nil, "operator_id": nil, "complete_by": nil, "version": 3}, 200, &act)
	if act.PlannedAt != nil || act.OperatorID != nil || !act.CompleteBy.IsZero() {
		t.Errorf("action after nulls = planned %v operator %v complete by %v", act.PlannedAt, act.OperatorID, act.CompleteBy)
	}
	if status, b, _ := a.do("PATCH", apath, map[string]any{"operator_id": "me", "version": 4}); status != 400 || decodeErr(t, b).Error.Field != "operator_id" {
		t.Errorf("operator_id of the wrong type = %d %s", status, b)
	}
	if status, b, _ := a.do("PATCH", mpath, map[string]any{"first_name": 42, "version": 5}); status != 400 || decodeErr(t, b).Error.Field != "first_name" {
		t.Errorf("first_name of the wrong type = %d %s", status, b)
	}
}

// TestImportInBackground sends a file over the synchronous limit and a
// small one with "Prefer: respond-async": both are accepted (202) and
// finished by the background worker, and their progress and reports are
// the tenant's only.
func TestImportInBackground(t *testing.T) {
	t.Parallel()
	e := setup(t)
	a := e.tenant("club-a")
	b := e.tenant("club-b")
	var big strings.Builder
	big.WriteString("kind,first_name,last_name,mobile,credential\n")
	for i := range cloud.ImportSyncRows + 1 {
		switch i {
		case 100:
			big.WriteString("person,Bad,Mobile,12,\n") // line 102
		case 400:
			big.WriteString("person,Dup,Card,,card:9:1\n") // line 402: the key of row 0
		default:
			fmt.Fprintf(&big, "person,N%d,Bulk,+39333%07d,card:9:%d\n", i, i, i+1)
		}
	}
	status, body, hdr := a.do("POST", "/api/v1/members/import", big.String(), "Content-Type", "text/csv")
	var job cloud.ImportJob
	if status != 202 || decodeInto(t, body, &job).Rows != cloud.ImportSyncRows+1 || job.Finished() || hdr.Get("Location") != fmt.Sprintf("/api/v1/imports/%d", job.ID) {
		t.Fatalf("big import = %d %s %v", status, body, hdr)
	}
	status, body, hdr = a.do("POST", "/api/v1/members/import", "kind,last_name\nperson,Async\n", "Content-Type", "text/csv", "Prefer", "respond-async, wait=5")
	var small cloud.ImportJob
	if status != 202 || hdr.Get("Preference-Applied") != "respond-async" || decodeInto(t, body, &small).Rows != 1 {
		t.Fatalf("async small import = %d %s %v", status, body, hdr)
	}
	seen := map[int64]*cloud.ImportJob{}
	for len(seen) < 2 {
		select {
		case j := <-e.jobs:
			seen[j.ID] = j
		case <-time.After(2 * time.Minute): // a guard against a hang, not a timing assertion
			t.Fatalf("background jobs ended: %v", seen)
		}
	}
	a.must("GET", fmt.Sprintf("/api/v1/imports/%d", job.ID), nil, 200, &job)
	if job.Status != cloud.ImportDone || job.Processed != job.Rows || job.Imported != cloud.ImportSyncRows-1 || job.ErrorCount != 2 ||
		len(job.Errors) != 2 || job.Errors[0].Row != 102 || job.Errors[0].Field != "mobile" || job.Errors[1].Row != 402 || job.Errors[1].Field != "key" ||
		job.StartedAt == nil || job.FinishedAt == nil {
		t.Errorf("big job = %+v", job)
	}
	a.must("GET", fmt.Sprintf("/api/v1/imports/%d", small.ID), nil, 200, &small)
	if small.Status != cloud.ImportDone || small.Imported != 1 {
		t.Errorf("small job = %+v", small)
	}
	var p struct {
		Items      []cloud.Member
		NextCursor *string `json:"next_cursor"`
	}
	a.must("GET", "/api/v1/members?q=bulk&limit=1000", nil, 200, &p)
	if len(p.Items) != cloud.ImportSyncRows-1 {
		t.Errorf("%d members imported, want %d", len(p.Items), cloud.ImportSyncRows-1)
	}
	var jobs struct{ Items []cloud.ImportJob }
	a.must("GET", "/api/v1/imports?limit=10", nil, 200, &jobs)
	if len(jobs.Items) != 2 || jobs.Items[0].ID != small.ID || jobs.Items[1].ID != job.ID || jobs.Items[0].Errors != nil {
		t.Errorf("jobs = %+v, want the 2 of A, newest first, without errors", jobs.Items)
	}
	// Tenant B: none of A's jobs.
	for _, path := range []string{fmt.Sprintf("/api/v1/imports/%d", job.ID), fmt.Sprintf("/api/v1/imports/%d/errors", job.ID)} {
		if status, body, _ := b.do("GET", path, nil); status != 404 {
			t.Errorf("B GET %s = %d %s", path, status, body)
		}
	}
	b.must("GET", "/api/v1/imports", nil, 200, &jobs)
	if len(jobs.Items) != 0 {
		t.Errorf("B lists %d jobs", len(jobs.Items))
	}
	// A file without data rows is done at once; a bad header is refused whole.
	var empty cloud.ImportJob
	if status, body, _ := a.do("POST", "/api/v1/members/import", "kind,last_name\n", "Prefer", "respond-async"); status != 202 ||
		decodeInto(t, body, &empty).Status != cloud.ImportDone {
		t.Errorf("empty import = %d %s", status, body)
	}
	if status, body, _ := a.do("POST", "/api/v1/members/import", "", "Content-Type", "text/csv"); status != 400 || decodeErr(t, body).Error.Field != "file" {
		t.Errorf("empty file = %d %s", status, body)
	}
}

// decodeInto decodes a JSON body into v and returns v.
func decodeInto[T any](t *testing.T, b []byte, v *T) *T {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return v
}
