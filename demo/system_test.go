package demo

import (
	"bufio"
	"cmp"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	gosync "sync"
	"testing"
	"time"
)

// The system tests run varco as it is deployed: varco-cloud and varco-edge
// as processes (built once from their modules), the embedded broker, a
// real PostgreSQL, and the simulated readers on a pseudo-terminal. They
// break it the way the world does: the cloud and its broker go away while
// members keep badging, the edge is killed with SIGKILL, PostgreSQL
// restarts. What must hold: the edge decides from its cache all along, and
// every passage reaches PostgreSQL exactly once.

var (
	buildOnce gosync.Once
	binDir    string
	buildErr  error
)

// binaries builds varco-cloud and varco-edge into a directory shared by the
// tests of this run.
func binaries(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "varco-system-bin-")
		if buildErr != nil {
			return
		}
		for _, m := range []struct{ module, pkg string }{{"../cloud", "./cmd/varco-cloud"}, {"../edge", "./cmd/varco-edge"}} {
			out, err := exec.Command("go", "build", "-C", m.module, "-o", binDir, m.pkg).CombinedOutput()
			if err != nil {
				buildErr = fmt.Errorf("go build %s: %w\n%s", m.pkg, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binDir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// system starts a club as the demo does: cloud, broker, database, readers,
// edge, synced. throwaway gives it its own PostgreSQL cluster (that a test
// may restart).
func system(t *testing.T, throwaway bool, setup ...func(*run)) *run {
	t.Helper()
	work, err := os.MkdirTemp("", "varco-system-")
	if err != nil {
		t.Fatal(err)
	}
	// The throwaway cluster runs as the postgres user, under the work dir.
	if err := os.Chmod(work, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		BinDir:    binaries(t),
		WorkDir:   work,
		AdminURL:  cmp.Or(os.Getenv("VARCO_TEST_DATABASE_URL"), "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"),
		Out:       &testWriter{t: t},
		Throwaway: throwaway,
		Pulse:     200 * time.Millisecond,
		Database:  "varco_system_" + strings.ToLower(t.Name()),
	}
	d := &run{cfg: cfg, out: cfg.Out}
	for _, f := range setup {
		f(d)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if t.Failed() {
			for _, name := range []string{"varco-cloud", "varco-edge"} {
				t.Logf("%s's log ends with:\n%s", name, tail(filepath.Join(work, name+".log"), 30))
			}
		}
		if err := d.cleanup(ctx); err != nil {
			t.Error(err)
		}
		os.RemoveAll(work)
	})
	if err := d.prepare(t.Context()); err != nil {
		t.Fatal(err)
	}
	return d
}

// testWriter sends the demo's narration to the test log.
type testWriter struct {
	mu gosync.Mutex
	t  *testing.T
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// TestStory is make demo: the story must go as told.
func TestStory(t *testing.T) {
	d := system(t, false)
	if err := d.story(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// passage is one row of GET /api/v1/passages.
type passage struct {
	ID       int64  `json:"id"`
	Seq      uint64 `json:"seq"`
	Reader   string `json:"reader"`
	Decision string `json:"decision"`
	Reason   string `json:"reason"`
}

// passages lists every passage the cloud stored, after the edge's journal
// is acknowledged to the last event.
func (d *run) passages(t *testing.T) []passage {
	t.Helper()
	ctx := t.Context()
	if err := d.waitFor(ctx, "the edge's journal acknowledged by the cloud", time.Minute, 50*time.Millisecond, func(ctx context.Context) (bool, error) {
		h, err := d.edgeHealth(ctx)
		return err == nil && h.JournalBacklog == 0, err
	}); err != nil {
		t.Fatal(err)
	}
	var out []passage
	cursor := ""
	for {
		var page struct {
			Items []passage `json:"items"`
			Next  string    `json:"next_cursor"`
		}
		if err := d.api.do(ctx, http.MethodGet, "/api/v1/passages?limit=100"+cursor, nil, &page); err != nil {
			t.Fatal(err)
		}
		out = append(out, page.Items...)
		if page.Next == "" || len(page.Items) == 0 {
			return out
		}
		cursor = "&cursor=" + page.Next
	}
}

// exactlyOnce checks that the cloud stored n passages, each journal
// sequence once, all decided as want.
func exactlyOnce(t *testing.T, ps []passage, n int, want string) {
	t.Helper()
	seen := map[uint64]bool{}
	for _, p := range ps {
		if seen[p.Seq] {
			t.Errorf("passage seq %d stored twice", p.Seq)
		}
		seen[p.Seq] = true
		if p.Decision != want {
			t.Errorf("passage %+v, want %s", p, want)
		}
	}
	if len(ps) != n {
		t.Errorf("the cloud stored %d passages, want %d", len(ps), n)
	}
}

// badgeN badges Anna n times, alternating the entrance and the exit, and
// checks each is granted.
func (d *run) badgeN(t *testing.T, n int) {
	t.Helper()
	for i := range n {
		r := 1 + i%2
		if err := d.badge(t.Context(), r, d.club.anna, fmt.Sprintf("expect %d grant", r)); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCloudAndBrokerDown: the cloud, and with it the embedded broker, stops
// while members go on badging. The edge decides from its cache and
// journals; when the cloud is back, every passage arrives once.
func TestCloudAndBrokerDown(t *testing.T) {
	d := system(t, false)
	d.badgeN(t, 4)
	if err := d.cloud.stop(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	d.cloud = nil
	d.badgeN(t, 10)
	h, err := d.edgeHealth(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if h.JournalBacklog < 10 {
		t.Errorf("journal backlog %d with the cloud down, want at least the 10 passages since", h.JournalBacklog)
	}
	if err := d.startCloud(t.Context()); err != nil {
		t.Fatal(err)
	}
	d.badgeN(t, 2)
	exactlyOnce(t, d.passages(t), 16, "grant")
}

// TestEdgeKilled: the edge is killed with SIGKILL right after a burst of
// passages (journal batches in flight) and right after a CRM action (its
// delta in flight). Restarted, it ships every journaled passage once and
// its cache catches up with the site.
func TestEdgeKilled(t *testing.T) {
	d := system(t, false)
	ctx := t.Context()
	d.badgeN(t, 12)
	d.edge.kill()
	d.edge = nil
	if err := d.startEdge(ctx); err != nil {
		t.Fatal(err)
	}
	d.badgeN(t, 2)
	exactlyOnce(t, d.passages(t), 14, "grant")

	var action struct{ ID int64 }
	if err := d.api.do(ctx, http.MethodPost, "/api/v1/actions", map[string]any{"member_id": d.club.anna.id, "type_id": d.club.blockType}, &action); err != nil {
		t.Fatal(err)
	}
	d.edge.kill()
	d.edge = nil
	if err := d.startEdge(ctx); err != nil {
		t.Fatal(err)
	}
	// The cloud learns the edge's version from its birth and status; the
	// edge catches up from its cache version.
	if err := d.waitFor(ctx, "the edge's cache at the site's version", time.Minute, 50*time.Millisecond, func(ctx context.Context) (bool, error) {
		var e struct {
			Status struct {
				Online       bool   `json:"online"`
				CacheVersion uint64 `json:"cache_version"`
				SiteVersion  uint64 `json:"site_version"`
			} `json:"status"`
		}
		err := d.api.do(ctx, http.MethodGet, fmt.Sprintf("/api/v1/edges/%d", d.club.edgeID), nil, &e)
		h, herr := d.edgeHealth(ctx)
		return err == nil && herr == nil && e.Status.Online && e.Status.SiteVersion > 0 && h.CacheVersion == e.Status.SiteVersion, cmp.Or(err, herr)
	}); err != nil {
		t.Fatal(err)
	}
	if err := d.badge(ctx, 1, d.club.anna, "expect 1 deny", `expect 1 display "See reception"`); err != nil {
		t.Fatal(err)
	}
}

// TestPostgresRestart: PostgreSQL restarts under the cloud. Passages made
// meanwhile arrive once, and a CRM action created after the restart still
// reaches the turnstile: the pool and the publisher's LISTEN connection
// come back by themselves.
func TestPostgresRestart(t *testing.T) {
	d := system(t, true)
	ctx := t.Context()
	d.badgeN(t, 2)
	if err := d.db.restart(ctx); err != nil {
		t.Fatal(err)
	}
	d.badgeN(t, 2)
	before, err := d.edgeHealth(ctx)
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	// The first requests after the restart may meet a dead pooled
	// connection: staff would press the button again.
	if err := d.waitFor(ctx, "the API to create the action", 30*time.Second, 200*time.Millisecond, func(ctx context.Context) (bool, error) {
		err := d.api.do(ctx, http.MethodPost, "/api/v1/actions", map[string]any{"member_id": d.club.anna.id, "type_id": d.club.blockType}, nil)
		return err == nil, err
	}); err != nil {
		t.Fatal(err)
	}
	if err := d.reachesEdge(ctx, before.CacheVersion, began); err != nil {
		t.Fatal(err)
	}
	if err := d.badge(ctx, 1, d.club.anna, "expect 1 deny"); err != nil {
		t.Fatal(err)
	}
	ps := d.passages(t)
	if len(ps) != 5 {
		t.Errorf("the cloud stored %d passages, want 5", len(ps))
	}
}

// TestOfflinePolicy: staff set a fail-closed limit on blocking actions
// through the API; it travels to the edge with the state. When the cloud
// has been gone for longer than the limit, the edge denies with the stale
// text rather than guess; once it is back in sync, it decides as before.
func TestOfflinePolicy(t *testing.T) {
	d := system(t, false)
	ctx := t.Context()
	before, err := d.edgeHealth(ctx)
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	policy := map[string]any{"limits": []map[string]any{{"rule": "block", "mode": "fail-closed", "after_seconds": 1}}, "version": 1}
	if err := d.api.do(ctx, http.MethodPut, "/api/v1/sync/offline-policy", policy, nil); err != nil {
		t.Fatal(err)
	}
	if err := d.reachesEdge(ctx, before.CacheVersion, began); err != nil {
		t.Fatal(err)
	}
	d.badgeN(t, 1) // in sync: the policy does not apply

	if err := d.cloud.stop(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	d.cloud = nil
	if err := d.waitFor(ctx, "the edge's cache to be staler than the limit", time.Minute, 100*time.Millisecond, func(ctx context.Context) (bool, error) {
		v, err := d.edgeMetric(ctx, "varco_edge_sync_staleness_seconds")
		return err == nil && v > 1, err
	}); err != nil {
		t.Fatal(err)
	}
	if err := d.badge(ctx, 1, d.club.anna, "expect 1 deny", `expect 1 display "Offline: please see reception"`); err != nil {
		t.Fatal(err)
	}

	if err := d.startCloud(ctx); err != nil {
		t.Fatal(err)
	}
	if err := d.waitFor(ctx, "the edge back in sync", time.Minute, 100*time.Millisecond, func(ctx context.Context) (bool, error) {
		err := d.badge(ctx, 2, d.club.anna, "expect 2 grant")
		return err == nil, nil
	}); err != nil {
		t.Fatal(err)
	}
}

// edgeMetric reads one unlabelled metric from the edge's /metrics.
func (d *run) edgeMetric(ctx context.Context, name string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+d.edgeHTTP+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			return strconv.ParseFloat(v, 64)
		}
	}
	return 0, fmt.Errorf("no %s in the edge's /metrics", name)
}
