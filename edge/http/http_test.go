package http

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"varco.dev/edge/metrics"
)

func TestEndpoints(t *testing.T) {
	m := metrics.New()
	m.SetReaderOnline("entrance-1", true)
	m.ObserveDecision("deny", "blocked", 0)
	health := Health{OK: true, Version: "test", CacheVersion: 7, Readers: []ReaderHealth{{ID: "entrance-1", Online: true, Rows: 2, Cols: 16}}}
	s, err := Listen("127.0.0.1:0", m.Registry, func(context.Context) Health { return health }, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(context.Background()); err != nil {
			t.Error(err)
		}
	})
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get("http://" + s.Addr() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, string(b)
	}

	code, body := get("/healthz")
	var got Health
	if err := json.Unmarshal([]byte(body), &got); err != nil || code != 200 || got.CacheVersion != 7 || len(got.Readers) != 1 {
		t.Errorf("healthz = %d %s (%v)", code, body, err)
	}
	health = Health{OK: false, Problems: []string{"reader entrance-1 offline"}}
	if code, body := get("/healthz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "offline") {
		t.Errorf("unhealthy healthz = %d %s", code, body)
	}

	code, body = get("/metrics")
	for _, want := range []string{
		`varco_edge_reader_online{reader="entrance-1"} 1`,
		`varco_edge_decisions_total{reason="blocked",result="deny"} 1`,
		`varco_edge_decision_seconds_bucket`,
		`process_resident_memory_bytes`,
	} {
		if code != 200 || !strings.Contains(body, want) {
			t.Errorf("/metrics (%d) lacks %q", code, want)
		}
	}
	if code, _ := get("/nope"); code != http.StatusNotFound {
		t.Errorf("/nope = %d", code)
	}
}
