package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"varco.dev/cloud"
	"varco.dev/cloud/internal/gatewaytest"
	"varco.dev/cloud/internal/pgtest"
	"varco.dev/cloud/postgres"
	"varco.dev/protocol"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestVersion(t *testing.T) {
	for _, arg := range []string{"version", "--version"} {
		var out bytes.Buffer
		if err := run(context.Background(), []string{arg}, &out, io.Discard); err != nil {
			t.Fatal(err)
		}
		if want := "varco-cloud " + protocol.Version + "\n"; out.String() != want {
			t.Errorf("%s printed %q, want %q", arg, out.String(), want)
		}
	}
}

func TestUsage(t *testing.T) {
	if err := run(context.Background(), nil, io.Discard, io.Discard); err == nil {
		t.Error("no command: want an error")
	}
	if err := run(context.Background(), []string{"fly"}, io.Discard, io.Discard); err == nil {
		t.Error("unknown command: want an error")
	}
	t.Setenv("DATABASE_URL", "")
	if err := run(context.Background(), []string{"migrate"}, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "DATABASE_URL") {
		t.Errorf("migrate without URL: %v", err)
	}
}

// TestServe boots the real wiring on port 0 against a fresh database:
// migrate, bootstrap a tenant, serve, log in, read the API.
func TestServe(t *testing.T) {
	url := pgtest.NewURL(t)
	logs := &syncBuffer{}
	m := NewMain(logs)
	m.configureDB = func(db *postgres.DB) { db.PasswordParams = pgtest.FastPasswords }
	jobs := make(chan *cloud.ImportJob, 1)
	m.configureImports = func(s *postgres.ImportService) { s.OnJobEnd = func(j *cloud.ImportJob) { jobs <- j } }
	if err := m.ParseFlags("serve", []string{"-database-url", url, "-http-addr", "127.0.0.1:0", "-mqtt-addr", "127.0.0.1:0", "-log-level", "debug"}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := m.Run(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Error(err)
		}
	})
	// Migrating again is a no-op.
	if err := m.DB.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Bootstrap(ctx, bootstrapConfig{TenantName: "Club", TenantSlug: "club", AdminEmail: "boss@club.test", AdminPassword: "correct horse battery"}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Bootstrap(ctx, bootstrapConfig{TenantName: "Club", TenantSlug: "club", AdminEmail: "boss2@club.test", AdminPassword: "correct horse battery"}); err == nil {
		t.Error("second bootstrap with the same slug succeeded")
	}
	base := m.HTTPServer.URL()
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	resp, err := client.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("healthz = %d", resp.StatusCode)
	}
	resp, err = client.Post(base+"/api/v1/auth/login", "application/json", strings.NewReader(`{"email":"boss@club.test","password":"correct horse battery"}`))
	if err != nil {
		t.Fatal(err)
	}
	var login struct {
		Token string `json:"token"`
	}
	err = json.NewDecoder(resp.Body).Decode(&login)
	resp.Body.Close()
	if err != nil || login.Token == "" {
		t.Fatalf("login: %v", err)
	}
	req, _ := http.NewRequest("GET", base+"/api/v1/crm/config", nil)
	req.Header.Set("Authorization", "Bearer "+login.Token)
	resp, err = client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Contains(body, []byte("Reception check")) {
		t.Errorf("crm config = %d %s", resp.StatusCode, body)
	}
	// The import worker runs: a background import ends.
	req, _ = http.NewRequest("POST", base+"/api/v1/members/import", strings.NewReader("kind,last_name\nperson,Rossi\n"))
	req.Header.Set("Authorization", "Bearer "+login.Token)
	req.Header.Set("Prefer", "respond-async")
	if resp, err = client.Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 202 {
		t.Fatalf("import = %d", resp.StatusCode)
	}
	select {
	case j := <-jobs:
		if j.Status != cloud.ImportDone || j.Imported != 1 {
			t.Errorf("import job = %+v", j)
		}
	case <-time.After(time.Minute): // a guard against a hang, not a timing assertion
		t.Fatal("the background import did not end")
	}
	// The scheduler runs, and the recipes are served.
	if m.Scheduler == nil {
		t.Error("serve started no scheduler")
	}
	req, _ = http.NewRequest("GET", base+"/api/v1/schedules", nil)
	req.Header.Set("Authorization", "Bearer "+login.Token)
	if resp, err = client.Do(req); err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Contains(body, []byte(`"recipe":"block_medical_cert"`)) {
		t.Errorf("schedules = %d %s", resp.StatusCode, body)
	}
	// Close waits for the handlers, so every access log line is written.
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if out := logs.String(); !strings.Contains(out, `"msg":"http request"`) || !strings.Contains(out, `"route":"/api/v1/crm/config"`) {
		t.Errorf("no structured access log in %s", out)
	}
}

// syncBuffer is a bytes.Buffer safe for the server's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestMigrateAndBootstrapCommands runs the two commands as an operator
// would, configured from the environment.
func TestMigrateAndBootstrapCommands(t *testing.T) {
	url := pgtest.NewURL(t)
	t.Setenv("DATABASE_URL", url)
	if err := run(context.Background(), []string{"migrate"}, io.Discard, io.Discard); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	t.Setenv("VARCO_BOOTSTRAP_TENANT_NAME", "Palestra Roma")
	t.Setenv("VARCO_BOOTSTRAP_ADMIN_EMAIL", "boss@roma.test")
	t.Setenv("VARCO_BOOTSTRAP_ADMIN_PASSWORD", "correct horse battery")
	var out bytes.Buffer
	if err := run(context.Background(), []string{"bootstrap", "-tenant-slug", "roma"}, &out, io.Discard); err != nil {
		t.Fatalf("bootstrap: %v", err)
	}
	if !strings.Contains(out.String(), "created tenant roma") {
		t.Errorf("bootstrap printed %q", out.String())
	}
	if err := run(context.Background(), []string{"bootstrap", "-tenant-slug", "Not A Slug"}, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "slug") {
		t.Errorf("bad slug: %v", err)
	}
}

// TestServeMessaging boots serve with the SMTP server of the flags (a real
// one on loopback) and no SMS gateway: an e-mail send arrives, an SMS send
// fails as not configured.
func TestServeMessaging(t *testing.T) {
	url := pgtest.NewURL(t)
	mails := gatewaytest.NewSMTP(t)
	m := NewMain(io.Discard)
	m.configureDB = func(db *postgres.DB) { db.PasswordParams = pgtest.FastPasswords }
	sends := make(chan *cloud.Communication, 2)
	m.configureCommunications = func(s *postgres.CommunicationService) { s.OnJobEnd = func(c *cloud.Communication) { sends <- c } }
	if err := m.ParseFlags("serve", []string{"-database-url", url, "-http-addr", "127.0.0.1:0", "-smtp-addr", mails.Addr,
		"-smtp-from", "Club <noreply@club.test>", "-smtp-tls", "none", "-unsubscribe-url", "https://crm.club.test/api/v1/unsubscribe"}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := m.Run(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	if _, err := m.Bootstrap(ctx, bootstrapConfig{TenantName: "Club", TenantSlug: "club", AdminEmail: "boss@club.test", AdminPassword: "correct horse battery"}); err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	var token string
	call := func(method, path, body string, out any) int {
		t.Helper()
		req, _ := http.NewRequest(method, m.HTTPServer.URL()+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if out != nil {
			_ = json.NewDecoder(resp.Body).Decode(out)
		}
		return resp.StatusCode
	}
	var login struct{ Token string }
	call("POST", "/api/v1/auth/login", `{"email":"boss@club.test","password":"correct horse battery"}`, &login)
	token = login.Token
	var member, mailT, smsT struct{ ID int64 }
	call("POST", "/api/v1/members", `{"kind":"person","first_name":"Anna","last_name":"Rossi","email":"anna@x.test","mobile":"+393331234567",
		"consents":[{"channel":"email","purpose":"service","granted":true},{"channel":"sms","purpose":"service","granted":true}]}`, &member)
	call("POST", "/api/v1/templates", `{"name":"M","channel":"email","subject":"Ciao [FirstName]","text":"Benvenuta al [ClubName]"}`, &mailT)
	call("POST", "/api/v1/templates", `{"name":"S","channel":"sms","text":"Ciao [FirstName]"}`, &smsT)
	for _, tmpl := range []int64{mailT.ID, smsT.ID} {
		if st := call("POST", "/api/v1/communications", fmt.Sprintf(`{"template_id":%d,"purpose":"service","member_ids":[%d]}`, tmpl, member.ID), nil); st != 202 {
			t.Fatalf("send = %d", st)
		}
		select {
		case c := <-sends:
			if tmpl == mailT.ID && c.Sent != 1 || tmpl == smsT.ID && c.Failed != 1 {
				t.Errorf("communication %+v", c)
			}
		case <-time.After(time.Minute): // a guard against a hang, not a timing assertion
			t.Fatal("the send did not end")
		}
	}
	if got := mails.Mails(); len(got) != 1 || !strings.Contains(string(got[0].Data), "Benvenuta al Club") {
		t.Errorf("mails %+v", got)
	}
	var hist struct{ Items []cloud.Message }
	call("GET", fmt.Sprintf("/api/v1/members/%d/messages", member.ID), "", &hist)
	if len(hist.Items) != 2 || hist.Items[0].Error != "sms gateway not configured" {
		t.Errorf("history %+v", hist.Items)
	}
}

func TestSchedulerFlag(t *testing.T) {
	t.Setenv("VARCO_SCHEDULER", "")
	for _, tc := range []struct {
		args []string
		want bool
	}{
		{nil, true},
		{[]string{"-scheduler=false"}, false},
		{[]string{"--scheduler=true"}, true},
	} {
		m := NewMain(io.Discard)
		if err := m.ParseFlags("serve", append([]string{"-database-url", "postgres://x"}, tc.args...)); err != nil {
			t.Fatal(err)
		}
		if m.Config.Scheduler != tc.want {
			t.Errorf("%v: scheduler %v, want %v", tc.args, m.Config.Scheduler, tc.want)
		}
	}
	t.Setenv("VARCO_SCHEDULER", "false")
	if m := NewMain(io.Discard); m.Config.Scheduler {
		t.Error("VARCO_SCHEDULER=false left the scheduler on")
	}
}
