package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"varco.dev/protocol/sync"
	"varco.dev/protocol/wiegand"
)

func TestExampleParses(t *testing.T) {
	b, err := os.ReadFile("edge.example.toml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := Parse(b)
	if err != nil {
		t.Fatalf("the example config does not parse:\n%v", err)
	}
	if got := len(cfg.Serial[0].Readers); got != 2 {
		t.Fatalf("serial[0] readers = %d, want 2", got)
	}
	exit := cfg.Serial[0].Readers[1]
	if exit.DeviceType != sync.DeviceExit || exit.Pulse != DefaultPulse || *exit.Output != 0 {
		t.Errorf("exit reader = %+v, want device exit, default pulse, output 0", exit)
	}
	if cfg.Wiegand[0].DeviceType != sync.DeviceSpa || cfg.Wiegand[0].Pulse != 2*time.Second {
		t.Errorf("wiegand[0] = %+v", cfg.Wiegand[0])
	}
	if cfg.Hint37 != wiegand.H10304 {
		t.Errorf("Hint37 = %v", cfg.Hint37)
	}
}

const minimal = `
edge_id = "e1"
tenant = "t1"
site = "s1"
data_dir = "/tmp/x"
credential_key_file = "k"
[[serial]]
port = "/dev/pts/9"
  [[serial.reader]]
  id = "g1"
  device = "entrance"
`

func TestDefaults(t *testing.T) {
	cfg, err := Parse([]byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	p := cfg.Serial[0]
	if p.Baud != DefaultBaud || p.ReplyTimeout != DefaultReplyTimeout || p.Retries != DefaultRetries {
		t.Errorf("serial defaults = %+v", p)
	}
	if cfg.Journal.Fsync != "batch" || cfg.HTTPAddr != DefaultHTTPAddr || cfg.IdleText != DefaultIdleText {
		t.Errorf("top-level defaults = %+v", cfg)
	}
	r := p.Readers[0]
	if r.Address != 0 || *r.Output != 0 || r.HeldOpenAfter != DefaultHeldOpenAfter {
		t.Errorf("reader defaults = %+v", r)
	}
	withRelay, err := Parse([]byte(minimal + `  relay_pin = "GPIO17"` + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	if out := *withRelay.Serial[0].Readers[0].Output; out != -1 {
		t.Errorf("output with relay_pin = %d, want -1", out)
	}
}

// TestErrorsNameTheKey feeds broken files and checks that every error names
// the key at fault and says what is wrong.
func TestErrorsNameTheKey(t *testing.T) {
	tests := []struct {
		name string
		text string
		want []string
	}{
		{"empty file", ``, []string{"edge_id: ", "tenant: ", "site: ", "data_dir: required", "credential_key_file: required", "serial: no readers"}},
		{"typo in a key", minimal + `  adress = 3` + "\n", []string{"serial.reader.adress: unknown key"}},
		{"unknown top-level key", "pol_interval = 3\n" + minimal, []string{"pol_interval: unknown key"}},
		{"hostile id", strings.Replace(minimal, `"e1"`, `"e1/#"`, 1), []string{"edge_id: "}},
		{"bad baud", strings.Replace(minimal, "port = \"/dev/pts/9\"", "port = \"/dev/pts/9\"\nbaud = 12345", 1), []string{"serial[0].baud: 12345 is not one of"}},
		{"bad device", strings.Replace(minimal, `"entrance"`, `"sauna"`, 1), []string{`serial[0].reader[0].device: "sauna" is not a device type`}},
		{"address out of range", minimal + "  address = 127\n", []string{"serial[0].reader[0].address: 127 is outside 0..126"}},
		{"duplicate address", minimal + "  [[serial.reader]]\n  id = \"g2\"\n  device = \"exit\"\n", []string{"serial[0].reader[1].address: 0 is used twice"}},
		{"duplicate gate id", minimal + "  [[serial.reader]]\n  id = \"g1\"\n  address = 2\n  device = \"exit\"\n", []string{`serial[0].reader[1].id: "g1" is already used by serial[0].reader[0]`}},
		{"pulse too short", minimal + "  pulse = \"10ms\"\n", []string{"serial[0].reader[0].pulse: 10ms is outside"}},
		{"bad duration", minimal + "  pulse = \"soon\"\n", []string{"pulse"}},
		{"bad log level", "log_level = \"loud\"\n" + minimal, []string{`log_level: "loud" is not one of`}},
		{"bad fsync", minimal + "[journal]\nfsync = \"sometimes\"\n", []string{`journal.fsync: "sometimes" is not always, batch or never`}},
		{"bad 37-bit format", "wiegand_37bit_format = \"H1\"\n" + minimal, []string{`wiegand_37bit_format: "H1" is not H10304 or H10302`}},
		{"wiegand without pins", minimal + "[[wiegand]]\nid = \"w1\"\ndevice = \"spa\"\n", []string{"wiegand[0]: d0_pin and d1_pin are both required", "wiegand[0].relay_pin: required"}},
		{"pin used twice", minimal + "  relay_pin = \"GPIO5\"\n[[wiegand]]\nid = \"w1\"\ndevice = \"spa\"\nd0_pin = \"GPIO5\"\nd1_pin = \"GPIO6\"\nrelay_pin = \"GPIO7\"\n", []string{"wiegand[0].d0_pin: pin GPIO5 is already used by serial[0].reader[0].relay_pin"}},
		{"not toml", "edge_id = \n", []string{"line 1"}},
		{"bad broker", minimal + "[mqtt]\nbroker = \"http://x\"\n", []string{`mqtt.broker: "http://x" is not a broker URL`, "mqtt: username and password_file are required",
			"mqtt.cloud_keys: required with a broker"}},
		{"cloud key without id", minimal + "[mqtt]\ncloud_keys = [\"AAECAwQF\"]\n", []string{"mqtt.cloud_keys[0]: ", "is not <key-id>=<base64"}},
		{"cloud key id not in the charset", minimal + "[mqtt]\ncloud_keys = [\"Acme/1=" + testKey + "\"]\n", []string{"mqtt.cloud_keys[0]: key id: "}},
		{"cloud key not base64", minimal + "[mqtt]\ncloud_keys = [\"acme-1=not*base64\"]\n", []string{"mqtt.cloud_keys[0]: key acme-1: not standard base64"}},
		{"cloud key too short", minimal + "[mqtt]\ncloud_keys = [\"acme-1=AAEC\"]\n", []string{"mqtt.cloud_keys[0]: key acme-1: 3 bytes, want an Ed25519 public key of 32"}},
		{"cloud key twice", minimal + "[mqtt]\ncloud_keys = [\"acme-1=" + testKey + "\", \"acme-1=" + testKey + "\"]\n", []string{`mqtt.cloud_keys[1]: key id "acme-1" is listed twice`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.text))
			if err == nil {
				t.Fatal("Parse accepted a broken config")
			}
			for _, want := range tt.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error does not contain %q:\n%v", want, err)
				}
			}
		})
	}
}

// testKey is a base64 Ed25519 public key (any 32 bytes parse as one).
const testKey = "UNhY4JhezH9gQYqvDMWrWH9CwlcKiECVqejMrND2VFw="

func TestCloudKeys(t *testing.T) {
	text := minimal + "[mqtt]\nbroker = \"tcp://127.0.0.1:1884\"\nusername = \"acme/e1\"\npassword_file = \"pw\"\n" +
		"cloud_keys = [\"acme-1=" + testKey + "\", \" acme-2=" + testKey + " \"]\n"
	cfg, err := Parse([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.MQTT.Keys) != 2 || len(cfg.MQTT.Keys["acme-1"]) != 32 || len(cfg.MQTT.Keys["acme-2"]) != 32 {
		t.Fatalf("keys %v", cfg.MQTT.Keys)
	}
}

func TestLoadReadsTheKey(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "credential.key")
	text := strings.Replace(minimal, `credential_key_file = "k"`, `credential_key_file = "`+keyFile+`"`, 1)
	cfgFile := filepath.Join(dir, "edge.toml")
	if err := os.WriteFile(cfgFile, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		key     string
		wantErr string
	}{
		{"00112233445566778899aabbccddeeff\n", ""},
		{"0011", "key is 2 bytes, want at least 16"},
		{"not hex at all", "not hex"},
	} {
		if err := os.WriteFile(keyFile, []byte(tt.key), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := Load(cfgFile)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("key %q: %v", tt.key, err)
		case tt.wantErr == "" && len(cfg.CredentialKey) != 16:
			t.Errorf("key %q: got %x", tt.key, cfg.CredentialKey)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("key %q: err = %v, want %q", tt.key, err, tt.wantErr)
		}
	}
	if _, err := Load(filepath.Join(dir, "missing.toml")); err == nil {
		t.Error("Load of a missing file succeeded")
	}
}
