package postgres_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/alexedwards/argon2id"

	"varco.dev/cloud"
	"varco.dev/cloud/postgres"
	vsync "varco.dev/protocol/sync"
)

// edgeBundle is a bundle with a site, an edge at it and the edge stores.
type edgeBundle struct {
	*bundle
	edges    *postgres.EdgeService
	events   *postgres.EventStore
	commands *postgres.CommandStore
	passages *postgres.PassageService
	site     *cloud.Site
	edge     *cloud.Edge
	password string
}

func setupEdges(t *testing.T) *edgeBundle {
	t.Helper()
	b := &edgeBundle{bundle: setup(t)}
	b.edges = postgres.NewEdgeService(b.db, "tcp://broker.test:1884")
	b.events, b.commands, b.passages = postgres.NewEventStore(b.db), postgres.NewCommandStore(b.db), postgres.NewPassageService(b.db)
	b.site = &cloud.Site{Name: "Centro"}
	if err := b.sites.CreateSite(b.admin, b.site); err != nil {
		t.Fatal(err)
	}
	b.edge = &cloud.Edge{SiteID: b.site.ID, Code: "gate-1", Name: "Front turnstiles"}
	sec, err := b.edges.CreateEdge(b.admin, b.edge)
	if err != nil {
		t.Fatal(err)
	}
	b.password = sec.Password
	return b
}

// header is the header of edge code's messages at site.
func header(code string, site int64) vsync.Header {
	return vsync.Header{Tenant: "club-a", Site: strconv.FormatInt(site, 10), Edge: code, Time: vsync.TimestampOf(t0)}
}

// batch is an events batch of n passages from first, each a grant of member
// (a denial when member is 0) a second apart.
func (b *edgeBundle) batch(first uint64, n int, member int64) *vsync.Events {
	m := &vsync.Events{Header: header(b.edge.Code, b.site.ID), Boot: 42}
	for i := range n {
		seq := first + uint64(i)
		ev := vsync.Event{Seq: seq, Time: vsync.TimestampOf(t0.Add(time.Duration(seq) * time.Second)), Kind: vsync.EventPassage,
			Reader: "r1", Credential: vsync.CredentialKey{1, byte(seq)}, Decision: vsync.DecisionDeny, Reason: vsync.ReasonUnknownCredential}
		if member != 0 {
			ev.Member, ev.Decision, ev.Reason = vsync.MemberRef(member), vsync.DecisionGrant, vsync.ReasonNone
		}
		m.Events = append(m.Events, ev)
	}
	return m
}

func (b *edgeBundle) eventCount(t *testing.T, epoch int) int {
	t.Helper()
	var n int
	if err := b.db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM edge_events WHERE edge_id = $1 AND journal_epoch = $2`,
		b.edge.ID, epoch).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestEdgesCRUDAndCredentials(t *testing.T) {
	t.Parallel()
	b := setupEdges(t)
	if b.edge.MQTTUsername != "club-a/gate-1" || b.edge.Version != 1 || b.edge.ID == 0 || len(b.password) < 30 {
		t.Fatalf("created %+v, password %q", b.edge, b.password)
	}
	creds := postgres.NewEdgeCredentials(b.db)
	c, err := creds.Credential(context.Background(), "club-a/gate-1")
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := argon2id.ComparePasswordAndHash(b.password, c.PasswordHash); !ok || c.Site != strconv.FormatInt(b.site.ID, 10) ||
		c.Tenant != "club-a" || c.Edge != "gate-1" || c.Cloud || c.Validate() != nil {
		t.Fatalf("credential = %+v", c)
	}
	for _, u := range []string{"club-a/gate-2", "club-b/gate-1", "club-a", "/gate-1", "club-a/", "gate-1", ""} {
		if _, err := creds.Credential(context.Background(), u); cloud.ErrorCode(err) != cloud.ENOTFOUND {
			t.Errorf("credential %q: %v, want not found", u, err)
		}
	}

	bctx := b.otherTenant(t)
	otherSite := &cloud.Site{Name: "B"}
	if err := b.sites.CreateSite(bctx, otherSite); err != nil {
		t.Fatal(err)
	}
	opCtx, _ := b.operator(t, "op@a.test", cloud.RoleOperator)
	for _, tc := range []struct {
		name  string
		ctx   context.Context
		edge  cloud.Edge
		code  string
		field string
	}{
		{"bad code", b.admin, cloud.Edge{SiteID: b.site.ID, Code: "Gate 1", Name: "x"}, cloud.EINVALID, "code"},
		{"code too long", b.admin, cloud.Edge{SiteID: b.site.ID, Code: fmt.Sprintf("%065d", 1), Name: "x"}, cloud.EINVALID, "code"},
		{"no name", b.admin, cloud.Edge{SiteID: b.site.ID, Code: "g2", Name: " "}, cloud.EINVALID, "name"},
		{"code taken", b.admin, cloud.Edge{SiteID: b.site.ID, Code: "gate-1", Name: "x"}, cloud.EINVALID, "code"},
		{"unknown site", b.admin, cloud.Edge{SiteID: 987654, Code: "g2", Name: "x"}, cloud.EINVALID, "site_id"},
		{"another tenant's site", b.admin, cloud.Edge{SiteID: otherSite.ID, Code: "g2", Name: "x"}, cloud.EINVALID, "site_id"},
		{"not an admin", opCtx, cloud.Edge{SiteID: b.site.ID, Code: "g2", Name: "x"}, cloud.EFORBIDDEN, ""},
	} {
		e := tc.edge
		if _, err := b.edges.CreateEdge(tc.ctx, &e); cloud.ErrorCode(err) != tc.code || cloud.ErrorField(err) != tc.field {
			t.Errorf("%s: %v, want %s %q", tc.name, err, tc.code, tc.field)
		}
	}
	// Tenant B may use the same code: usernames differ by tenant.
	if _, err := b.edges.CreateEdge(bctx, &cloud.Edge{SiteID: otherSite.ID, Code: "gate-1", Name: "B's"}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.edges.FindEdgeByID(bctx, b.edge.ID); cloud.ErrorCode(err) != cloud.ENOTFOUND {
		t.Errorf("B finds A's edge: %v", err)
	}
	if list, err := b.edges.FindEdges(bctx); err != nil || len(list) != 1 || list[0].Name != "B's" {
		t.Errorf("B's edges = %+v, %v", list, err)
	}

	// Update, with versions.
	site2 := &cloud.Site{Name: "Nord"}
	if err := b.sites.CreateSite(b.admin, site2); err != nil {
		t.Fatal(err)
	}
	if _, err := b.edges.UpdateEdge(b.admin, b.edge.ID, 7, cloud.EdgeUpdate{Name: new("x")}); cloud.ErrorCode(err) != cloud.EPRECONDITION {
		t.Errorf("stale update: %v", err)
	}
	if _, err := b.edges.UpdateEdge(b.admin, b.edge.ID, 1, cloud.EdgeUpdate{SiteID: &otherSite.ID}); cloud.ErrorCode(err) != cloud.EINVALID {
		t.Errorf("move to B's site: %v", err)
	}
	e, err := b.edges.UpdateEdge(b.admin, b.edge.ID, 1, cloud.EdgeUpdate{Name: new("Nord gates"), SiteID: &site2.ID})
	if err != nil || e.Version != 2 || e.SiteID != site2.ID || e.Name != "Nord gates" {
		t.Fatalf("update = %+v, %v", e, err)
	}
	if c, _ := creds.Credential(context.Background(), "club-a/gate-1"); c.Site != strconv.FormatInt(site2.ID, 10) {
		t.Errorf("credential site after the move = %q", c.Site)
	}

	// Rotation: the old password stops matching.
	sec, err := b.edges.RotateEdgePassword(b.admin, b.edge.ID)
	if err != nil || sec.Password == b.password || sec.BrokerURL != "tcp://broker.test:1884" || sec.Username != "club-a/gate-1" || sec.Edge.Version != 3 {
		t.Fatalf("rotate = %+v, %v", sec, err)
	}
	c, _ = creds.Credential(context.Background(), "club-a/gate-1")
	if ok, _ := argon2id.ComparePasswordAndHash(b.password, c.PasswordHash); ok {
		t.Error("the old password still matches")
	}
	if ok, _ := argon2id.ComparePasswordAndHash(sec.Password, c.PasswordHash); !ok {
		t.Error("the new password does not match")
	}
	if _, err := b.edges.RotateEdgePassword(bctx, b.edge.ID); cloud.ErrorCode(err) != cloud.ENOTFOUND {
		t.Errorf("B rotates A's edge password: %v", err)
	}

	// Delete: gone from the API and the broker, the code is free again.
	if err := b.edges.DeleteEdge(b.admin, b.edge.ID, 1); cloud.ErrorCode(err) != cloud.EPRECONDITION {
		t.Errorf("stale delete: %v", err)
	}
	if err := b.edges.DeleteEdge(bctx, b.edge.ID, 3); cloud.ErrorCode(err) != cloud.ENOTFOUND {
		t.Errorf("B deletes A's edge: %v", err)
	}
	if err := b.edges.DeleteEdge(b.admin, b.edge.ID, 3); err != nil {
		t.Fatal(err)
	}
	if _, err := creds.Credential(context.Background(), "club-a/gate-1"); cloud.ErrorCode(err) != cloud.ENOTFOUND {
		t.Errorf("deleted edge's credential: %v", err)
	}
	if _, err := b.edges.FindEdgeByID(b.admin, b.edge.ID); cloud.ErrorCode(err) != cloud.ENOTFOUND {
		t.Errorf("deleted edge found: %v", err)
	}
	if err := b.edges.DeleteEdge(b.admin, b.edge.ID, 4); cloud.ErrorCode(err) != cloud.ENOTFOUND {
		t.Errorf("delete twice: %v", err)
	}
	if _, err := b.edges.CreateEdge(b.admin, &cloud.Edge{SiteID: b.site.ID, Code: "gate-1", Name: "Replacement"}); err != nil {
		t.Errorf("reuse a deleted edge's code: %v", err)
	}
}

// TestStoreEvents sends batches in and out of order, twice, with gaps and
// overlaps: each event is stored once and the mark covers exactly the
// events stored without a gap.
func TestStoreEvents(t *testing.T) {
	t.Parallel()
	b := setupEdges(t)
	m := b.member(t, "Anna", nil)
	steps := []struct {
		first       uint64
		n           int
		stored      int
		acked       uint64
		description string
	}{
		{1, 10, 10, 10, "first batch"},
		{1, 10, 0, 10, "the same again"},
		{21, 10, 10, 10, "after a gap: stored, not acknowledged"},
		{21, 10, 0, 10, "the gap's batch again"},
		{11, 10, 10, 30, "the gap filled: the mark jumps over what was stored after it"},
		{25, 10, 4, 34, "overlapping the end"},
		{5, 1, 0, 34, "an old event alone"},
		{36, 1, 1, 34, "one more gap"},
		{35, 1, 1, 36, "one event fills it"},
	}
	total := 0
	for _, s := range steps {
		res, err := b.events.StoreEvents(context.Background(), b.batch(s.first, s.n, m.ID))
		if err != nil {
			t.Fatalf("%s: %v", s.description, err)
		}
		total += s.stored
		if res.Stored != s.stored || res.Acked != s.acked {
			t.Errorf("%s: stored %d, acked %d; want %d, %d", s.description, res.Stored, res.Acked, s.stored, s.acked)
		}
	}
	if n := b.eventCount(t, 0); n != total || n != 36 {
		t.Errorf("%d events stored, want 36", n)
	}
	e, _ := b.edges.FindEdgeByID(b.admin, b.edge.ID)
	if e.Status.AckedSeq != 36 || e.Status.LastSeenAt == nil {
		t.Errorf("edge status = %+v", e.Status)
	}
	// The member's last visit is the latest granted passage.
	got, _ := b.members.FindMemberByID(b.admin, m.ID)
	var last *time.Time
	if err := b.db.Pool.QueryRow(context.Background(), `SELECT last_visit_at FROM members WHERE id = $1`, got.ID).Scan(&last); err != nil {
		t.Fatal(err)
	}
	if want := t0.Add(36 * time.Second); last == nil || !last.Equal(want) {
		t.Errorf("last visit = %v, want %v", last, want)
	}
	// A denial does not move it, an older grant neither.
	if _, err := b.events.StoreEvents(context.Background(), b.batch(37, 1, 0)); err != nil {
		t.Fatal(err)
	}
	if err := b.db.Pool.QueryRow(context.Background(), `SELECT last_visit_at FROM members WHERE id = $1`, got.ID).Scan(&last); err != nil {
		t.Fatal(err)
	}
	if want := t0.Add(36 * time.Second); !last.Equal(want) {
		t.Errorf("last visit after a denial = %v, want %v", last, want)
	}
}

// TestStoreEventsRefused: messages of unknown edges, other sites, other
// tenants, or with numbers beyond PostgreSQL's, store nothing.
func TestStoreEventsRefused(t *testing.T) {
	t.Parallel()
	b := setupEdges(t)
	bctx := b.otherTenant(t)
	siteB := &cloud.Site{Name: "B"}
	if err := b.sites.CreateSite(bctx, siteB); err != nil {
		t.Fatal(err)
	}
	if _, err := b.edges.CreateEdge(bctx, &cloud.Edge{SiteID: siteB.ID, Code: "gate-b", Name: "B"}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		edit func(*vsync.Events)
		code string
	}{
		{"unknown edge", func(m *vsync.Events) { m.Edge = "ghost" }, cloud.ENOTFOUND},
		{"unknown tenant", func(m *vsync.Events) { m.Tenant = "club-z" }, cloud.ENOTFOUND},
		{"another tenant's edge under A", func(m *vsync.Events) { m.Edge = "gate-b" }, cloud.ENOTFOUND},
		{"A's edge claiming B's site", func(m *vsync.Events) { m.Site = strconv.FormatInt(siteB.ID, 10) }, cloud.EINVALID},
		{"another site", func(m *vsync.Events) { m.Site = "999" }, cloud.EINVALID},
		{"seq beyond bigint", func(m *vsync.Events) { m.Events[0].Seq = 1 << 63 }, cloud.EINVALID},
		{"member beyond bigint", func(m *vsync.Events) { m.Events[0].Member = 1 << 63 }, cloud.EINVALID},
	} {
		m := b.batch(1, 1, 0)
		tc.edit(m)
		if _, err := b.events.StoreEvents(context.Background(), m); cloud.ErrorCode(err) != tc.code {
			t.Errorf("%s: %v, want %s", tc.name, err, tc.code)
		}
	}
	var n int
	if err := b.db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM edge_events`).Scan(&n); err != nil || n != 0 {
		t.Errorf("%d events stored (%v), want none", n, err)
	}
	// A deleted edge's messages are unknown.
	if err := b.edges.DeleteEdge(b.admin, b.edge.ID, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := b.events.StoreEvents(context.Background(), b.batch(1, 1, 0)); cloud.ErrorCode(err) != cloud.ENOTFOUND {
		t.Errorf("deleted edge: %v", err)
	}
}

// TestBirthJournalReset: a Birth whose journal ends before the mark starts a
// new journal epoch, whose events are stored apart from the old ones.
func TestBirthJournalReset(t *testing.T) {
	t.Parallel()
	b := setupEdges(t)
	birth := &vsync.Birth{Header: header(b.edge.Code, b.site.ID), Boot: 7, CacheVersion: 12, Software: "0.3.0", LastSeq: 0,
		Readers: []vsync.Reader{{ID: "r1", Device: vsync.DeviceEntrance, Online: true, Rows: 2, Cols: 16}}}
	res, err := b.events.RecordBirth(context.Background(), birth, 2)
	if err != nil || res.Acked != 0 || res.NewJournal {
		t.Fatalf("first birth = %+v, %v", res, err)
	}
	if _, err := b.events.StoreEvents(context.Background(), b.batch(1, 20, 0)); err != nil {
		t.Fatal(err)
	}
	// The same journal, after a restart: the mark is acknowledged again.
	birth.Boot, birth.LastSeq = 8, 25
	if res, err = b.events.RecordBirth(context.Background(), birth, 2); err != nil || res.Acked != 20 || res.NewJournal {
		t.Fatalf("birth of the same journal = %+v, %v", res, err)
	}
	// A new disk: the journal restarts at 1.
	birth.Boot, birth.LastSeq = 9, 3
	if res, err = b.events.RecordBirth(context.Background(), birth, 2); err != nil || res.Acked != 0 || !res.NewJournal {
		t.Fatalf("birth of a new journal = %+v, %v", res, err)
	}
	st, err := b.events.StoreEvents(context.Background(), b.batch(1, 3, 0))
	if err != nil || st.Stored != 3 || st.Acked != 3 {
		t.Fatalf("new journal's events = %+v, %v", st, err)
	}
	if b.eventCount(t, 0) != 20 || b.eventCount(t, 1) != 3 {
		t.Errorf("epochs hold %d and %d events, want 20 and 3", b.eventCount(t, 0), b.eventCount(t, 1))
	}
	e, _ := b.edges.FindEdgeByID(b.admin, b.edge.ID)
	s := e.Status
	if s.JournalEpoch != 1 || s.AckedSeq != 3 || s.BootID != "9" || s.CacheVersion != 12 || s.Software != "0.3.0" || s.ProtocolVersion != 2 ||
		!s.Online || len(s.Readers) != 1 || s.Readers[0] != (cloud.EdgeReader{ID: "r1", DeviceType: cloud.DeviceEntrance, Online: true, Rows: 2, Cols: 16}) ||
		s.LastBirthAt == nil {
		t.Errorf("status = %+v", s)
	}
}

// TestStatusOrder: the latest status wins, and a last will (which carries
// the time its connection was made) counts only for the current connection.
func TestStatusOrder(t *testing.T) {
	t.Parallel()
	b := setupEdges(t)
	at := func(ms int64) vsync.Header {
		h := header(b.edge.Code, b.site.ID)
		h.Time = vsync.TimestampOf(t0) + vsync.Timestamp(ms)
		return h
	}
	birth := func(ms int64) {
		t.Helper()
		if _, err := b.events.RecordBirth(context.Background(), &vsync.Birth{Header: at(ms), Boot: 1, Software: "x"}, 2); err != nil {
			t.Fatal(err)
		}
	}
	status := func(ms int64, online, wantKept, wantOnline bool) {
		t.Helper()
		kept, err := b.events.RecordStatus(context.Background(), &vsync.Status{Header: at(ms), Online: online, Boot: 1, CacheVersion: 5})
		if err != nil {
			t.Fatal(err)
		}
		e, _ := b.edges.FindEdgeByID(b.admin, b.edge.ID)
		if kept != wantKept || e.Status.Online != wantOnline {
			t.Errorf("status at %d online=%v: kept %v, online %v; want %v, %v", ms, online, kept, e.Status.Online, wantKept, wantOnline)
		}
	}
	status(99, false, true, false) // the will of a connection before any birth
	birth(100)                     // connection 1: will made at 99, birth at 100
	status(101, true, true, true)
	birth(200) // connection 2 (its will made at 199)
	status(201, true, true, true)
	status(99, false, false, true)  // the late will of connection 1: ignored
	status(150, true, false, true)  // a stale online status: ignored
	status(199, false, true, false) // connection 2's will: offline
	status(201, true, false, false) // its online status delivered again: ignored
	birth(300)                      // connection 3
	status(301, true, true, true)
	status(302, false, true, false) // a clean stop
}

func TestPassages(t *testing.T) {
	t.Parallel()
	b := setupEdges(t)
	anna, bruno := b.member(t, "Anna", nil), b.member(t, "Bruno", nil)
	edge2 := &cloud.Edge{SiteID: b.site.ID, Code: "gate-2", Name: "Spa"}
	if _, err := b.edges.CreateEdge(b.admin, edge2); err != nil {
		t.Fatal(err)
	}
	// Edge 1: Anna 1..5, denials 6..8, a door alarm 9; edge 2: Bruno 1..4.
	if _, err := b.events.StoreEvents(context.Background(), b.batch(1, 5, anna.ID)); err != nil {
		t.Fatal(err)
	}
	if _, err := b.events.StoreEvents(context.Background(), b.batch(6, 3, 0)); err != nil {
		t.Fatal(err)
	}
	alarm := b.batch(9, 1, 0)
	alarm.Events[0] = vsync.Event{Seq: 9, Time: vsync.TimestampOf(t0.Add(time.Hour)), Kind: vsync.EventDoorForced, Reader: "r1"}
	if _, err := b.events.StoreEvents(context.Background(), alarm); err != nil {
		t.Fatal(err)
	}
	e2 := b.batch(1, 4, bruno.ID)
	e2.Edge = "gate-2"
	for i := range e2.Events {
		e2.Events[i].Reader = "spa"
	}
	if _, err := b.events.StoreEvents(context.Background(), e2); err != nil {
		t.Fatal(err)
	}
	find := func(f cloud.PassageFilter) ([]*cloud.Passage, string) {
		t.Helper()
		ps, next, err := b.passages.FindPassages(b.admin, f)
		if err != nil {
			t.Fatal(err)
		}
		return ps, next
	}
	for _, tc := range []struct {
		name string
		f    cloud.PassageFilter
		want int
	}{
		{"all", cloud.PassageFilter{}, 12},
		{"Anna", cloud.PassageFilter{MemberID: anna.ID}, 5},
		{"edge 2", cloud.PassageFilter{EdgeID: edge2.ID}, 4},
		{"reader spa", cloud.PassageFilter{Reader: "spa"}, 4},
		{"denials", cloud.PassageFilter{Decision: "deny"}, 3},
		{"grants of edge 1", cloud.PassageFilter{Decision: "grant", EdgeID: b.edge.ID}, 5},
		{"from second 3 to 6", cloud.PassageFilter{From: t0.Add(3 * time.Second), To: t0.Add(6 * time.Second)}, 5},
		{"nobody", cloud.PassageFilter{MemberID: 987654}, 0},
	} {
		if ps, _ := find(tc.f); len(ps) != tc.want {
			t.Errorf("%s: %d passages, want %d", tc.name, len(ps), tc.want)
		}
	}
	// Newest first, page by page, each once.
	seen := map[int64]bool{}
	var prev *cloud.Passage
	f := cloud.PassageFilter{Limit: 5}
	for pages := 0; ; pages++ {
		ps, next := find(f)
		for _, p := range ps {
			if seen[p.ID] {
				t.Errorf("passage %d twice", p.ID)
			}
			seen[p.ID] = true
			if prev != nil && (p.At.After(prev.At) || p.At.Equal(prev.At) && p.ID > prev.ID) {
				t.Errorf("passage %d (%v) after %d (%v)", p.ID, p.At, prev.ID, prev.At)
			}
			prev = p
		}
		if next == "" {
			break
		}
		if pages > 5 {
			t.Fatal("paging does not end")
		}
		f.Cursor = next
	}
	if len(seen) != 12 {
		t.Errorf("paged through %d passages, want 12", len(seen))
	}
	ps, _ := find(cloud.PassageFilter{MemberID: anna.ID, Limit: 1})
	if p := ps[0]; p.Seq != 5 || p.Decision != "grant" || p.Reason != "none" || p.Reader != "r1" || *p.MemberID != anna.ID ||
		p.Credential != "0105000000000000000000000000000000"[:32] || !p.At.Equal(t0.Add(5*time.Second)) {
		t.Errorf("Anna's latest passage = %+v", p)
	}
	for _, bad := range []cloud.PassageFilter{{Cursor: "x"}, {Cursor: "1.0"}, {Decision: "maybe"}, {Reader: "R 1"},
		{From: t0, To: t0}} {
		if _, _, err := b.passages.FindPassages(b.admin, bad); cloud.ErrorCode(err) != cloud.EINVALID {
			t.Errorf("filter %+v: %v, want invalid", bad, err)
		}
	}
	// Tenant B sees none of them.
	bctx := b.otherTenant(t)
	if ps, _, err := b.passages.FindPassages(bctx, cloud.PassageFilter{}); err != nil || len(ps) != 0 {
		t.Errorf("B sees %d passages (%v)", len(ps), err)
	}
	if ps, _, err := b.passages.FindPassages(bctx, cloud.PassageFilter{MemberID: anna.ID}); err != nil || len(ps) != 0 {
		t.Errorf("B sees %d of Anna's passages (%v)", len(ps), err)
	}
}

func TestCommands(t *testing.T) {
	t.Parallel()
	b := setupEdges(t)
	for _, tc := range []struct {
		req   cloud.CommandRequest
		field string
	}{
		{cloud.CommandRequest{Op: "fly"}, "op"},
		{cloud.CommandRequest{Op: cloud.CommandOpen}, "reader"},
		{cloud.CommandRequest{Op: cloud.CommandOpen, Reader: "R1"}, "reader"},
		{cloud.CommandRequest{Op: cloud.CommandOpen, Reader: "r1", Text: "hi"}, "text"},
		{cloud.CommandRequest{Op: cloud.CommandResync, Reader: "r1"}, "reader"},
		{cloud.CommandRequest{Op: cloud.CommandShow, Reader: "r1", Seconds: 5}, "text"},
		{cloud.CommandRequest{Op: cloud.CommandShow, Reader: "r1", Text: "a\x07b", Seconds: 5}, "text"},
		{cloud.CommandRequest{Op: cloud.CommandShow, Reader: "r1", Text: "hi"}, "seconds"},
		{cloud.CommandRequest{Op: cloud.CommandShow, Reader: "r1", Text: "hi", Seconds: 601}, "seconds"},
		{cloud.CommandRequest{Op: cloud.CommandOpen, Reader: "r1", ExpiresIn: -1}, "expires_in"},
		{cloud.CommandRequest{Op: cloud.CommandOpen, Reader: "r1", ExpiresIn: 3601}, "expires_in"},
	} {
		if _, _, err := b.commands.CreateCommand(b.admin, b.edge.ID, tc.req); cloud.ErrorCode(err) != cloud.EINVALID || cloud.ErrorField(err) != tc.field {
			t.Errorf("%+v: %v, want invalid %q", tc.req, err, tc.field)
		}
	}
	bctx := b.otherTenant(t)
	if _, _, err := b.commands.CreateCommand(bctx, b.edge.ID, cloud.CommandRequest{Op: cloud.CommandResync}); cloud.ErrorCode(err) != cloud.ENOTFOUND {
		t.Errorf("B commands A's edge: %v", err)
	}
	if _, err := b.commands.FindCommands(bctx, b.edge.ID, 0, 0); cloud.ErrorCode(err) != cloud.ENOTFOUND {
		t.Errorf("B lists A's edge's commands: %v", err)
	}

	opCtx, op := b.operator(t, "desk@a.test", cloud.RoleOperator)
	open, msg, err := b.commands.CreateCommand(opCtx, b.edge.ID, cloud.CommandRequest{Op: cloud.CommandOpen, Reader: "r1", ExpiresIn: 30})
	if err != nil {
		t.Fatal(err)
	}
	if open.Status != cloud.CommandQueued || *open.CreatedBy != op.ID || !open.ExpiresAt.Equal(t0.Add(30*time.Second)) ||
		msg.ID != uint64(open.ID) || msg.Op != vsync.CmdOpen || msg.Tenant != "club-a" || msg.Edge != "gate-1" || msg.Validate() != nil {
		t.Fatalf("open = %+v, message %+v", open, msg)
	}
	show, _, err := b.commands.CreateCommand(opCtx, b.edge.ID, cloud.CommandRequest{Op: cloud.CommandShow, Reader: "r1", Text: "Ciao Anna", Seconds: 5})
	if err != nil {
		t.Fatal(err)
	}
	resync, _, err := b.commands.CreateCommand(b.admin, b.edge.ID, cloud.CommandRequest{Op: cloud.CommandResync})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.commands.MarkCommandSent(context.Background(), open.ID); err != nil {
		t.Fatal(err)
	}
	// The birth hands out what the broker never took.
	res, err := b.events.RecordBirth(context.Background(), &vsync.Birth{Header: header(b.edge.Code, b.site.ID), Boot: 1, Software: "x"}, 2)
	if err != nil || len(res.Pending) != 2 || res.Pending[0].ID != show.ID || res.Pending[1].ID != resync.ID ||
		res.Pending[0].Msg.Text != "Ciao Anna" || res.Pending[1].Msg.Validate() != nil {
		t.Fatalf("pending = %+v, %v", res.Pending, err)
	}
	// The edge reports: the open done by a remote-open, the show by a
	// command-done; a command-done cannot acknowledge an open, nor another
	// edge's report a command of this one.
	other := &cloud.Edge{SiteID: b.site.ID, Code: "gate-2", Name: "Other"}
	if _, err := b.edges.CreateEdge(b.admin, other); err != nil {
		t.Fatal(err)
	}
	report := func(code string, seq uint64, kind vsync.EventKind, cmd int64) {
		t.Helper()
		m := &vsync.Events{Header: header(code, b.site.ID), Boot: 1, Events: []vsync.Event{{Seq: seq, Time: vsync.TimestampOf(t0.Add(time.Second)),
			Kind: kind, Reader: "r1", Command: uint64(cmd)}}}
		if _, err := b.events.StoreEvents(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	report("gate-2", 1, vsync.EventRemoteOpen, open.ID)
	report("gate-1", 1, vsync.EventCommandDone, open.ID)
	report("gate-1", 2, vsync.EventCommandDone, show.ID)
	status := func() map[int64]cloud.CommandStatus {
		t.Helper()
		cs, err := b.commands.FindCommands(opCtx, b.edge.ID, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		out := map[int64]cloud.CommandStatus{}
		for _, c := range cs {
			out[c.ID] = c.Status
		}
		return out
	}
	if s := status(); s[open.ID] != cloud.CommandSent || s[show.ID] != cloud.CommandDone || s[resync.ID] != cloud.CommandQueued {
		t.Errorf("statuses = %v", s)
	}
	report("gate-1", 3, vsync.EventRemoteOpen, open.ID)
	// Past their expiry, the commands not done read as expired.
	b.clock.Add(2 * time.Minute)
	if s := status(); s[open.ID] != cloud.CommandDone || s[show.ID] != cloud.CommandDone || s[resync.ID] != cloud.CommandExpired {
		t.Errorf("statuses after expiry = %v", s)
	}
	if res, _ := b.events.RecordBirth(context.Background(), &vsync.Birth{Header: header(b.edge.Code, b.site.ID), Boot: 2, Software: "x"}, 2); len(res.Pending) != 0 {
		t.Errorf("expired commands pending: %+v", res.Pending)
	}
	cs, _ := b.commands.FindCommands(opCtx, b.edge.ID, 0, 2)
	if len(cs) != 2 || cs[0].ID != resync.ID {
		t.Fatalf("first page = %+v", cs)
	}
	if cs, _ = b.commands.FindCommands(opCtx, b.edge.ID, cs[1].ID, 2); len(cs) != 1 || cs[0].ID != open.ID || cs[0].DoneAt == nil {
		t.Errorf("second page = %+v", cs)
	}
	// Audited with who sent it.
	entries, err := postgres.NewAuditService(b.db).FindAudit(b.admin, cloud.AuditFilter{Entity: "edge", EntityID: b.edge.ID})
	if err != nil {
		t.Fatal(err)
	}
	var audited int
	for _, e := range entries {
		if e.Action == "edge.command" {
			audited++
		}
	}
	if audited != 3 {
		t.Errorf("%d commands audited, want 3", audited)
	}
}
