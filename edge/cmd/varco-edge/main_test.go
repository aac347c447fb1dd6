package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeConfig writes a configuration for one OSDP line on port into a fresh
// directory and returns its path.
func writeConfig(t testing.TB, port string, extra string) string {
	t.Helper()
	dir := t.TempDir()
	key := filepath.Join(dir, "credential.key")
	if err := os.WriteFile(key, []byte("000102030405060708090a0b0c0d0e0f\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	text := `edge_id = "e2e"
tenant = "acme"
site = "milano"
data_dir = "` + filepath.Join(dir, "data") + `"
credential_key_file = "` + key + `"
http_addr = "127.0.0.1:0"
log_level = "debug"
` + extra + `
[[serial]]
port = "` + port + `"
  [[serial.reader]]
  id = "entrance-1"
  address = 1
  device = "entrance"
  [[serial.reader]]
  id = "exit-1"
  address = 2
  device = "exit"
`
	path := filepath.Join(dir, "edge.toml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func runCmd(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), args, &out, &errOut)
	if err != nil {
		code = exitCode(err)
		errOut.WriteString(err.Error())
	}
	return out.String(), errOut.String(), code
}

func TestCommandLine(t *testing.T) {
	good := writeConfig(t, "/dev/null", "")
	broken := writeConfig(t, "/dev/null", "idle_text = \"Ciao\"\nwiegand_37bit_format = \"H1\"\n")
	tests := []struct {
		name       string
		args       []string
		code       int
		wantOut    string
		wantErrOut string
	}{
		{"version", []string{"version"}, 0, "varco-edge ", ""},
		{"--version", []string{"--version"}, 0, "varco-edge ", ""},
		{"no command", nil, 2, "", "usage: varco-edge"},
		{"unknown command", []string{"fly"}, 2, "", `unknown command "fly"`},
		{"unknown flag", []string{"run", "--colour"}, 2, "", "flag provided but not defined"},
		{"run with an argument", []string{"run", "--config", good, "extra"}, 2, "", "run takes no arguments"},
		{"import without a file", []string{"import", "--config", good}, 2, "", "usage: varco-edge import"},
		{"check-config ok", []string{"check-config", "--config", good}, 0, "config ok: edge e2e of acme/milano, 1 serial line(s) with 2 OSDP reader(s)", ""},
		{"check-config names the key", []string{"check-config", "--config", broken}, 1, "", `wiegand_37bit_format: "H1" is not H10304 or H10302`},
		{"missing config", []string{"check-config", "--config", "/nonexistent/edge.toml"}, 1, "", "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code := runCmd(t, tt.args...)
			if code != tt.code || !strings.Contains(out, tt.wantOut) || !strings.Contains(errOut, tt.wantErrOut) {
				t.Errorf("varco-edge %q = exit %d\nstdout: %s\nstderr: %s\nwant exit %d, stdout with %q, stderr with %q",
					tt.args, code, out, errOut, tt.code, tt.wantOut, tt.wantErrOut)
			}
		})
	}
}

func TestImport(t *testing.T) {
	cfg := writeConfig(t, "/dev/null", "")
	_, errOut, code := runCmd(t, "import", "--config", cfg, "testdata/members.ndjson")
	if code != 0 || !strings.Contains(errOut, "4 records from testdata/members.ndjson (ndjson)") {
		t.Fatalf("import = exit %d: %s", code, errOut)
	}
	// A bad line stops the import with its number and leaves the cache as it was.
	_, errOut, code = runCmd(t, "import", "--config", cfg, "testdata/bad.ndjson")
	if code != 1 || !strings.Contains(errOut, "line 2") || !strings.Contains(errOut, "colour") {
		t.Fatalf("bad import = exit %d: %s", code, errOut)
	}
}
