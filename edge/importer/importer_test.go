package importer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"varco.dev/edge"
	"varco.dev/edge/badger"
	vsync "varco.dev/protocol/sync"
)

func TestMain(m *testing.M) {
	if spec := os.Getenv(benchChildEnv); spec != "" {
		os.Exit(benchStep(spec))
	}
	goleak.VerifyTestMain(m)
}

var (
	ctx       = context.Background()
	tenantKey = []byte("0123456789abcdef0123456789abcdef")
)

func key(id string) vsync.CredentialKey { return vsync.CredentialHash(tenantKey, id) }

func ts(s string) vsync.Timestamp {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return vsync.TimestampOf(t)
}

func openCache(t testing.TB) *badger.Cache {
	t.Helper()
	c, err := badger.OpenCache(ctx, t.TempDir(), badger.CacheOptions{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func writeFile(t testing.TB, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "members.ndjson")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func lookup(t *testing.T, c edge.Cache, k vsync.CredentialKey) *vsync.Record {
	t.Helper()
	var r vsync.Record
	ok, err := c.Lookup(k, &r)
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		return nil
	}
	return &r
}

const members = `{"member": 1001, "credentials": ["card:118:1603", "pin:0042"], "valid": [{"from": "2026-01-01T00:00:00+01:00", "until": "2027-01-01T00:00:00+01:00"}]}

{"member": 1002, "credentials": [{"id": "card:118:1604", "until": "2026-12-31T23:00:00Z"}], "valid": [{}], "sites": ["7"], "devices": ["entrance", "spa"], "actions": [{"id": 7001, "mode": "message_block", "devices": ["entrance"], "text": "Please see reception", "priority": 10}], "notices": [{"text": "Happy birthday Anna", "priority": 1, "from": "2026-11-25T00:00:00+01:00"}]}
   {"member": 1003, "credentials": [{"key": "00112233445566778899aabbccddeeff"}], "suspended": true}
`

func TestImportNDJSON(t *testing.T) {
	c := openCache(t)
	var progress []Progress
	st, err := Import(ctx, c, writeFile(t, members), Options{TenantKey: tenantKey, Version: 77, Every: 2,
		Progress: func(p Progress) { progress = append(progress, p) }})
	if err != nil {
		t.Fatal(err)
	}
	if st.Format != "ndjson" || st.Records != 3 || st.Version != 77 || c.Version() != 77 {
		t.Errorf("stats %+v, version %d", st, c.Version())
	}
	if len(progress) != 2 || progress[0].Records != 2 || !progress[1].Done || progress[1].Records != 3 ||
		progress[1].Bytes != int64(len(members)) || progress[1].Total != int64(len(members)) {
		t.Errorf("progress %+v", progress)
	}
	r := lookup(t, c, key("pin:0042"))
	if r == nil || r.Member != 1001 || r.Devices != vsync.AllDevices || r.Valid[0] != (vsync.Window{From: ts("2026-01-01T00:00:00+01:00"), Until: ts("2027-01-01T00:00:00+01:00")}) {
		t.Errorf("member 1001: %+v", r)
	}
	r = lookup(t, c, key("card:118:1604"))
	want := vsync.Record{
		Member:      1002,
		Credentials: []vsync.Credential{{Key: key("card:118:1604"), Valid: vsync.Window{Until: ts("2026-12-31T23:00:00Z")}}},
		Valid:       []vsync.Window{{}}, Sites: []string{"7"}, Devices: vsync.DeviceSetOf(vsync.DeviceEntrance, vsync.DeviceSpa),
		Actions: []vsync.Action{{ID: 7001, Mode: vsync.AccessMessageBlock, Devices: vsync.DeviceSetOf(vsync.DeviceEntrance),
			Text: "Please see reception", Priority: 10}},
		Notices: []vsync.Notice{{Text: "Happy birthday Anna", Priority: 1, Valid: vsync.Window{From: ts("2026-11-25T00:00:00+01:00")}}},
	}
	if r == nil || fmt.Sprint(*r) != fmt.Sprint(want) {
		t.Errorf("member 1002:\n%+v\nwant\n%+v", r, want)
	}
	k, _ := vsync.ParseCredentialKey("00112233445566778899aabbccddeeff")
	if r := lookup(t, c, k); r == nil || r.Member != 1003 || !r.Suspended || len(r.Valid) != 0 {
		t.Errorf("member 1003: %+v", r)
	}
}

// TestImportStopsAtBadLine: a bad line fails the import with its number and
// leaves the cache as it was.
func TestImportStopsAtBadLine(t *testing.T) {
	tests := []struct {
		name, file, want string
	}{
		{"bad json", members + "{\"member\": 5,\n", "line 5: unexpected EOF"},
		{"unknown field", members + `{"member": 5, "credential": []}` + "\n", `line 5: json: unknown field "credential"`},
		{"member twice", members + `{"member": 1002}`, "line 5: member 1002 again (first on line 3)"},
		{"credential twice", members + `{"member": 5, "credentials": ["pin:0042"]}`,
			"line 5: member 5: credential " + key("pin:0042").String() + " is also member 1001's (line 1)"},
		{"long line", members + `{"member": 5, "notices": [{"text": "` + strings.Repeat("x", MaxLine) + `"}]}`, "line 5: longer than"},
		{"empty", "\n\n", "empty file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := openCache(t)
			if step, err := c.ApplyDelta(ctx, &vsync.Delta{Version: 3, Upserts: []vsync.Record{{Member: 9,
				Credentials: []vsync.Credential{{Key: key("card:1:9")}}}}}); err != nil || step != vsync.StepApply {
				t.Fatal(step, err)
			}
			_, err := Import(ctx, c, writeFile(t, tc.file), Options{TenantKey: tenantKey, Version: 10})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			if c.Version() != 3 || lookup(t, c, key("card:1:9")) == nil || lookup(t, c, key("card:118:1603")) != nil {
				t.Errorf("a failed import changed the cache (version %d)", c.Version())
			}
		})
	}
}

func TestParseLineErrors(t *testing.T) {
	tests := []struct{ line, want string }{
		{`{}`, "member ref 0"},
		{`{"member": 1, "credentials": ["card:118:01603"]}`, "credentials[0]: wiegand: malformed input"},
		{`{"member": 1, "credentials": ["nfc:1"]}`, "credentials[0]: wiegand: malformed input"},
		{`{"member": 1, "credentials": [{"id": "pin:1", "key": "00112233445566778899aabbccddeeff"}]}`, "credentials[0]: both id and key"},
		{`{"member": 1, "credentials": [{"key": "0011"}]}`, "credentials[0]: credential key: 4 hex digits"},
		{`{"member": 1, "credentials": [{"id": "pin:1", "valid": {}}]}`, `unknown field "valid"`},
		{`{"member": 1, "credentials": ["pin:1", "pin:1"]}`, "credentials[1]: key"},
		{`{"member": 1, "valid": [{"from": "2026-01-01"}]}`, `valid[0]: time "2026-01-01" is not RFC 3339`},
		{`{"member": 1, "valid": [{"from": "2026-02-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"}]}`, "valid[0]: window ends"},
		{`{"member": 1, "devices": ["sauna"]}`, `unknown device type "sauna"`},
		{`{"member": 1, "actions": [{"id": 1, "mode": "block"}]}`, `actions[0]: unknown mode "block"`},
		{`{"member": 1, "actions": [{"id": 0, "mode": "message"}]}`, "actions[0]: id 0"},
		{`{"member": 1, "notices": [{"text": ""}]}`, "notices[0]: no text"},
		{`{"member": 1, "notices": [{"text": "a\u0007b"}]}`, "control character"},
		{`{"member": 1, "sites": ["Milano!"]}`, "sites[0]"},
		{`{"member": 1} {"member": 2}`, "data after the record"},
		{`{"member": -1}`, "cannot unmarshal"},
		{`[1]`, "cannot unmarshal array"},
	}
	for _, tc := range tests {
		_, err := ParseLine([]byte(tc.line), tenantKey)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseLine(%s) = %v, want %q", tc.line, err, tc.want)
		}
	}
	if _, err := ParseLine([]byte(`{"member": 1, "credentials": ["pin:1"]}`), nil); err == nil || !strings.Contains(err.Error(), "tenant key") {
		t.Errorf("credential id without tenant key: %v", err)
	}
}

func snapshotFile(t *testing.T, chunks ...*vsync.Snapshot) string {
	t.Helper()
	var b bytes.Buffer
	for _, s := range chunks {
		msg, err := vsync.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(msg)
	}
	p := filepath.Join(t.TempDir(), "snapshot.cbor")
	if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func chunk(n, of uint32, members ...int) *vsync.Snapshot {
	s := &vsync.Snapshot{Header: vsync.Header{Tenant: "fitclub", Site: "7", Edge: "gate-1"}, ID: 5, Version: 900, Chunk: n, Chunks: of}
	for _, m := range members {
		s.Records = append(s.Records, vsync.Record{Member: vsync.MemberRef(m),
			Credentials: []vsync.Credential{{Key: key(fmt.Sprint("card:1:", m))}}, Valid: []vsync.Window{{}}, Devices: vsync.AllDevices})
	}
	return s
}

func TestImportSnapshot(t *testing.T) {
	c := openCache(t)
	first := chunk(0, 3, 1, 2)
	first.Policy = &vsync.OfflinePolicy{Limits: []vsync.OfflineLimit{{Rule: vsync.RuleBlock, Mode: vsync.FailClosed, After: 600}}}
	st, err := Import(ctx, c, snapshotFile(t, chunk(2, 3, 5, 6), first, chunk(2, 3, 5, 6), chunk(1, 3, 3)),
		Options{Tenant: "fitclub", Site: "7"})
	if err != nil {
		t.Fatal(err)
	}
	if st.Format != "snapshot" || st.Records != 5 || c.Version() != 900 {
		t.Errorf("stats %+v, version %d", st, c.Version())
	}
	if p := c.Policy(); p == nil || len(p.Limits) != 1 || p.Limits[0] != first.Policy.Limits[0] {
		t.Errorf("policy %+v, want chunk 0's", p)
	}
	for _, m := range []int{1, 2, 3, 5, 6} {
		if r := lookup(t, c, key(fmt.Sprint("card:1:", m))); r == nil || r.Member != vsync.MemberRef(m) {
			t.Errorf("member %d: %+v", m, r)
		}
	}

	other := chunk(1, 3, 3)
	other.ID = 6
	ack := &vsync.Ack{Header: vsync.Header{Tenant: "fitclub", Edge: "gate-1"}, Seq: 3}
	ackFile := func() string {
		b, _ := vsync.Marshal(ack)
		p := filepath.Join(t.TempDir(), "ack.cbor")
		os.WriteFile(p, b, 0o644)
		return p
	}()
	for _, tc := range []struct {
		name, path string
		opts       Options
		want       string
	}{
		{"missing chunk", snapshotFile(t, chunk(0, 3, 1), chunk(2, 3, 5)), Options{}, "snapshot 5: 1 of 3 chunks missing ([1]...)"},
		{"two snapshots", snapshotFile(t, chunk(0, 3, 1), other), Options{}, "message 2: chunk of snapshot 6"},
		{"another site", snapshotFile(t, chunk(0, 1, 1)), Options{Site: "8"}, "snapshot of tenant fitclub site 7"},
		{"another version", snapshotFile(t, chunk(0, 1, 1)), Options{Version: 3}, "snapshot at version 900, not 3"},
		{"member in two chunks", snapshotFile(t, chunk(0, 2, 1), chunk(1, 2, 1)), Options{}, "chunk 1: member 1 again (first on chunk 0)"},
		{"not a snapshot", ackFile, Options{}, "message 1: a ack, not a snapshot"},
		{"garbage", writeFile(t, "\xff\x00"), Options{}, "message 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := openCache(t)
			if _, err := Import(ctx, c, tc.path, tc.opts); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
			if c.Version() != 0 || c.Stats().Members != 0 {
				t.Errorf("failed import left version %d", c.Version())
			}
		})
	}
	if _, err := Import(ctx, c, filepath.Join(t.TempDir(), "none"), Options{}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

// FuzzParseLine: any line parses to a valid record or to an error, never a
// panic.
func FuzzParseLine(f *testing.F) {
	for _, l := range strings.Split(members, "\n") {
		f.Add([]byte(l))
	}
	f.Add([]byte(`{"member": 1, "credentials": [{"id": "raw:40:0123456789", "from": "2026-01-01T00:00:00Z"}], "devices": ["pool"]}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		r, err := ParseLine(line, tenantKey)
		if err == nil {
			if err := r.Validate(); err != nil {
				t.Fatalf("ParseLine returned an invalid record: %v", err)
			}
		}
	})
}
