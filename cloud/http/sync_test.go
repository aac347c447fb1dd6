package http_test

import (
	"net/http"
	"strings"
	"testing"
)

type signingKey struct {
	KeyID      string `json:"key_id"`
	Generation int    `json:"generation"`
	PublicKey  string `json:"public_key"`
	ConfigLine string `json:"config_line"`
	Active     bool   `json:"active"`
}

// TestOfflinePolicyOverHTTP: the policy starts empty at version 1, is
// replaced with If-Match, refuses bad limits, stale versions and
// non-admins, and is per tenant.
func TestOfflinePolicyOverHTTP(t *testing.T) {
	t.Parallel()
	e := setup(t)
	a, b := e.tenant("pa"), e.tenant("pb")
	a.must("POST", "/api/v1/operators", map[string]any{"email": "op@pa.test", "name": "Op", "role": "operator", "password": password}, 201, nil)
	op := e.login("op@pa.test", password)

	code, body, hdr := a.do("GET", "/api/v1/sync/offline-policy", nil)
	if code != 200 || hdr.Get("ETag") != `"1"` || !strings.Contains(string(body), `"limits":[]`) {
		t.Fatalf("GET = %d %s ETag %s", code, body, hdr.Get("ETag"))
	}
	good := map[string]any{"limits": []map[string]any{
		{"rule": "block", "mode": "fail-closed", "after_seconds": 86400},
		{"rule": "membership", "mode": "fail-open", "after_seconds": 3600}}}
	tests := []struct {
		name   string
		client *client
		body   any
		hdr    []string
		status int
		field  string
	}{
		{"no version", a, good, nil, http.StatusPreconditionRequired, ""},
		{"stale version", a, good, []string{"If-Match", `"7"`}, http.StatusPreconditionFailed, "version"},
		{"operator", op, good, []string{"If-Match", `"1"`}, http.StatusForbidden, ""},
		{"unknown rule", a, map[string]any{"limits": []map[string]any{{"rule": "sauna", "mode": "fail-open", "after_seconds": 1}}},
			[]string{"If-Match", `"1"`}, http.StatusBadRequest, "limits[0].rule"},
		{"unknown mode", a, map[string]any{"limits": []map[string]any{{"rule": "block", "mode": "maybe", "after_seconds": 1}}},
			[]string{"If-Match", `"1"`}, http.StatusBadRequest, "limits[0].mode"},
		{"zero seconds", a, map[string]any{"limits": []map[string]any{{"rule": "block", "mode": "fail-open", "after_seconds": 0}}},
			[]string{"If-Match", `"1"`}, http.StatusBadRequest, "limits[0].after_seconds"},
		{"too many seconds", a, map[string]any{"limits": []map[string]any{{"rule": "block", "mode": "fail-open", "after_seconds": 2592001}}},
			[]string{"If-Match", `"1"`}, http.StatusBadRequest, "limits[0].after_seconds"},
		{"rule twice", a, map[string]any{"limits": []map[string]any{{"rule": "block", "mode": "fail-open", "after_seconds": 5},
			{"rule": "block", "mode": "fail-closed", "after_seconds": 5}}}, []string{"If-Match", `"1"`}, http.StatusBadRequest, "limits"},
		{"negative seconds", a, `{"limits":[{"rule":"block","mode":"fail-open","after_seconds":-1}]}`, []string{"If-Match", `"1"`}, http.StatusBadRequest, "limits.after_seconds"},
		{"malformed JSON", a, `{"limits":`, []string{"If-Match", `"1"`}, http.StatusBadRequest, ""},
		{"unknown field", a, `{"limits":[],"colour":"red"}`, []string{"If-Match", `"1"`}, http.StatusBadRequest, "colour"},
		{"replaced", a, good, []string{"If-Match", `"1"`}, http.StatusOK, ""},
	}
	for _, tt := range tests {
		code, body, _ := tt.client.do("PUT", "/api/v1/sync/offline-policy", tt.body, tt.hdr...)
		if code != tt.status {
			t.Errorf("%s: PUT = %d %s, want %d", tt.name, code, body, tt.status)
			continue
		}
		if tt.field != "" {
			if f := decodeErr(t, body).Error.Field; f != tt.field {
				t.Errorf("%s: field %q, want %q", tt.name, f, tt.field)
			}
		}
	}
	code, body, hdr = op.do("GET", "/api/v1/sync/offline-policy", nil)
	if code != 200 || hdr.Get("ETag") != `"2"` || !strings.Contains(string(body), `"rule":"membership","mode":"fail-open","after_seconds":3600`) {
		t.Fatalf("GET after PUT = %d %s ETag %s", code, body, hdr.Get("ETag"))
	}
	// Tenant isolation: b's policy is its own.
	code, body, hdr = b.do("GET", "/api/v1/sync/offline-policy", nil)
	if code != 200 || hdr.Get("ETag") != `"1"` || !strings.Contains(string(body), `"limits":[]`) {
		t.Fatalf("other tenant's GET = %d %s ETag %s", code, body, hdr.Get("ETag"))
	}
}

// TestSigningKeysOverHTTP: the first listing creates generation 1; a
// rotation stages generation 2, activates it and retires 1; non-admins and
// other tenants see nothing of it.
func TestSigningKeysOverHTTP(t *testing.T) {
	t.Parallel()
	e := setup(t)
	a, b := e.tenant("ka"), e.tenant("kb")
	a.must("POST", "/api/v1/operators", map[string]any{"email": "op@ka.test", "name": "Op", "role": "operator", "password": password}, 201, nil)
	op := e.login("op@ka.test", password)

	var keys []signingKey
	a.must("GET", "/api/v1/sync/keys", nil, 200, &keys)
	if len(keys) != 1 || keys[0].KeyID != "ka-1" || !keys[0].Active || keys[0].ConfigLine != "ka-1="+keys[0].PublicKey || len(keys[0].PublicKey) != 44 {
		t.Fatalf("keys %+v", keys)
	}
	first := keys[0]
	var k signingKey
	a.must("POST", "/api/v1/sync/keys", nil, 201, &k)
	if k.KeyID != "ka-2" || k.Active {
		t.Fatalf("staged %+v", k)
	}
	a.must("GET", "/api/v1/sync/keys", nil, 200, &keys)
	if len(keys) != 2 || !keys[1].Active || keys[0].Active {
		t.Fatalf("keys with one staged %+v", keys)
	}
	for _, tt := range []struct {
		client       *client
		method, path string
		status       int
	}{
		{op, "GET", "/api/v1/sync/keys", 403},
		{op, "POST", "/api/v1/sync/keys", 403},
		{op, "POST", "/api/v1/sync/keys/2/activate", 403},
		{a, "POST", "/api/v1/sync/keys/1/retire", 409}, // still the active one
		{a, "POST", "/api/v1/sync/keys/9/activate", 404},
		{a, "POST", "/api/v1/sync/keys/abc/activate", 404},
		{a, "POST", "/api/v1/sync/keys/99999999999999999999/retire", 404},
		{b, "POST", "/api/v1/sync/keys/2/activate", 404}, // b has no generation 2
	} {
		if code, body, _ := tt.client.do(tt.method, tt.path, nil); code != tt.status {
			t.Errorf("%s %s = %d %s, want %d", tt.method, tt.path, code, body, tt.status)
		}
	}
	a.must("POST", "/api/v1/sync/keys/2/activate", nil, 200, &k)
	if !k.Active {
		t.Fatalf("activated %+v", k)
	}
	if code, _, _ := a.do("POST", "/api/v1/sync/keys/2/retire", nil); code != 409 {
		t.Errorf("retire the active key = %d", code)
	}
	if code, _, _ := a.do("POST", "/api/v1/sync/keys/1/activate", nil); code != 409 {
		t.Errorf("activate an older key = %d", code)
	}
	if code, body, _ := a.do("POST", "/api/v1/sync/keys/1/retire", nil); code != 204 {
		t.Fatalf("retire = %d %s", code, body)
	}
	a.must("GET", "/api/v1/sync/keys", nil, 200, &keys)
	if len(keys) != 1 || keys[0].KeyID != "ka-2" || !keys[0].Active {
		t.Fatalf("keys after the rotation %+v", keys)
	}
	b.must("GET", "/api/v1/sync/keys", nil, 200, &keys)
	if len(keys) != 1 || keys[0].KeyID != "kb-1" || keys[0].PublicKey == first.PublicKey {
		t.Fatalf("other tenant's keys %+v", keys)
	}
}
