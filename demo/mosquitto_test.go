package demo

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// broker is a real Mosquitto run on deploy/mosquitto's configuration, with
// the accounts and ACL that `varco-cloud mosquitto-config` writes.
type broker struct {
	bin, dir, conf, addr, varcoCloud string
	users                            []string
	proc                             *process
}

// newBroker prepares a Mosquitto in its own directory; a missing binary
// skips the test, or fails it under CI (.ci/run installs it).
func newBroker(t *testing.T, varcoCloud string) *broker {
	t.Helper()
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		bin = "/usr/sbin/mosquitto"
		if _, err := os.Stat(bin); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatal("no mosquitto binary: .ci/run installs Debian's package")
			}
			t.Skip("no mosquitto binary")
		}
	}
	dir, err := os.MkdirTemp("", "varco-mosquitto-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	b := &broker{bin: bin, dir: dir, addr: fmt.Sprintf("127.0.0.1:%d", port), varcoCloud: varcoCloud}
	shipped, err := os.ReadFile("../deploy/mosquitto/mosquitto.conf")
	if err != nil {
		t.Fatal(err)
	}
	settings := map[string]string{
		"listener":             fmt.Sprintf("%d 127.0.0.1", port),
		"password_file":        filepath.Join(dir, "passwd"),
		"acl_file":             filepath.Join(dir, "acl"),
		"persistence_location": dir + "/",
	}
	if os.Geteuid() == 0 {
		settings["user"] = "root" // the mosquitto user cannot read a test's directory
	}
	var conf strings.Builder
	for line := range strings.Lines(string(shipped)) {
		key, _, _ := strings.Cut(strings.TrimSpace(line), " ")
		if v, ok := settings[key]; ok {
			fmt.Fprintf(&conf, "%s %s\n", key, v)
			delete(settings, key)
			continue
		}
		conf.WriteString(line)
	}
	for k, v := range settings {
		fmt.Fprintf(&conf, "%s %s\n", k, v)
	}
	b.conf = filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(b.conf, []byte(conf.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return b
}

// addUser lists a user ("cloud NAME" or "edge TENANT SITE EDGE"), rewrites
// the accounts and returns the new user's password.
func (b *broker) addUser(ctx context.Context, user string) (string, error) {
	b.users = append(b.users, user)
	users := filepath.Join(b.dir, "users")
	if err := os.WriteFile(users, []byte(strings.Join(b.users, "\n")+"\n"), 0o600); err != nil {
		return "", err
	}
	out, err := exec.CommandContext(ctx, b.varcoCloud, "mosquitto-config", "-dir", b.dir, users).Output()
	if err != nil {
		return "", fmt.Errorf("varco-cloud mosquitto-config: %w", err)
	}
	f := strings.Fields(user)
	name := f[len(f)-1]
	if f[0] == "edge" {
		name = f[1] + "/" + f[3]
	}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		if u, pw, ok := strings.Cut(sc.Text(), " "); ok && u == name {
			if b.proc != nil { // a running broker reloads its files
				syscall.Kill(b.proc.cmd.Process.Pid, syscall.SIGHUP)
			}
			return pw, nil
		}
	}
	return "", fmt.Errorf("mosquitto-config printed no password for %s:\n%s", name, out)
}

// start runs the broker and waits until it accepts connections.
func (b *broker) start(t *testing.T) {
	t.Helper()
	p, err := start("mosquitto", b.bin, []string{"-c", b.conf}, nil, b.dir)
	if err != nil {
		t.Fatal(err)
	}
	b.proc = p
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := net.DialTimeout("tcp", b.addr, time.Second); err == nil {
			c.Close()
			return
		}
		if err := p.exited(); err != nil || time.Now().After(deadline) {
			t.Fatalf("mosquitto did not start on %s: %v\n%s", b.addr, err, tail(p.log, 20))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (b *broker) stop(t *testing.T) {
	t.Helper()
	if err := b.proc.stop(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	b.proc = nil
}

// TestMosquittoDown runs the club on an external Mosquitto and stops the
// broker while members badge and staff create a CRM action: the edge
// decides from its cache and journals, the cloud keeps the change; when
// the broker is back, every passage arrives once and the action reaches
// the turnstile.
func TestMosquittoDown(t *testing.T) {
	bins := binaries(t)
	b := newBroker(t, filepath.Join(bins, "varco-cloud"))
	cloudPassword, err := b.addUser(t.Context(), "cloud cloud-1")
	if err != nil {
		t.Fatal(err)
	}
	b.start(t)
	t.Cleanup(func() {
		if b.proc != nil {
			b.proc.stop(10 * time.Second)
		}
	})
	d := system(t, false, func(d *run) {
		d.cloudEnv = []string{"VARCO_MQTT_URL=tcp://" + b.addr, "VARCO_MQTT_USERNAME=cloud-1", "VARCO_MQTT_PASSWORD=" + cloudPassword,
			"VARCO_MQTT_CLIENT_ID=cloud-1"}
		d.edgeAccount = func(ctx context.Context, ec edgeConfig) (string, string, error) {
			pw, err := b.addUser(ctx, fmt.Sprintf("edge %s %s %s", ec.Tenant, ec.Site, ec.EdgeID))
			return "tcp://" + b.addr, pw, err
		}
	})
	ctx := t.Context()
	d.badgeN(t, 3)

	b.stop(t)
	// VARCO_SYSTEM_OUTAGE=3m keeps the broker down that long, a badge every
	// two seconds; by default 8 badges in a row.
	outage, _ := time.ParseDuration(os.Getenv("VARCO_SYSTEM_OUTAGE"))
	down := 0
	for end := time.Now().Add(outage); down < 8 || time.Now().Before(end); down++ {
		d.badgeN(t, 1)
		if outage > 0 {
			time.Sleep(2 * time.Second)
		}
	}
	before, err := d.edgeHealth(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if before.JournalBacklog < uint64(down) {
		t.Errorf("journal backlog %d with the broker down, want at least the %d passages since", before.JournalBacklog, down)
	}
	if err := d.api.do(ctx, http.MethodPost, "/api/v1/actions", map[string]any{"member_id": d.club.anna.id, "type_id": d.club.blockType}, nil); err != nil {
		t.Fatal(err)
	}
	b.start(t)
	if err := d.reachesEdge(ctx, before.CacheVersion, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := d.badge(ctx, 1, d.club.anna, "expect 1 deny"); err != nil {
		t.Fatal(err)
	}
	ps := d.passages(t)
	if want := 3 + down + 1; len(ps) != want {
		t.Errorf("the cloud stored %d passages, want %d", len(ps), want)
	}
	seen := map[uint64]bool{}
	for _, p := range ps {
		if seen[p.Seq] {
			t.Errorf("passage seq %d stored twice", p.Seq)
		}
		seen[p.Seq] = true
	}
}
