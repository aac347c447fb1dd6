package http_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"varco.dev/cloud"
	cloudhttp "varco.dev/cloud/http"
	"varco.dev/cloud/internal/gatewaytest"
	"varco.dev/cloud/internal/pgtest"
	"varco.dev/cloud/mqtt"
	"varco.dev/cloud/postgres"
	"varco.dev/cloud/twilio"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var t0 = time.Date(2025, 3, 4, 8, 30, 0, 0, time.UTC)

const password = "correct horse battery"

type env struct {
	t       *testing.T
	srv     *cloudhttp.Server
	db      *postgres.DB
	clock   *pgtest.Clock
	client  *http.Client
	imports *postgres.ImportService
	jobs    chan *cloud.ImportJob // jobs the background worker ended
	// The messaging: SMS go to a loopback Twilio gateway; sends the
	// worker ended arrive on sends.
	twilio *gatewaytest.Twilio
	sends  chan *cloud.Communication
}

// client is an operator's view of the API.
type client struct {
	e     *env
	token string
}

func setup(t *testing.T) *env { return setupWith(t, nil) }

// setupWith is setup with configure adjusting the server (its services)
// before it opens.
func setupWith(t *testing.T, configure func(*cloudhttp.Server, *postgres.DB)) *env {
	t.Helper()
	clock := pgtest.NewClock(t0)
	db := pgtest.NewDB(t, clock)
	s := cloudhttp.NewServer()
	s.Addr = "127.0.0.1:0"
	s.Logger = pgtest.Logger(t)
	s.Now = clock.Now
	s.DB = db
	s.AuthService = postgres.NewAuthService(db)
	s.TenantService = postgres.NewTenantService(db)
	s.OperatorService = postgres.NewOperatorService(db)
	s.SiteService = postgres.NewSiteService(db)
	s.MemberService = postgres.NewMemberService(db)
	imports := postgres.NewImportService(db)
	imports.BatchRows = 50
	jobs := make(chan *cloud.ImportJob, 16)
	imports.OnJobEnd = func(j *cloud.ImportJob) {
		select {
		case jobs <- j:
		default:
		}
	}
	s.ImportService = imports
	s.CRMService = postgres.NewCRMService(db)
	s.ActionService = postgres.NewActionService(db)
	s.AccessService = postgres.NewAccessService(db)
	s.AuditService = postgres.NewAuditService(db)
	s.TemplateService = postgres.NewTemplateService(db)
	tw := gatewaytest.NewTwilio(t)
	comms := postgres.NewCommunicationService(db)
	comms.SMS = &twilio.Client{BaseURL: tw.URL, AccountSID: tw.AccountSID, AuthToken: tw.AuthToken, From: "+15005550006"}
	sends := make(chan *cloud.Communication, 16)
	comms.OnJobEnd = func(c *cloud.Communication) { sends <- c }
	s.CommunicationService = comms
	s.TargetService = postgres.NewTargetService(db)
	s.ScheduleService = postgres.NewScheduleService(db)
	s.SyncConfigService = postgres.NewSyncConfigService(db)
	s.EdgeService = postgres.NewEdgeService(db, "tcp://broker.test:1884")
	s.PassageService = postgres.NewPassageService(db)
	// Commands to a broker the client never connects to: they stay queued.
	offline, err := mqtt.NewClient(mqtt.ClientConfig{Broker: "tcp://127.0.0.1:1", ClientID: "offline"})
	if err != nil {
		t.Fatal(err)
	}
	if s.CommandService, err = mqtt.NewCommander(mqtt.CommanderConfig{Store: postgres.NewCommandStore(db), Sealer: mqtt.NewMemSealer(),
		Client: offline, Logger: s.Logger}); err != nil {
		t.Fatal(err)
	}
	if configure != nil {
		configure(s, db)
	}
	if err := s.Open(); err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{}
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		if err := s.Close(context.Background()); err != nil {
			t.Error(err)
		}
	})
	if err := imports.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(imports.Stop)
	if err := comms.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(comms.Stop)
	return &env{t: t, srv: s, db: db, clock: clock, client: &http.Client{Transport: tr}, imports: imports, jobs: jobs, twilio: tw, sends: sends}
}

// tenant creates a tenant with an admin and returns the admin's client.
func (e *env) tenant(slug string) *client {
	e.t.Helper()
	err := postgres.NewTenantService(e.db).CreateTenant(context.Background(), &cloud.Tenant{Name: slug, Slug: slug},
		&cloud.Operator{Email: "admin@" + slug + ".test", Name: "Admin " + slug}, password)
	if err != nil {
		e.t.Fatal(err)
	}
	return e.login("admin@"+slug+".test", password)
}

func (e *env) login(email, pw string) *client {
	e.t.Helper()
	c := &client{e: e}
	var out struct {
		Token string `json:"token"`
	}
	c.must(http.MethodPost, "/api/v1/auth/login", map[string]string{"email": email, "password": pw}, http.StatusOK, &out)
	c.token = out.Token
	return c
}

// do sends a request; body is JSON-encoded unless it is a string or []byte.
func (c *client) do(method, path string, body any, hdr ...string) (int, []byte, http.Header) {
	c.e.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	case []byte:
		r = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			c.e.t.Fatal(err)
		}
		r = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, c.e.srv.URL()+path, r)
	if err != nil {
		c.e.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.e.client.Do(req)
	if err != nil {
		c.e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.e.t.Fatal(err)
	}
	return resp.StatusCode, b, resp.Header
}

// must sends a request, checks the status and decodes the body into out.
func (c *client) must(method, path string, body any, status int, out any) {
	c.e.t.Helper()
	got, b, _ := c.do(method, path, body)
	if got != status {
		c.e.t.Fatalf("%s %s = %d %s, want %d", method, path, got, b, status)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			c.e.t.Fatalf("%s %s: decode %s: %v", method, path, b, err)
		}
	}
}

type apiError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Field   string `json:"field"`
	} `json:"error"`
}

func decodeErr(t *testing.T, b []byte) apiError {
	t.Helper()
	var e apiError
	if err := json.Unmarshal(b, &e); err != nil || e.Error.Code == "" {
		t.Fatalf("not a JSON error: %s (%v)", b, err)
	}
	return e
}

type fixture struct {
	memberID, siteID, gateID, actionID, credentialID, membershipID, operatorID, typeID, outcomeID int64
	instalmentID, bookingID, importID                                                             int64
}

// populate gives a tenant a site, a gate, a member with a credential, a
// membership, an instalment and a booking, an operator, an open blocking
// action and an import job.
func populate(t *testing.T, c *client, tag string) fixture {
	t.Helper()
	var f fixture
	var obj struct {
		ID int64 `json:"id"`
	}
	c.must("POST", "/api/v1/sites", map[string]any{"name": "Site " + tag, "timezone": "Europe/Rome"}, 201, &obj)
	f.siteID = obj.ID
	c.must("POST", "/api/v1/gates", map[string]any{"site_id": f.siteID, "name": "Gate " + tag, "device_type": "entrance"}, 201, &obj)
	f.gateID = obj.ID
	c.must("POST", "/api/v1/members", map[string]any{"kind": "person", "first_name": "Anna", "last_name": tag, "mobile": "+393331234567",
		"consents": []map[string]any{{"channel": "sms", "purpose": "service", "granted": true}}}, 201, &obj)
	f.memberID = obj.ID
	c.must("POST", fmt.Sprintf("/api/v1/members/%d/credentials", f.memberID), map[string]any{"key": "card:1:" + fmt.Sprint(1000+len(tag))}, 201, &obj)
	f.credentialID = obj.ID
	c.must("POST", fmt.Sprintf("/api/v1/members/%d/memberships", f.memberID), map[string]any{"name": "Annual", "starts_on": "2025-01-01", "ends_on": "2025-12-31"}, 201, &obj)
	f.membershipID = obj.ID
	c.must("POST", "/api/v1/operators", map[string]any{"email": "op-" + tag + "@x.test", "name": "Op", "role": "operator", "password": password}, 201, &obj)
	f.operatorID = obj.ID
	var cfg cloud.CRMConfig
	c.must("GET", "/api/v1/crm/config", nil, 200, &cfg)
	for _, at := range cfg.ActionTypes {
		if at.Name == "Reception check" {
			f.typeID = at.ID
		}
	}
	f.outcomeID = cfg.Outcomes[0].ID
	c.must("POST", "/api/v1/actions", map[string]any{"member_id": f.memberID, "type_id": f.typeID, "description": "secret " + tag}, 201, &obj)
	f.actionID = obj.ID
	c.must("POST", fmt.Sprintf("/api/v1/members/%d/instalments", f.memberID), map[string]any{"membership_id": f.membershipID,
		"description": "secret " + tag, "amount_cents": 4990, "due_on": "2025-04-01"}, 201, &obj)
	f.instalmentID = obj.ID
	c.must("POST", fmt.Sprintf("/api/v1/members/%d/bookings", f.memberID), map[string]any{"site_id": f.siteID, "title": "secret " + tag,
		"starts_at": "2025-03-05T17:00:00Z", "ends_at": "2025-03-05T18:00:00Z"}, 201, &obj)
	f.bookingID = obj.ID
	status, b, _ := c.do("POST", "/api/v1/members/import", "kind,last_name,birth_date\nperson,Imported,bad\n", "Content-Type", "text/csv")
	if status != 200 || json.Unmarshal(b, &obj) != nil {
		t.Fatalf("import = %d %s", status, b)
	}
	f.importID = obj.ID
	return f
}

func TestTenantIsolation(t *testing.T) {
	t.Parallel()
	e := setup(t)
	a := e.tenant("club-a")
	b := e.tenant("club-b")
	fa := populate(t, a, "A")
	fb := populate(t, b, "B")

	// Every route with an {id}, fed tenant A's IDs and hostile strings, as tenant B.
	hostile := []string{
		fmt.Sprint(fa.memberID), "0", "-1", "9223372036854775807", "9223372036854775808", "99999999999999999999",
		"abc", "1;DROP TABLE members", "1%20OR%201=1", "%27%20OR%20%271%27=%271", "1e3", "0x10", "%00", "01",
	}
	idOf := map[string]int64{"members": fa.memberID, "sites": fa.siteID, "gates": fa.gateID, "actions": fa.actionID,
		"credentials": fa.credentialID, "memberships": fa.membershipID, "operators": fa.operatorID,
		"crm/action-types": fa.typeID, "crm/outcomes": fa.outcomeID,
		"instalments": fa.instalmentID, "bookings": fa.bookingID, "imports": fa.importID}
	routes := []struct{ method, path string }{
		{"GET", "/api/v1/members/%s"}, {"PATCH", "/api/v1/members/%s"}, {"POST", "/api/v1/members/%s/archive"},
		{"GET", "/api/v1/members/%s/credentials"}, {"POST", "/api/v1/members/%s/credentials"},
		{"GET", "/api/v1/members/%s/memberships"}, {"POST", "/api/v1/members/%s/memberships"},
		{"GET", "/api/v1/members/%s/actions"}, {"GET", "/api/v1/members/%s/access?site_id=" + fmt.Sprint(fb.siteID)},
		{"POST", "/api/v1/members/%s/overrides"},
		{"GET", "/api/v1/members/%s/instalments"}, {"POST", "/api/v1/members/%s/instalments"},
		{"GET", "/api/v1/members/%s/bookings"}, {"POST", "/api/v1/members/%s/bookings"},
		{"PATCH", "/api/v1/instalments/%s"}, {"PATCH", "/api/v1/bookings/%s"},
		{"GET", "/api/v1/imports/%s"}, {"GET", "/api/v1/imports/%s/errors"},
		{"GET", "/api/v1/sites/%s"}, {"PATCH", "/api/v1/sites/%s"}, {"GET", "/api/v1/gates/%s"}, {"PATCH", "/api/v1/gates/%s"},
		{"GET", "/api/v1/actions/%s"}, {"PATCH", "/api/v1/actions/%s"}, {"POST", "/api/v1/actions/%s/advance"}, {"POST", "/api/v1/actions/%s/copy"},
		{"PATCH", "/api/v1/credentials/%s"}, {"PATCH", "/api/v1/memberships/%s"},
		{"GET", "/api/v1/operators/%s"}, {"PATCH", "/api/v1/operators/%s"},
		{"PATCH", "/api/v1/crm/action-types/%s"}, {"PATCH", "/api/v1/crm/outcomes/%s"},
	}
	bodies := map[string]any{
		"PATCH": map[string]any{"name": "pwned", "version": 1},
		"POST":  map[string]any{},
	}
	for _, rt := range routes {
		// The real ID of tenant A's entity of this kind.
		seg := strings.SplitN(strings.TrimPrefix(rt.path, "/api/v1/"), "/%s", 2)[0]
		ids := append([]string{fmt.Sprint(idOf[seg])}, hostile...)
		for _, id := range ids {
			path := fmt.Sprintf(rt.path, id)
			var body any = bodies[rt.method]
			switch {
			case strings.HasSuffix(rt.path, "/archive"):
				body = map[string]any{"version": 1}
			case strings.HasSuffix(rt.path, "/credentials") && rt.method == "POST":
				body = map[string]any{"key": "card:9:999"}
			case strings.HasSuffix(rt.path, "/memberships") && rt.method == "POST":
				body = map[string]any{"name": "x", "starts_on": "2025-01-01", "ends_on": "2025-02-01"}
			case strings.HasSuffix(rt.path, "/overrides"):
				body = map[string]any{"gate_id": fb.gateID, "reason": "x"}
			case strings.HasSuffix(rt.path, "/advance"):
				body = map[string]any{"mode": "close", "outcome_id": fb.outcomeID, "version": 1}
			case strings.HasSuffix(rt.path, "/instalments") && rt.method == "POST":
				body = map[string]any{"amount_cents": 100, "due_on": "2025-03-01"}
			case strings.HasSuffix(rt.path, "/bookings") && rt.method == "POST":
				body = map[string]any{"site_id": fb.siteID, "title": "x", "starts_at": "2025-03-05T17:00:00Z", "ends_at": "2025-03-05T18:00:00Z"}
			}
			if rt.method == "PATCH" && seg == "members" {
				body = map[string]any{"first_name": "pwned", "version": 1}
			} else if rt.method == "PATCH" && (seg == "credentials" || seg == "actions") {
				body = map[string]any{"description": "pwned", "version": 1}
				if seg == "credentials" {
					body = map[string]any{"label": "pwned", "version": 1}
				}
			} else if rt.method == "PATCH" && seg == "memberships" {
				body = map[string]any{"name": "pwned", "version": 1}
			} else if rt.method == "PATCH" && seg == "instalments" {
				body = map[string]any{"description": "pwned", "version": 1}
			} else if rt.method == "PATCH" && seg == "bookings" {
				body = map[string]any{"title": "pwned", "version": 1}
			}
			status, resp, _ := b.do(rt.method, path, body)
			if status != 404 {
				t.Errorf("B %s %s = %d %s, want 404", rt.method, path, status, resp)
			}
			if bytes.Contains(resp, []byte("secret A")) || bytes.Contains(resp, []byte(`"A"`)) {
				t.Errorf("B %s %s leaked A's data: %s", rt.method, path, resp)
			}
		}
	}

	// Body references to A's entities from B are rejected as not found, never linked.
	for _, tc := range []struct {
		method, path string
		body         any
		field        string
	}{
		{"POST", "/api/v1/actions", map[string]any{"member_id": fa.memberID, "type_id": fb.typeID}, "member_id"},
		{"POST", "/api/v1/actions", map[string]any{"member_id": fb.memberID, "type_id": fa.typeID}, "type_id"},
		{"POST", "/api/v1/actions", map[string]any{"member_id": fb.memberID, "operator_id": fa.operatorID}, "operator_id"},
		{"POST", "/api/v1/actions/bulk", map[string]any{"member_ids": []int64{fb.memberID, fa.memberID}, "action": map[string]any{}}, "member_ids[1]"},
		{"POST", "/api/v1/gates", map[string]any{"site_id": fa.siteID, "name": "x", "device_type": "exit"}, "site_id"},
		{"POST", "/api/v1/members", map[string]any{"kind": "person", "last_name": "X", "operator_id": fa.operatorID}, "operator_id"},
		{"POST", "/api/v1/members", map[string]any{"kind": "company", "company_name": "X", "vat_number": "IT12345678901", "legal_rep_id": fa.memberID}, "legal_rep_id"},
		{"POST", fmt.Sprintf("/api/v1/members/%d/memberships", fb.memberID), map[string]any{"name": "x", "starts_on": "2025-01-01", "ends_on": "2025-02-01", "site_ids": []int64{fa.siteID}}, "site_ids"},
		{"POST", fmt.Sprintf("/api/v1/members/%d/overrides", fb.memberID), map[string]any{"gate_id": fa.gateID, "reason": "x"}, "gate_id"},
		{"PUT", "/api/v1/crm/relations", map[string]any{"action_type_id": fa.typeID, "outcome_id": fb.outcomeID}, "action_type_id"},
		{"POST", "/api/v1/crm/replace", map[string]any{"kind": "action_type", "from": fb.typeID, "to": fa.typeID}, "to"},
		{"POST", "/api/v1/what-if", map[string]any{"type_id": fa.typeID}, "type_id"},
		{"POST", fmt.Sprintf("/api/v1/members/%d/instalments", fb.memberID), map[string]any{"membership_id": fa.membershipID, "amount_cents": 100, "due_on": "2025-03-01"}, "membership_id"},
		{"PATCH", fmt.Sprintf("/api/v1/instalments/%d", fb.instalmentID), map[string]any{"membership_id": fa.membershipID, "version": 1}, "membership_id"},
		{"POST", fmt.Sprintf("/api/v1/members/%d/bookings", fb.memberID), map[string]any{"site_id": fa.siteID, "title": "x", "starts_at": "2025-03-05T17:00:00Z", "ends_at": "2025-03-05T18:00:00Z"}, "site_id"},
		{"PATCH", fmt.Sprintf("/api/v1/bookings/%d", fb.bookingID), map[string]any{"site_id": fa.siteID, "version": 1}, "site_id"},
	} {
		status, resp, _ := b.do(tc.method, tc.path, tc.body)
		if status != 400 {
			t.Errorf("B %s %s %v = %d %s, want 400", tc.method, tc.path, tc.body, status, resp)
			continue
		}
		if e := decodeErr(t, resp); e.Error.Field != tc.field {
			t.Errorf("B %s %s: field %q, want %q (%s)", tc.method, tc.path, e.Error.Field, tc.field, resp)
		}
	}

	// What B can list holds nothing of A.
	for _, path := range []string{"/api/v1/members", "/api/v1/sites", "/api/v1/gates", "/api/v1/actions", "/api/v1/operators",
		"/api/v1/audit", "/api/v1/crm/config", "/api/v1/members/export", "/api/v1/members?q=A", "/api/v1/agenda?from=2025-03-01&to=2025-03-31",
		"/api/v1/leaderboard", "/api/v1/imports", fmt.Sprintf("/api/v1/members/%d/instalments", fb.memberID),
		fmt.Sprintf("/api/v1/members/%d/bookings", fb.memberID)} {
		status, resp, _ := b.do("GET", path, nil)
		if status != 200 {
			t.Errorf("B GET %s = %d %s", path, status, resp)
		}
		for _, leak := range []string{"secret A", "Site A", "Gate A", "op-A@", "admin@club-a", `"last_name":"A"`, ",A,"} {
			if bytes.Contains(resp, []byte(leak)) {
				t.Errorf("B GET %s leaks %q: %s", path, leak, resp)
			}
		}
	}
	// A's data is untouched.
	var m cloud.Member
	a.must("GET", fmt.Sprintf("/api/v1/members/%d", fa.memberID), nil, 200, &m)
	if m.FirstName != "Anna" || m.Version != 1 || m.ArchivedAt != nil {
		t.Errorf("A's member changed: %+v", m)
	}
	var act cloud.Action
	a.must("GET", fmt.Sprintf("/api/v1/actions/%d", fa.actionID), nil, 200, &act)
	if act.Version != 1 || !act.Open {
		t.Errorf("A's action changed: %+v", act)
	}
	var list struct{ Items []cloud.Action }
	a.must("GET", "/api/v1/actions", nil, 200, &list)
	if len(list.Items) != 1 {
		t.Errorf("A has %d actions, want 1 (B's copy or bulk must not land in A)", len(list.Items))
	}
	var ins struct{ Items []cloud.Instalment }
	a.must("GET", fmt.Sprintf("/api/v1/members/%d/instalments", fa.memberID), nil, 200, &ins)
	if len(ins.Items) != 1 || ins.Items[0].Version != 1 || ins.Items[0].Description != "secret A" {
		t.Errorf("A's instalments changed: %+v", ins.Items)
	}
	var bks struct{ Items []cloud.Booking }
	a.must("GET", fmt.Sprintf("/api/v1/members/%d/bookings", fa.memberID), nil, 200, &bks)
	if len(bks.Items) != 1 || bks.Items[0].Version != 1 || bks.Items[0].SiteID != fa.siteID {
		t.Errorf("A's bookings changed: %+v", bks.Items)
	}
}

func TestAuth(t *testing.T) {
	t.Parallel()
	e := setup(t)
	a := e.tenant("club-a")
	anon := &client{e: e}
	for _, tok := range []string{"", "vc_nope", "garbage", strings.Repeat("x", 5000)} {
		anon.token = tok
		if status, b, _ := anon.do("GET", "/api/v1/members", nil); status != 401 {
			t.Errorf("token %q: %d %s", tok[:min(len(tok), 10)], status, b)
		}
	}
	if status, _, _ := anon.do("POST", "/api/v1/auth/login", map[string]string{"email": "admin@club-a.test", "password": "wrong password"}); status != 401 {
		t.Errorf("wrong password = %d", status)
	}
	if status, _, _ := anon.do("POST", "/api/v1/auth/login", map[string]string{"email": "nobody@club-a.test", "password": password}); status != 401 {
		t.Errorf("unknown e-mail = %d", status)
	}
	// API tokens work and are stored hashed.
	var tok struct {
		Token string `json:"token"`
	}
	a.must("POST", "/api/v1/tokens", map[string]string{"name": "integration"}, 201, &tok)
	api := &client{e: e, token: tok.Token}
	api.must("GET", "/api/v1/me", nil, 200, nil)
	var n int
	if err := e.db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM api_tokens WHERE token_hash = convert_to($1, 'UTF8')`, tok.Token).Scan(&n); err != nil || n != 0 {
		t.Errorf("token stored in clear: %d %v", n, err)
	}
	// Session tokens expire.
	e.clock.Add(13 * time.Hour)
	if status, _, _ := a.do("GET", "/api/v1/me", nil); status != 401 {
		t.Errorf("expired session = %d", status)
	}
	api.must("GET", "/api/v1/me", nil, 200, nil)
	// Logout revokes.
	api.must("POST", "/api/v1/auth/logout", nil, 204, nil)
	if status, _, _ := api.do("GET", "/api/v1/me", nil); status != 401 {
		t.Errorf("after logout = %d", status)
	}
	// Roles: an operator cannot create operators or change the CRM config.
	a = e.login("admin@club-a.test", password)
	a.must("POST", "/api/v1/operators", map[string]any{"email": "op@a.test", "name": "Op", "role": "operator", "password": password}, 201, nil)
	op := e.login("op@a.test", password)
	for _, tc := range []struct {
		method, path string
		body         any
	}{
		{"POST", "/api/v1/operators", map[string]any{"email": "x@a.test", "name": "X", "role": "admin", "password": password}},
		{"POST", "/api/v1/crm/action-types", map[string]any{"name": "X"}},
		{"POST", "/api/v1/sites", map[string]any{"name": "X"}},
		{"GET", "/api/v1/audit", nil},
	} {
		if status, b, _ := op.do(tc.method, tc.path, tc.body); status != 403 {
			t.Errorf("operator %s %s = %d %s, want 403", tc.method, tc.path, status, b)
		}
	}
}

func TestBadJSON(t *testing.T) {
	t.Parallel()
	e := setup(t)
	a := e.tenant("club-a")
	tests := []struct {
		name   string
		body   any
		hdr    []string
		status int
		field  string
	}{
		{"malformed", `{"kind": "person",`, nil, 400, ""},
		{"not an object", `[1,2,3]`, nil, 400, ""},
		{"empty", ``, nil, 400, ""},
		{"trailing data", `{"kind":"person","last_name":"X"} {"x":1}`, nil, 400, ""},
		{"unknown field", `{"kind":"person","last_name":"X","is_admin":true}`, nil, 400, "is_admin"},
		{"wrong type", `{"kind":"person","last_name":42}`, nil, 400, "last_name"},
		{"wrong nested type", `{"kind":"person","last_name":"X","tags":"vip"}`, nil, 400, "tags"},
		{"bad date", `{"kind":"person","last_name":"X","birth_date":"31/12/1990"}`, nil, 400, ""},
		{"future birth date", `{"kind":"person","last_name":"X","birth_date":"2099-01-01"}`, nil, 400, "birth_date"},
		{"sms consent without mobile", `{"kind":"person","last_name":"X","consents":[{"channel":"sms","purpose":"marketing","granted":true}]}`, nil, 400, "mobile"},
		{"company without VAT", `{"kind":"company","company_name":"ACME"}`, nil, 400, "vat_number"},
		{"bad kind", `{"kind":"robot","last_name":"X"}`, nil, 400, "kind"},
		{"bad language", `{"kind":"person","last_name":"X","language":"xx"}`, nil, 400, "language"},
		{"wrong content type", `kind=person`, []string{"Content-Type", "application/x-www-form-urlencoded"}, 400, "Content-Type"},
		{"huge body", `{"kind":"person","last_name":"` + strings.Repeat("x", cloudhttp.MaxBodyBytes) + `"}`, nil, 413, ""},
		{"deep nesting", strings.Repeat("[", 20000) + strings.Repeat("]", 20000), nil, 400, ""},
		{"null", `null`, nil, 400, "kind"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, b, _ := a.do("POST", "/api/v1/members", tt.body, tt.hdr...)
			if status != tt.status {
				t.Fatalf("status = %d %s, want %d", status, b, tt.status)
			}
			if e := decodeErr(t, b); tt.field != "" && e.Error.Field != tt.field {
				t.Errorf("field = %q, want %q (%s)", e.Error.Field, tt.field, b)
			}
		})
	}
	// Bad query parameters.
	for _, q := range []string{"limit=0", "limit=100000", "limit=abc", "cursor=-1", "cursor=x", "status_id=1%3BDROP", "archived=maybe"} {
		if status, b, _ := a.do("GET", "/api/v1/members?"+q, nil); status != 400 {
			t.Errorf("GET /members?%s = %d %s, want 400", q, status, b)
		}
	}
	// Search text is data, never SQL or a LIKE pattern.
	var page struct{ Items []cloud.Member }
	a.must("GET", "/api/v1/members?q=%25", nil, 200, &page)
	a.must("GET", "/api/v1/members?q=%27%20OR%201%3D1--", nil, 200, &page)
	if len(page.Items) != 0 {
		t.Errorf("hostile search found %d members", len(page.Items))
	}
}

func TestMembersVersionsAndPages(t *testing.T) {
	t.Parallel()
	e := setup(t)
	a := e.tenant("club-a")
	for i := range 5 {
		a.must("POST", "/api/v1/members", map[string]any{"kind": "person", "first_name": fmt.Sprint("N", i), "last_name": "Bianchi"}, 201, nil)
	}
	var seen []int64
	cursor := ""
	for range 10 {
		var p struct {
			Items      []cloud.Member
			NextCursor *string `json:"next_cursor"`
		}
		a.must("GET", "/api/v1/members?limit=2&q=bianchi"+cursor, nil, 200, &p)
		for _, m := range p.Items {
			seen = append(seen, m.ID)
		}
		if p.NextCursor == nil {
			break
		}
		cursor = "&cursor=" + *p.NextCursor
	}
	if len(seen) != 5 {
		t.Fatalf("paged through %d members, want 5", len(seen))
	}
	id := seen[0]
	path := fmt.Sprintf("/api/v1/members/%d", id)
	status, _, hdr := a.do("GET", path, nil)
	if status != 200 || hdr.Get("ETag") != `"1"` {
		t.Fatalf("GET = %d, ETag %q", status, hdr.Get("ETag"))
	}
	// No version: 428. Stale: 412. Right: 200 and version 2.
	if status, b, _ := a.do("PATCH", path, map[string]any{"first_name": "X"}); status != 428 {
		t.Errorf("PATCH without version = %d %s", status, b)
	}
	if status, b, _ := a.do("PATCH", path, map[string]any{"first_name": "X"}, "If-Match", `"1"`); status != 200 {
		t.Errorf("PATCH If-Match 1 = %d %s", status, b)
	}
	if status, b, _ := a.do("PATCH", path, map[string]any{"first_name": "Y", "version": 1}); status != 412 {
		t.Errorf("stale PATCH = %d %s", status, b)
	}
	var m cloud.Member
	a.must("PATCH", path, map[string]any{"first_name": "Y", "version": 2, "tags": []string{"vip"}, "medical_cert_expiry": "2025-03-10"}, 200, &m)
	if m.Version != 3 || m.FirstName != "Y" || m.LastName != "Bianchi" || len(m.Tags) != 1 || m.MedicalCertExpiry.String() != "2025-03-10" {
		t.Errorf("after PATCH: %+v", m)
	}
	// Archive, hidden from the list; no DELETE route at all.
	a.must("POST", path+"/archive", map[string]any{"version": 3}, 200, &m)
	var p struct{ Items []cloud.Member }
	a.must("GET", "/api/v1/members?q=bianchi", nil, 200, &p)
	if len(p.Items) != 4 {
		t.Errorf("list after archive has %d, want 4", len(p.Items))
	}
	for _, path := range []string{path, "/api/v1/actions/1", "/api/v1/credentials/1"} {
		if status, _, _ := a.do("DELETE", path, nil); status != 405 {
			t.Errorf("DELETE %s = %d, want 405", path, status)
		}
	}
	// Audit trail records who did it.
	var audit struct{ Items []cloud.AuditEntry }
	a.must("GET", fmt.Sprintf("/api/v1/audit?entity=member&entity_id=%d", id), nil, 200, &audit)
	if len(audit.Items) != 4 || audit.Items[0].Action != "member.archive" || audit.Items[0].OperatorID == nil {
		t.Errorf("audit = %+v", audit.Items)
	}
}

func TestImportExport(t *testing.T) {
	t.Parallel()
	e := setup(t)
	a := e.tenant("club-a")
	a.must("POST", "/api/v1/members", map[string]any{"kind": "person", "last_name": "Taken"}, 201, nil)
	var m cloud.Member
	a.must("GET", "/api/v1/members?q=taken", nil, 200, nil)
	csv := "kind,first_name,last_name,company_name,vat_number,birth_date,mobile,email,tags,consents,credential,language\n" +
		"person,Anna,Rossi,,,1990-05-01,+393331112222,anna@x.test,vip;morning,sms:marketing,card:1:100,it\n" + // ok
		"person,Bruno,Verdi,,,01/05/1990,,,,,,\n" + // bad date
		"company,,,ACME srl,IT12345678901,,,,,,,en\n" + // ok
		"person,Carla,,,,,,,,sms:marketing,,\n" + // sms consent without mobile
		"person,Dario,Neri,,,,,,,,card:1:100,\n" + // credential taken by row 2
		"robot,X,Y,,,,,,,,,\n" + // bad kind
		"person,Elena,Blu,,,,,,,,pin:12,\n" + // bad key
		"\"unterminated,x\n"
	// A small file is imported while the request waits: 200 with the finished job.
	status, b, hdr := a.do("POST", "/api/v1/members/import", csv, "Content-Type", "text/csv")
	if status != 200 {
		t.Fatalf("import = %d %s", status, b)
	}
	var rep cloud.ImportJob
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	want := map[int]string{3: "birth_date", 5: "mobile", 6: "key", 7: "kind", 8: "key", 9: ""}
	if rep.Status != cloud.ImportDone || rep.Rows != 8 || rep.Processed != 8 || rep.Imported != 2 || rep.ErrorCount != len(want) ||
		len(rep.Errors) != len(want) || rep.FinishedAt == nil || hdr.Get("Location") != fmt.Sprintf("/api/v1/imports/%d", rep.ID) {
		t.Fatalf("report = %+v, Location %q", rep, hdr.Get("Location"))
	}
	for _, e := range rep.Errors {
		f, ok := want[e.Row]
		if !ok || f != e.Field || e.Reason == "" {
			t.Errorf("error %+v, want row %d field %q", e, e.Row, f)
		}
	}
	// The job stays readable, and its error report pages by row.
	var again cloud.ImportJob
	a.must("GET", hdr.Get("Location"), nil, 200, &again)
	if again.ID != rep.ID || again.Imported != 2 || len(again.Errors) != len(want) {
		t.Errorf("GET job = %+v", again)
	}
	var rows []int
	cursor := ""
	for range 5 {
		var p struct {
			Items      []cloud.MemberImportError
			NextCursor *string `json:"next_cursor"`
		}
		a.must("GET", fmt.Sprintf("/api/v1/imports/%d/errors?limit=4%s", rep.ID, cursor), nil, 200, &p)
		for _, e := range p.Items {
			rows = append(rows, e.Row)
		}
		if p.NextCursor == nil {
			break
		}
		cursor = "&cursor=" + *p.NextCursor
	}
	if !slices.Equal(rows, []int{3, 5, 6, 7, 8, 9}) {
		t.Errorf("paged error rows = %v", rows)
	}
	// The failed row 6 left no member behind (its savepoint rolled back).
	var p struct{ Items []cloud.Member }
	a.must("GET", "/api/v1/members?q=dario", nil, 200, &p)
	if len(p.Items) != 0 {
		t.Errorf("row with a taken credential left a member")
	}
	a.must("GET", "/api/v1/members?q=rossi", nil, 200, &p)
	if len(p.Items) != 1 || !p.Items[0].HasConsent(cloud.ChannelSMS, cloud.PurposeMarketing) || len(p.Items[0].Tags) != 2 {
		t.Fatalf("imported Anna = %+v", p.Items)
	}
	m = p.Items[0]
	// Bad header fails the whole file.
	if status, b, _ := a.do("POST", "/api/v1/members/import", "name,password\nx,y\n", "Content-Type", "text/csv"); status != 400 {
		t.Errorf("bad header = %d %s", status, b)
	}
	// Export round-trips through import.
	status, b, hdr = a.do("GET", "/api/v1/members/export", nil)
	if status != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/csv") {
		t.Fatalf("export = %d %s", status, hdr)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 4 || !strings.Contains(string(b), fmt.Sprintf("%d,person,Anna,Rossi,,1990-05-01,,,anna@x.test,+393331112222,,it,morning;vip,sms:marketing,,no", m.ID)) {
		t.Errorf("export:\n%s", b)
	}
	parsed, err := cloud.ParseMembersCSV(bytes.NewReader(b))
	if err != nil || len(parsed) != 3 || parsed[1].Err != nil {
		t.Errorf("export does not parse back: %v %+v", err, parsed)
	}
	status, b, hdr = a.do("GET", "/api/v1/members/export?format=xlsx", nil)
	if status != 200 || !bytes.HasPrefix(b, []byte("PK")) || !strings.Contains(hdr.Get("Content-Type"), "spreadsheetml") {
		t.Errorf("xlsx export = %d %q", status, hdr.Get("Content-Type"))
	}
}

func TestCRMOverHTTP(t *testing.T) {
	t.Parallel()
	e := setup(t)
	a := e.tenant("club-a")
	f := populate(t, a, "A")
	// The member is blocked at the entrance, with the reception message.
	var rec cloud.AccessView
	a.must("GET", fmt.Sprintf("/api/v1/members/%d/access?site_id=%d", f.memberID, f.siteID), nil, 200, &rec)
	if !cloud.Blocks(rec.Record, cloud.DeviceEntrance) || len(rec.Record.Credentials) != 1 || len(rec.Record.Valid) != 1 {
		t.Fatalf("access record = %+v", rec)
	}
	var wi cloud.WhatIfResult
	a.must("POST", "/api/v1/what-if", map[string]any{"type_id": f.typeID}, 200, &wi)
	if wi.MembersStopped != 1 || len(wi.Gates) != 1 {
		t.Errorf("what-if = %+v", wi)
	}
	var ov cloud.Override
	a.must("POST", fmt.Sprintf("/api/v1/members/%d/overrides", f.memberID), map[string]any{"gate_id": f.gateID, "reason": "manager said so"}, 201, &ov)
	var cfg cloud.CRMConfig
	a.must("GET", "/api/v1/crm/config", nil, 200, &cfg)
	var done int64
	for _, o := range cfg.Outcomes {
		if o.Name == "Done" {
			done = o.ID
		}
	}
	var res cloud.AdvanceResult
	a.must("POST", fmt.Sprintf("/api/v1/actions/%d/advance", f.actionID), map[string]any{"mode": "close_with_note", "outcome_id": done, "note": "ok now", "version": 1}, 200, &res)
	if res.Action.Open || res.Note == nil || res.Points != 1 {
		t.Errorf("advance = %+v", res)
	}
	a.must("GET", fmt.Sprintf("/api/v1/members/%d/access?site_id=%d", f.memberID, f.siteID), nil, 200, &rec)
	if cloud.Blocks(rec.Record, cloud.DeviceEntrance) {
		t.Error("still blocked after closing")
	}
	var copied cloud.Action
	a.must("POST", fmt.Sprintf("/api/v1/actions/%d/copy", f.actionID), nil, 201, &copied)
	if !copied.Open || copied.TypeID != f.typeID {
		t.Errorf("copy = %+v", copied)
	}
	var board struct{ Items []cloud.LeaderboardEntry }
	a.must("GET", "/api/v1/leaderboard?from=2025-03-01&to=2025-03-31", nil, 200, &board)
	if len(board.Items) != 1 || board.Items[0].Points != 1 {
		t.Errorf("leaderboard = %+v", board.Items)
	}
	var bulk struct{ Items []cloud.Action }
	a.must("POST", "/api/v1/actions/bulk", map[string]any{"member_ids": []int64{f.memberID}, "action": map[string]any{"description": "renewal", "planned_at": "2025-03-05T10:00:00Z"}}, 201, &bulk)
	var agenda struct{ Items []cloud.AgendaDay }
	a.must("GET", "/api/v1/agenda?from=2025-03-05&to=2025-03-05", nil, 200, &agenda)
	if len(agenda.Items) != 1 || len(agenda.Items[0].Actions) != 1 {
		t.Errorf("agenda = %+v", agenda.Items)
	}
	var at cloud.ActionType
	a.must("POST", "/api/v1/crm/action-types", map[string]any{"name": "Health check", "access_action": "message_block", "device_types": []string{"entrance"}, "display_message": "Bring your certificate"}, 201, &at)
	if status, b, _ := a.do("POST", "/api/v1/crm/action-types", map[string]any{"name": "Health check"}); status != 409 {
		t.Errorf("duplicate type name = %d %s", status, b)
	}
	if status, b, _ := a.do("POST", "/api/v1/crm/action-types", map[string]any{"name": "Y", "access_action": "message"}); status != 400 || decodeErr(t, b).Error.Field != "display_message" {
		t.Errorf("message type without text = %d %s", status, b)
	}
	a.must("PATCH", fmt.Sprintf("/api/v1/crm/action-types/%d", at.ID), map[string]any{"active": false, "version": 1}, 200, &at)
	if status, b, _ := a.do("POST", "/api/v1/actions", map[string]any{"member_id": f.memberID, "type_id": at.ID}); status != 400 || decodeErr(t, b).Error.Field != "type_id" {
		t.Errorf("action of obsolete type = %d %s", status, b)
	}
}

func TestHealthAndMetrics(t *testing.T) {
	t.Parallel()
	e := setup(t)
	c := &client{e: e}
	if status, b, _ := c.do("GET", "/healthz", nil); status != 200 || !bytes.Contains(b, []byte(`"database":"ok"`)) {
		t.Errorf("healthz = %d %s", status, b)
	}
	c.do("GET", "/api/v1/members", nil)
	status, b, _ := c.do("GET", "/metrics", nil)
	if status != 200 || !bytes.Contains(b, []byte(`varco_http_requests_total{code="401",method="GET",route="/api/v1/members"} 1`)) {
		t.Errorf("metrics = %d\n%s", status, b)
	}
}

func TestCRMConfigChangesBehaviour(t *testing.T) {
	t.Parallel()
	e := setup(t)
	a := e.tenant("club-a")
	f := populate(t, a, "A")
	var cfg cloud.CRMConfig
	a.must("GET", "/api/v1/crm/config", nil, 200, &cfg)
	find := func(name string) (typ *cloud.ActionType, out *cloud.Outcome, st *cloud.CommercialStatus) {
		for _, x := range cfg.ActionTypes {
			if x.Name == name {
				typ = x
			}
		}
		for _, x := range cfg.Outcomes {
			if x.Name == name {
				out = x
			}
		}
		for _, x := range cfg.Statuses {
			if x.Name == name {
				st = x
			}
		}
		return
	}
	meeting, _, _ := find("Meeting")
	_, done, _ := find("Done")
	_, inProgress, _ := find("In progress")
	_, _, prospect := find("Prospect")
	sales := f.operatorID

	// A relation set through the API drives the automation.
	a.must("PUT", "/api/v1/crm/relations", map[string]any{"action_type_id": meeting.ID, "outcome_id": done.ID, "allowed": true,
		"new_status_id": prospect.ID, "next_type_id": meeting.ID, "next_recipient": "fixed", "next_operator_id": sales, "next_after_hours": 3, "points": 7}, 200, nil)
	var act cloud.Action
	a.must("POST", "/api/v1/actions", map[string]any{"member_id": f.memberID, "type_id": meeting.ID}, 201, &act)
	e.clock.Add(time.Hour)
	var res cloud.AdvanceResult
	a.must("POST", fmt.Sprintf("/api/v1/actions/%d/advance", act.ID), map[string]any{"mode": "close", "outcome_id": done.ID, "version": act.Version}, 200, &res)
	if res.Points != 7 || res.Next == nil || *res.Next.OperatorID != sales || !res.Next.PlannedAt.Equal(t0.Add(4*time.Hour)) || *res.NewStatusID != prospect.ID {
		t.Fatalf("advance = %+v next=%+v", res, res.Next)
	}
	var m cloud.Member
	a.must("GET", fmt.Sprintf("/api/v1/members/%d", f.memberID), nil, 200, &m)
	if m.CommercialStatusID == nil || *m.CommercialStatusID != prospect.ID || m.Version != 2 {
		t.Errorf("member after advance = %+v", m)
	}
	// A disallowed relation refuses the outcome.
	a.must("PUT", "/api/v1/crm/relations", map[string]any{"action_type_id": meeting.ID, "outcome_id": done.ID, "allowed": false}, 200, nil)
	status, b, _ := a.do("POST", fmt.Sprintf("/api/v1/actions/%d/advance", res.Next.ID), map[string]any{"mode": "close", "outcome_id": done.ID, "version": 1})
	if status != 400 || decodeErr(t, b).Error.Field != "outcome_id" {
		t.Errorf("disallowed outcome = %d %s", status, b)
	}
	// Making an open outcome a closing one closes its actions, and the reverse.
	var wip cloud.Action
	a.must("POST", "/api/v1/actions", map[string]any{"member_id": f.memberID, "type_id": meeting.ID, "outcome_id": inProgress.ID}, 201, &wip)
	var out cloud.Outcome
	a.must("PATCH", fmt.Sprintf("/api/v1/crm/outcomes/%d", inProgress.ID), map[string]any{"group": "closed_negative", "version": inProgress.Version}, 200, &out)
	a.must("GET", fmt.Sprintf("/api/v1/actions/%d", wip.ID), nil, 200, &wip)
	if wip.Open || wip.ClosedAt == nil {
		t.Errorf("action with a now-closing outcome is still open: %+v", wip)
	}
	a.must("PATCH", fmt.Sprintf("/api/v1/crm/outcomes/%d", inProgress.ID), map[string]any{"group": "in_progress", "version": out.Version}, 200, &out)
	a.must("GET", fmt.Sprintf("/api/v1/actions/%d", wip.ID), nil, 200, &wip)
	if !wip.Open || wip.ClosedAt != nil {
		t.Errorf("action not reopened: %+v", wip)
	}
	// Turning a type's access action off lifts its blocks at once.
	rc, _, _ := find("Reception check")
	var rec cloud.AccessView
	a.must("GET", fmt.Sprintf("/api/v1/members/%d/access?site_id=%d", f.memberID, f.siteID), nil, 200, &rec)
	if !cloud.Blocks(rec.Record, cloud.DeviceEntrance) {
		t.Fatal("not blocked")
	}
	var wi cloud.WhatIfResult
	a.must("POST", "/api/v1/what-if", map[string]any{"type_id": rc.ID, "access_action": "message"}, 200, &wi)
	if wi.MembersStopped != 0 || wi.MembersMessaged != 1 {
		t.Errorf("what-if message = %+v", wi)
	}
	a.must("PATCH", fmt.Sprintf("/api/v1/crm/action-types/%d", rc.ID), map[string]any{"access_action": "message", "version": rc.Version}, 200, nil)
	a.must("GET", fmt.Sprintf("/api/v1/members/%d/access?site_id=%d", f.memberID, f.siteID), nil, 200, &rec)
	if cloud.Blocks(rec.Record, cloud.DeviceEntrance) || len(rec.Record.Actions) != 1 {
		t.Errorf("after switching to message: %+v", rec.Record.Actions)
	}
	// Stale config edits are refused.
	if status, b, _ := a.do("PATCH", fmt.Sprintf("/api/v1/crm/action-types/%d", rc.ID), map[string]any{"access_action": "none", "version": rc.Version}); status != 412 {
		t.Errorf("stale type edit = %d %s", status, b)
	}
}

// TestConcurrentAdvance races two advances of the same action: exactly one
// wins, the other sees the new version.
func TestConcurrentAdvance(t *testing.T) {
	t.Parallel()
	e := setup(t)
	a := e.tenant("club-a")
	f := populate(t, a, "A")
	var cfg cloud.CRMConfig
	a.must("GET", "/api/v1/crm/config", nil, 200, &cfg)
	var done int64
	for _, o := range cfg.Outcomes {
		if o.Name == "Done" {
			done = o.ID
		}
	}
	const n = 8
	statuses := make(chan int, n)
	start := make(chan struct{})
	for range n {
		go func() {
			<-start
			status, _, _ := a.do("POST", fmt.Sprintf("/api/v1/actions/%d/advance", f.actionID), map[string]any{"mode": "close", "outcome_id": done}, "If-Match", `"1"`)
			statuses <- status
		}()
	}
	close(start)
	counts := map[int]int{}
	for range n {
		counts[<-statuses]++
	}
	if counts[200] != 1 || counts[412]+counts[409] != n-1 {
		t.Errorf("statuses = %v, want one 200 and the rest 412/409", counts)
	}
	var board struct{ Items []cloud.LeaderboardEntry }
	a.must("GET", "/api/v1/leaderboard?from=2025-03-01&to=2025-03-31", nil, 200, &board)
	if len(board.Items) != 1 || board.Items[0].Points != 1 || board.Items[0].Actions != 1 {
		t.Errorf("points awarded %+v, want once", board.Items)
	}
}

func TestOperatorsLifecycle(t *testing.T) {
	t.Parallel()
	e := setup(t)
	a := e.tenant("club-a")
	var op cloud.Operator
	a.must("POST", "/api/v1/operators", map[string]any{"email": "Mario@A.test", "name": "Mario", "role": "operator", "password": password}, 201, &op)
	if op.Email != "mario@a.test" {
		t.Errorf("e-mail not normalised: %q", op.Email)
	}
	if status, b, _ := a.do("POST", "/api/v1/operators", map[string]any{"email": "mario@a.test", "name": "M2", "role": "operator", "password": password}); status != 400 || decodeErr(t, b).Error.Field != "email" {
		t.Errorf("duplicate e-mail = %d %s", status, b)
	}
	if status, b, _ := a.do("POST", "/api/v1/operators", map[string]any{"email": "x@a.test", "name": "X", "role": "root", "password": password}); status != 400 || decodeErr(t, b).Error.Field != "role" {
		t.Errorf("bad role = %d %s", status, b)
	}
	if status, b, _ := a.do("POST", "/api/v1/operators", map[string]any{"email": "y@a.test", "name": "Y", "role": "operator", "password": "short"}); status != 400 || decodeErr(t, b).Error.Field != "password" {
		t.Errorf("short password = %d %s", status, b)
	}
	mario := e.login("mario@a.test", password)
	mario.must("GET", "/api/v1/me", nil, 200, nil)
	// Deactivating revokes the tokens and refuses the login.
	a.must("PATCH", fmt.Sprintf("/api/v1/operators/%d", op.ID), map[string]any{"active": false, "version": 1}, 200, &op)
	if status, _, _ := mario.do("GET", "/api/v1/me", nil); status != 401 {
		t.Errorf("deactivated operator's token = %d", status)
	}
	anon := &client{e: e}
	if status, _, _ := anon.do("POST", "/api/v1/auth/login", map[string]string{"email": "mario@a.test", "password": password}); status != 401 {
		t.Errorf("deactivated login = %d", status)
	}
	// An admin cannot lock themself out.
	var me struct{ Operator cloud.Operator }
	a.must("GET", "/api/v1/me", nil, 200, &me)
	if status, b, _ := a.do("PATCH", fmt.Sprintf("/api/v1/operators/%d", me.Operator.ID), map[string]any{"role": "operator", "version": me.Operator.Version}); status != 400 {
		t.Errorf("self-demotion = %d %s", status, b)
	}
}
