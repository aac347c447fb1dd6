package postgres_test

import (
	"context"
	"testing"
	"time"

	"varco.dev/cloud"
)

func TestAdvanceLifecycle(t *testing.T) {
	t.Parallel()
	type want struct {
		code      string // error code, "" for success
		field     string
		status    string // new commercial status name, "" for unchanged
		points    int
		note      bool
		nextType  string // "" for no next action
		nextOp    string // "admin", "sales", "other", "" for none
		nextAfter time.Duration
	}
	tests := []struct {
		name    string
		typ     string
		outcome string
		mode    cloud.AdvanceMode
		note    string
		next    func(b *bundle, other *cloud.Operator) *cloud.NextAction
		stale   bool
		want    want
	}{
		{name: "close signed up: status, points, conclusive", typ: "Tour", outcome: "Signed up", mode: cloud.AdvanceClose,
			want: want{status: "Member", points: 10}},
		{name: "close not signed up: relation plans next for member operator", typ: "Tour", outcome: "Not signed up", mode: cloud.AdvanceClose,
			want: want{status: "Non member", points: 2, nextType: "Telemarketing", nextOp: "sales", nextAfter: 7 * 24 * time.Hour}},
		{name: "close interested-less type without relation", typ: "Meeting", outcome: "Done", mode: cloud.AdvanceClose,
			want: want{}},
		{name: "close with note", typ: "Reception check", outcome: "Done", mode: cloud.AdvanceCloseWithNote, note: "Spoke at the desk",
			want: want{points: 1, note: true}},
		{name: "close with note needs the note", typ: "Reception check", outcome: "Done", mode: cloud.AdvanceCloseWithNote,
			want: want{code: cloud.EINVALID, field: "note"}},
		{name: "proceed uses relation next for myself", typ: "Telemarketing", outcome: "Done", mode: cloud.AdvanceProceed,
			next: func(b *bundle, _ *cloud.Operator) *cloud.NextAction { return &cloud.NextAction{TypeID: 0} },
			want: want{code: cloud.EINVALID, field: "next.type_id"}},
		{name: "proceed with explicit next", typ: "Reception check", outcome: "Done", mode: cloud.AdvanceProceed,
			next: func(b *bundle, other *cloud.Operator) *cloud.NextAction {
				at := t0.Add(49 * time.Hour) // now is t0+1h
				return &cloud.NextAction{TypeID: b.typeID(t, "Quote"), OperatorID: &other.ID, PlannedAt: &at, Description: "send prices"}
			},
			want: want{points: 1, nextType: "Quote", nextOp: "other", nextAfter: 48 * time.Hour}},
		{name: "proceed overrides relation next type", typ: "Tour", outcome: "Not signed up", mode: cloud.AdvanceProceed,
			next: func(b *bundle, _ *cloud.Operator) *cloud.NextAction {
				return &cloud.NextAction{TypeID: b.typeID(t, "Meeting")}
			},
			want: want{status: "Non member", points: 2, nextType: "Meeting", nextOp: "sales", nextAfter: 7 * 24 * time.Hour}},
		{name: "proceed on conclusive outcome", typ: "Tour", outcome: "Signed up", mode: cloud.AdvanceProceed,
			want: want{code: cloud.EINVALID, field: "mode"}},
		{name: "outcome not allowed for type", typ: "Reception check", outcome: "Signed up", mode: cloud.AdvanceClose,
			want: want{code: cloud.EINVALID, field: "outcome_id"}},
		{name: "open outcome does not close", typ: "Tour", outcome: "Interested", mode: cloud.AdvanceClose,
			want: want{code: cloud.EINVALID, field: "outcome_id"}},
		{name: "stale version", typ: "Tour", outcome: "Signed up", mode: cloud.AdvanceClose, stale: true,
			want: want{code: cloud.EPRECONDITION, field: "version"}},
		{name: "unknown mode", typ: "Tour", outcome: "Signed up", mode: "delete",
			want: want{code: cloud.EINVALID, field: "mode"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			_, sales := b.operator(t, "sales@a.test", cloud.RoleOperator)
			_, other := b.operator(t, "other@a.test", cloud.RoleOperator)
			m := b.member(t, "Anna", &sales.ID)
			a := &cloud.Action{MemberID: m.ID, TypeID: b.typeID(t, tt.typ), Description: "first contact"}
			if err := b.actions.CreateAction(b.admin, a); err != nil {
				t.Fatalf("CreateAction: %v", err)
			}
			if a.OperatorID == nil || *a.OperatorID != sales.ID {
				t.Fatalf("responsible operator = %v, want the member's operator %d", a.OperatorID, sales.ID)
			}
			if !a.Open || a.OutcomeID != b.outcomeID(t, "Planned") {
				t.Fatalf("new action open=%v outcome=%d, want open Planned", a.Open, a.OutcomeID)
			}
			b.clock.Add(time.Hour)
			now := b.clock.Now()
			req := cloud.AdvanceRequest{Mode: tt.mode, OutcomeID: b.outcomeID(t, tt.outcome), Note: tt.note, Version: a.Version}
			if tt.stale {
				req.Version--
			}
			if tt.next != nil {
				req.Next = tt.next(b, other)
			}
			auditBefore := countAudit(t, b)
			res, err := b.actions.AdvanceAction(b.admin, a.ID, req)
			if got := cloud.ErrorCode(err); got != tt.want.code {
				t.Fatalf("AdvanceAction error = %v (code %q), want code %q", err, got, tt.want.code)
			}
			after, ferr := b.actions.FindActionByID(b.admin, a.ID)
			if ferr != nil {
				t.Fatal(ferr)
			}
			m2, ferr := b.members.FindMemberByID(b.admin, m.ID)
			if ferr != nil {
				t.Fatal(ferr)
			}
			board, ferr := b.actions.Leaderboard(b.admin, t0, t0.Add(24*time.Hour))
			if ferr != nil {
				t.Fatal(ferr)
			}
			all, ferr := b.actions.FindActions(b.admin, cloud.ActionFilter{MemberID: m.ID})
			if ferr != nil {
				t.Fatal(ferr)
			}
			if tt.want.code != "" {
				if f := cloud.ErrorField(err); f != tt.want.field {
					t.Errorf("error field = %q, want %q", f, tt.want.field)
				}
				// Nothing of a failed advance is kept.
				if !after.Open || after.Version != a.Version || m2.CommercialStatusID != nil || len(board) != 0 || len(all) != 1 || countAudit(t, b) != auditBefore {
					t.Errorf("failed advance left traces: open=%v version=%d status=%v board=%v actions=%d", after.Open, after.Version, m2.CommercialStatusID, board, len(all))
				}
				return
			}
			if after.Open || after.ClosedAt == nil || !after.ClosedAt.Equal(now) || *after.ClosedBy != b.adminOp.ID {
				t.Errorf("advanced action open=%v closed_at=%v closed_by=%v", after.Open, after.ClosedAt, after.ClosedBy)
			}
			if tt.want.status != "" {
				if m2.CommercialStatusID == nil || *m2.CommercialStatusID != b.statusID(t, tt.want.status) {
					t.Errorf("member status = %v, want %s", m2.CommercialStatusID, tt.want.status)
				}
			} else if m2.CommercialStatusID != nil {
				t.Errorf("member status = %d, want unchanged", *m2.CommercialStatusID)
			}
			gotPoints := 0
			for _, e := range board {
				if e.OperatorID != sales.ID {
					t.Errorf("points went to operator %d, want the responsible operator %d", e.OperatorID, sales.ID)
				}
				gotPoints += e.Points
			}
			if gotPoints != tt.want.points || res.Points != tt.want.points {
				t.Errorf("points = %d (result %d), want %d", gotPoints, res.Points, tt.want.points)
			}
			if tt.want.note != (res.Note != nil) {
				t.Fatalf("note = %+v, want note %v", res.Note, tt.want.note)
			}
			if res.Note != nil && (res.Note.Kind != cloud.ActionNote || res.Note.Open || res.Note.Description != tt.note || *res.Note.ParentID != a.ID) {
				t.Errorf("note = %+v", res.Note)
			}
			if tt.want.nextType == "" {
				if res.Next != nil {
					t.Errorf("next = %+v, want none", res.Next)
				}
			} else {
				n := res.Next
				if n == nil {
					t.Fatal("no next action")
				}
				if n.TypeID != b.typeID(t, tt.want.nextType) || !n.Open || *n.ParentID != a.ID || n.MemberID != m.ID {
					t.Errorf("next = %+v, want open %s following %d", n, tt.want.nextType, a.ID)
				}
				wantOp := map[string]int64{"admin": b.adminOp.ID, "sales": sales.ID, "other": other.ID}[tt.want.nextOp]
				if n.OperatorID == nil || *n.OperatorID != wantOp {
					t.Errorf("next operator = %v, want %s (%d)", n.OperatorID, tt.want.nextOp, wantOp)
				}
				if n.PlannedAt == nil || !n.PlannedAt.Equal(now.Add(tt.want.nextAfter)) {
					t.Errorf("next planned at %v, want %v", n.PlannedAt, now.Add(tt.want.nextAfter))
				}
			}
			// The advance, its note, next action and status change are audited in the same transaction.
			wantAudit := auditBefore + 1
			if res.Note != nil {
				wantAudit++
			}
			if res.Next != nil {
				wantAudit++
			}
			if tt.want.status != "" {
				wantAudit++
			}
			if got := countAudit(t, b); got != wantAudit {
				t.Errorf("audit rows = %d, want %d", got, wantAudit)
			}
			wantActions := 1
			if res.Note != nil {
				wantActions++
			}
			if res.Next != nil {
				wantActions++
			}
			if len(all) != wantActions {
				t.Errorf("member has %d actions, want %d", len(all), wantActions)
			}
			// A closed action cannot be advanced again.
			if _, err := b.actions.AdvanceAction(b.admin, a.ID, cloud.AdvanceRequest{Mode: cloud.AdvanceClose, OutcomeID: req.OutcomeID, Version: after.Version}); cloud.ErrorCode(err) != cloud.ECONFLICT {
				t.Errorf("second advance error = %v, want ECONFLICT", err)
			}
		})
	}
}

func TestPrivateActions(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ownerCtx, owner := b.operator(t, "owner@a.test", cloud.RoleOperator)
	otherCtx, _ := b.operator(t, "other@a.test", cloud.RoleOperator)
	mgrCtx, _ := b.operator(t, "mgr@a.test", cloud.RoleCRMManager)
	m := b.member(t, "Bea", nil)
	priv := &cloud.Action{MemberID: m.ID, TypeID: b.typeID(t, "Meeting"), Private: true, OperatorID: &owner.ID, Description: "salary talk"}
	if err := b.actions.CreateAction(otherCtx, priv); err != nil { // created by "other" for "owner"
		t.Fatal(err)
	}
	pub := &cloud.Action{MemberID: m.ID, TypeID: b.typeID(t, "Tour")}
	if err := b.actions.CreateAction(b.admin, pub); err != nil {
		t.Fatal(err)
	}
	thirdCtx, _ := b.operator(t, "third@a.test", cloud.RoleOperator)
	for _, tc := range []struct {
		name string
		ctx  context.Context
		sees bool
	}{
		{"responsible operator", ownerCtx, true},
		{"creator", otherCtx, true},
		{"crm manager", mgrCtx, true},
		{"admin", b.admin, true},
		{"another operator", thirdCtx, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			list, err := b.actions.FindActions(tc.ctx, cloud.ActionFilter{MemberID: m.ID})
			if err != nil {
				t.Fatal(err)
			}
			want := 1
			if tc.sees {
				want = 2
			}
			if len(list) != want {
				t.Errorf("sees %d actions, want %d", len(list), want)
			}
			_, err = b.actions.FindActionByID(tc.ctx, priv.ID)
			if tc.sees != (err == nil) {
				t.Errorf("FindActionByID err = %v, sees = %v", err, tc.sees)
			}
			_, err = b.actions.AdvanceAction(tc.ctx, priv.ID, cloud.AdvanceRequest{Mode: cloud.AdvanceClose, OutcomeID: b.outcomeID(t, "Cancelled"), Version: 99})
			if !tc.sees && cloud.ErrorCode(err) != cloud.ENOTFOUND {
				t.Errorf("advance by %s: %v, want ENOTFOUND", tc.name, err)
			}
			agenda, err := b.actions.Agenda(tc.ctx, cloud.AgendaFilter{From: cloud.DateOf(t0), To: cloud.DateOf(t0)})
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range agenda {
				for _, a := range d.Actions {
					if a.ID == priv.ID && !tc.sees {
						t.Errorf("private action in %s's agenda", tc.name)
					}
				}
			}
		})
	}
}

func TestBlockingOverrideWhatIf(t *testing.T) {
	t.Parallel()
	b := setup(t)
	site := &cloud.Site{Name: "Centro", Timezone: "Europe/Rome"}
	if err := b.sites.CreateSite(b.admin, site); err != nil {
		t.Fatal(err)
	}
	entrance := &cloud.Gate{SiteID: site.ID, Name: "Turnstile 1", DeviceType: cloud.DeviceEntrance}
	exit := &cloud.Gate{SiteID: site.ID, Name: "Exit", DeviceType: cloud.DeviceExit}
	for _, g := range []*cloud.Gate{entrance, exit} {
		if err := b.sites.CreateGate(b.admin, g); err != nil {
			t.Fatal(err)
		}
	}
	m := b.member(t, "Carla", nil)
	other := b.member(t, "Dario", nil)
	if err := b.members.CreateCredential(b.admin, &cloud.Credential{MemberID: m.ID, Key: "card:12:34567"}); err != nil {
		t.Fatal(err)
	}
	rc := b.typeID(t, "Reception check")

	rec, err := b.access.AccessRecord(b.admin, m.ID, site.ID)
	if err != nil {
		t.Fatal(err)
	}
	if cloud.Blocks(rec.Record, cloud.DeviceEntrance) || len(rec.Record.Credentials) != 1 {
		t.Fatalf("record before any action = %+v", rec.Record)
	}
	// Only a member with a credential can be stopped at a gate: Dario has
	// none, 999999 is nobody's.
	wi, err := b.actions.WhatIf(b.admin, cloud.WhatIfRequest{TypeID: rc, MemberIDs: []int64{m.ID, other.ID, 999999}})
	if err != nil {
		t.Fatal(err)
	}
	if wi.MembersStopped != 1 || wi.MembersWithoutCredential != 1 || len(wi.Gates) != 1 {
		t.Fatalf("what-if bulk = %+v, want 1 member stopped (1 without credential) at the entrance", wi)
	}
	if g := wi.Gates[0]; g.ID != entrance.ID || g.Name != "Turnstile 1" || g.SiteName != "Centro" || g.DeviceType != cloud.DeviceEntrance || g.Members != 0 {
		t.Fatalf("gate = %+v, want Turnstile 1 at Centro, nobody with a membership valid there today", g)
	}
	// With a membership valid today the gate would stop Carla today.
	if err := b.members.CreateMembership(b.admin, &cloud.Membership{MemberID: m.ID, Name: "Annual", StartsOn: cloud.DateOf(t0).AddDays(-10), EndsOn: cloud.DateOf(t0).AddDays(300)}); err != nil {
		t.Fatal(err)
	}
	if wi, err = b.actions.WhatIf(b.admin, cloud.WhatIfRequest{TypeID: rc, MemberIDs: []int64{m.ID, other.ID}}); err != nil || wi.Gates[0].Members != 1 {
		t.Fatalf("what-if with a membership = %+v, %v; want 1 member at the entrance", wi, err)
	}
	// An override needs a block.
	if err := b.actions.CreateOverride(b.admin, &cloud.Override{MemberID: m.ID, GateID: entrance.ID, Reason: "VIP"}); cloud.ErrorCode(err) != cloud.ECONFLICT {
		t.Fatalf("override without block: %v, want ECONFLICT", err)
	}

	a := &cloud.Action{MemberID: m.ID, TypeID: rc}
	if err := b.actions.CreateAction(b.admin, a); err != nil {
		t.Fatal(err)
	}
	rec, err = b.access.AccessRecord(b.admin, m.ID, site.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !cloud.Blocks(rec.Record, cloud.DeviceEntrance) || cloud.Blocks(rec.Record, cloud.DeviceExit) {
		t.Fatalf("actions = %+v, want blocked at entrance only", rec.Record.Actions)
	}
	if act := rec.Record.Actions[0]; act.ID != uint64(a.ID) || act.Text != "Please see reception" {
		t.Errorf("action = %+v", act)
	}
	wi, err = b.actions.WhatIf(b.admin, cloud.WhatIfRequest{TypeID: rc})
	if err != nil {
		t.Fatal(err)
	}
	if wi.MembersStopped != 1 {
		t.Errorf("what-if type = %+v, want 1 member stopped", wi)
	}
	msg := cloud.AccessMessage
	wi, err = b.actions.WhatIf(b.admin, cloud.WhatIfRequest{TypeID: rc, AccessAction: &msg})
	if err != nil {
		t.Fatal(err)
	}
	if wi.MembersStopped != 0 || wi.MembersMessaged != 1 {
		t.Errorf("what-if as message = %+v", wi)
	}

	// Override: recorded with who and why, in the access record, action stays open.
	ov := &cloud.Override{MemberID: m.ID, GateID: entrance.ID, Reason: "Paid at the desk, system slow"}
	if err := b.actions.CreateOverride(b.admin, ov); err != nil {
		t.Fatal(err)
	}
	if ov.OperatorID != b.adminOp.ID || !ov.ExpiresAt.Equal(t0.Add(cloud.OverrideTTL)) {
		t.Errorf("override = %+v", ov)
	}
	rec, err = b.access.AccessRecord(b.admin, m.ID, site.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.Overrides) != 1 || rec.Overrides[0].GateID != entrance.ID || !cloud.Blocks(rec.Record, cloud.DeviceEntrance) {
		t.Errorf("record after override = %+v", rec)
	}
	var audits int
	if err := b.db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM audit_log WHERE action = 'access.override' AND operator_id = $1 AND data->>'reason' = $2`,
		b.adminOp.ID, ov.Reason).Scan(&audits); err != nil || audits != 1 {
		t.Errorf("override audit rows = %d, %v", audits, err)
	}
	b.clock.Add(cloud.OverrideTTL)
	rec, _ = b.access.AccessRecord(b.admin, m.ID, site.ID)
	if len(rec.Overrides) != 0 {
		t.Errorf("expired override still in the record")
	}

	// Closing the action lifts the block.
	if _, err := b.actions.AdvanceAction(b.admin, a.ID, cloud.AdvanceRequest{Mode: cloud.AdvanceClose, OutcomeID: b.outcomeID(t, "Done"), Version: a.Version}); err != nil {
		t.Fatal(err)
	}
	rec, _ = b.access.AccessRecord(b.admin, m.ID, site.ID)
	if cloud.Blocks(rec.Record, cloud.DeviceEntrance) {
		t.Error("still blocked after closing the action")
	}
}

func TestCopyBulkReplaceAgenda(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, sales := b.operator(t, "sales@a.test", cloud.RoleOperator)
	m1, m2, m3 := b.member(t, "E", &sales.ID), b.member(t, "F", nil), b.member(t, "G", nil)
	at := t0.Add(26 * time.Hour)
	tmpl := &cloud.Action{TypeID: b.typeID(t, "Telemarketing"), Description: "spring offer", PlannedAt: &at, Tags: []string{"spring"}}
	created, err := b.actions.BulkCreateActions(b.admin, tmpl, []int64{m1.ID, m2.ID, m3.ID})
	if err != nil {
		t.Fatal(err)
	}
	if len(created) != 3 || *created[0].OperatorID != sales.ID || created[1].OperatorID != nil {
		t.Fatalf("bulk = %+v", created)
	}
	// All or none: a foreign or unknown member fails the whole batch.
	if _, err := b.actions.BulkCreateActions(b.admin, tmpl, []int64{m1.ID, 424242}); cloud.ErrorField(err) != "member_ids[1]" {
		t.Fatalf("bulk with unknown member: %v", err)
	}
	if n, _ := b.actions.FindActions(b.admin, cloud.ActionFilter{MemberID: m1.ID}); len(n) != 1 {
		t.Fatalf("failed bulk left %d actions on m1", len(n))
	}
	cp, err := b.actions.CopyAction(b.admin, created[0].ID, m2.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cp.MemberID != m2.ID || cp.TypeID != tmpl.TypeID || cp.Description != "spring offer" || !cp.Open || cp.ID == created[0].ID {
		t.Errorf("copy = %+v", cp)
	}
	agenda, err := b.actions.Agenda(b.admin, cloud.AgendaFilter{From: cloud.DateOf(at), To: cloud.DateOf(at)})
	if err != nil {
		t.Fatal(err)
	}
	if len(agenda) != 2 || agenda[0].OperatorID == nil || *agenda[0].OperatorID != sales.ID || len(agenda[1].Actions) != 3 {
		t.Errorf("agenda = %+v", agenda)
	}
	n, err := b.crm.Replace(b.admin, "action_type", tmpl.TypeID, b.typeID(t, "Meeting"))
	if err != nil || n != 4 {
		t.Fatalf("replace = %d, %v; want 4", n, err)
	}
	n, err = b.crm.Replace(b.admin, "outcome", b.outcomeID(t, "Planned"), b.outcomeID(t, "Cancelled"))
	if err != nil || n != 4 {
		t.Fatalf("replace outcome = %d, %v; want 4", n, err)
	}
	open := true
	if l, _ := b.actions.FindActions(b.admin, cloud.ActionFilter{Open: &open}); len(l) != 0 {
		t.Errorf("%d actions open after replacing Planned by Cancelled", len(l))
	}
	opCtx, _ := b.operator(t, "op@a.test", cloud.RoleOperator)
	if _, err := b.crm.Replace(opCtx, "outcome", 1, 2); cloud.ErrorCode(err) != cloud.EFORBIDDEN {
		t.Errorf("operator replace: %v, want EFORBIDDEN", err)
	}
}

func countAudit(t *testing.T, b *bundle) int {
	t.Helper()
	var n int
	if err := b.db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM audit_log WHERE tenant_id = $1`, b.tenantID).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
