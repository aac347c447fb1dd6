package mqtt_test

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	gosync "sync"
	"syscall"
	"testing"
	"time"

	"varco.dev/cloud/mqtt"
	vsync "varco.dev/protocol/sync"
)

var update = flag.Bool("update", false, "rewrite deploy/mosquitto/acl from users.example")

// deployDir holds the Mosquitto files that installers use.
const deployDir = "../../deploy/mosquitto"

// TestMosquitto runs the tests of TestEmbedded against a real Mosquitto on
// deploy/mosquitto/mosquitto.conf, with the files `varco-cloud
// mosquitto-config` would write for the fixture's users.
func TestMosquitto(t *testing.T) {
	t.Parallel()
	testBroker(t, func(t *testing.T) server { return server{addr: startMosquitto(t, users).addr} })
}

// TestMosquittoReload: new files and a SIGHUP let a new edge in, and
// disconnect and shut out a removed one.
func TestMosquittoReload(t *testing.T) {
	t.Parallel()
	m := startMosquitto(t, users)
	removed := mustDial(t, m.addr, "t1/e3", nil)

	added := mqtt.Credential{Username: "t2/e9", Tenant: "t2", Site: "s9", Edge: "e9"}
	next := []mqtt.Credential{added}
	for _, c := range users {
		if c.Username != "t1/e3" {
			next = append(next, c)
		}
	}
	m.writeFiles(t, next)
	m.reload(t)

	edge := mustDial(t, m.addr, "t2/e9", nil)
	if code := edge.subscribe(t, "varco/v1/t2/site/s9/state"); code != 1 {
		t.Fatalf("new edge: subscribe: code %#x", code)
	}
	mustDial(t, m.addr, "cloud", nil).publish(t, "varco/v1/t2/site/s9/state", 1, false, "delta")
	if got, want := edge.next(t), (msg{topic: "varco/v1/t2/site/s9/state", payload: "delta"}); got != want {
		t.Fatalf("new edge received %+v, want %+v", got, want)
	}
	select {
	case <-removed.lost:
	case <-time.After(wait):
		t.Fatal("the removed edge is still connected")
	}
	if c, err := dial(t, m.addr, "t1/e3", password, "", nil); err == nil {
		c.close()
		t.Fatal("the removed edge connected again")
	}
}

// mosquitto is a mosquitto process for one test, on a free loopback port,
// with its files in a temporary directory.
type mosquitto struct {
	addr string
	dir  string
	cmd  *exec.Cmd

	mu      gosync.Mutex
	waiters map[string]chan struct{} // log line substring → closed when logged
	log     bytes.Buffer             // every line, for errors
}

// startMosquitto runs mosquitto on deploy/mosquitto/mosquitto.conf with a
// password file and an ACL for users, each with the password `password`.
// Without the binary the test is skipped, or fails when CI=true.
func startMosquitto(t *testing.T, users []mqtt.Credential) *mosquitto {
	t.Helper()
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		bin, err = exec.LookPath("/usr/sbin/mosquitto") // Debian's, off a user's PATH
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("mosquitto is required on CI (apt-get install mosquitto): %v", err)
		}
		t.Skipf("mosquitto not installed, skipping: %v", err)
	}
	dir := t.TempDir()
	m := &mosquitto{dir: dir}
	m.writeFiles(t, users)
	// A port found free may be taken before mosquitto binds it: try again.
	for attempt := 1; ; attempt++ {
		err := m.start(t, bin)
		if err == nil {
			return m
		}
		if attempt == 3 {
			t.Fatal(err)
		}
		t.Log(err)
	}
}

// writeFiles writes the ACL and the password file for users.
func (m *mosquitto) writeFiles(t *testing.T, users []mqtt.Credential) {
	t.Helper()
	var acl, passwd bytes.Buffer
	if err := mqtt.WriteMosquittoACL(&acl, users); err != nil {
		t.Fatal(err)
	}
	hashes := map[string]string{}
	for _, c := range users {
		h, err := mqtt.MosquittoHash(password)
		if err != nil {
			t.Fatal(err)
		}
		hashes[c.Username] = h
	}
	if err := mqtt.WriteMosquittoPasswords(&passwd, users, hashes); err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"acl": acl.Bytes(), "passwd": passwd.Bytes()} {
		if err := os.WriteFile(filepath.Join(m.dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// start writes the configuration, starts mosquitto and waits until it runs.
func (m *mosquitto) start(t *testing.T, bin string) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m.addr = ln.Addr().String()
	ln.Close()
	_, port, _ := net.SplitHostPort(m.addr)
	settings := map[string]string{
		"listener":             port + " 127.0.0.1",
		"password_file":        filepath.Join(m.dir, "passwd"),
		"acl_file":             filepath.Join(m.dir, "acl"),
		"persistence_location": m.dir + "/",
		"log_dest":             "stderr",
	}
	if os.Geteuid() == 0 {
		settings["user"] = "root" // not mosquitto, which cannot read m.dir
	}
	conf := filepath.Join(m.dir, "mosquitto.conf")
	if err := os.WriteFile(conf, []byte(testConf(t, settings)), 0o600); err != nil {
		t.Fatal(err)
	}

	m.waiters = map[string]chan struct{}{}
	m.log.Reset()
	running := m.expect(" running")
	m.cmd = exec.Command(bin, "-c", conf)
	stderr, err := m.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := m.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	logged := make(chan struct{}) // closed when stderr is closed
	go m.readLog(&tWriter{t: t}, stderr, logged)
	stop := func() {
		_ = m.cmd.Process.Signal(syscall.SIGTERM)
		<-logged
		_ = m.cmd.Wait()
	}
	select {
	case <-running:
		t.Cleanup(stop)
		return nil
	case <-logged:
	case <-time.After(wait):
	}
	stop()
	m.mu.Lock()
	defer m.mu.Unlock()
	return fmt.Errorf("mosquitto did not start on %s:\n%s", m.addr, m.log.String())
}

// testConf is deploy/mosquitto/mosquitto.conf with settings in place of
// the ones it has, and appended where it has none.
func testConf(t *testing.T, settings map[string]string) string {
	t.Helper()
	shipped, err := os.ReadFile(filepath.Join(deployDir, "mosquitto.conf"))
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	done := map[string]bool{}
	for line := range strings.Lines(string(shipped)) {
		key, _, _ := strings.Cut(strings.TrimSpace(line), " ")
		if v, ok := settings[key]; ok {
			if !done[key] {
				fmt.Fprintf(&out, "%s %s\n", key, v)
				done[key] = true
			}
			continue
		}
		out.WriteString(line)
	}
	for key, v := range settings {
		if !done[key] {
			fmt.Fprintf(&out, "%s %s\n", key, v)
		}
	}
	out.WriteString("log_type debug\n") // every packet, in the test's log
	return out.String()
}

// readLog copies mosquitto's log lines to w and wakes their waiters, until
// r ends.
func (m *mosquitto) readLog(w io.Writer, r io.Reader, done chan<- struct{}) {
	defer close(done)
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		fmt.Fprintln(w, "mosquitto:", line)
		m.mu.Lock()
		m.log.WriteString(line + "\n")
		for s, ch := range m.waiters {
			if strings.Contains(line, s) {
				close(ch)
				delete(m.waiters, s)
			}
		}
		m.mu.Unlock()
	}
}

// expect returns a channel closed when mosquitto logs a line with s.
func (m *mosquitto) expect(s string) <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	ch := make(chan struct{})
	m.waiters[s] = ch
	return ch
}

// reload sends SIGHUP and waits until mosquitto reloads. Mosquitto logs
// the line, then rereads its files before it reads from any client.
func (m *mosquitto) reload(t *testing.T) {
	t.Helper()
	reloading := m.expect("Reloading config")
	if err := m.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	select {
	case <-reloading:
	case <-time.After(wait):
		t.Fatal("mosquitto did not reload")
	}
}

// TestMosquittoACLFile: the ACL grants each fixture edge exactly what
// Allowed grants it, on every topic of the layout for the fixture's ids.
func TestMosquittoACLFile(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	if err := mqtt.WriteMosquittoACL(&b, users); err != nil {
		t.Fatal(err)
	}
	acl := parseACL(t, b.String())
	for _, c := range users {
		if c.Cloud {
			if got := acl[c.Username]; len(got) != 1 || got["topic readwrite #"] != true {
				t.Errorf("cloud %s: ACL %v, want readwrite #", c.Username, got)
			}
			continue
		}
		n := 0
		for k := vsync.TopicState; k.Valid(); k++ {
			for _, tenant := range []string{"t1", "t2"} {
				for _, id := range []string{"s1", "s2", "s9", "e1", "e2", "e3"} {
					topic := vsync.Topic{Kind: k, Tenant: tenant, Edge: id}
					if k.PerSite() {
						topic.Site, topic.Edge = id, ""
					}
					for _, access := range []string{"write", "read"} {
						allowed := mqtt.Allowed(c, topic.String(), access == "write")
						if granted := acl[c.Username]["topic "+access+" "+topic.String()]; granted != allowed {
							t.Errorf("%s %s %s: ACL grants %v, Allowed %v", c.Username, access, topic, granted, allowed)
						}
						if allowed {
							n++
						}
					}
				}
			}
		}
		if len(acl[c.Username]) != n {
			t.Errorf("%s: %d ACL lines, want %d: %v", c.Username, len(acl[c.Username]), n, acl[c.Username])
		}
	}
}

// parseACL returns the "topic" lines of a Mosquitto ACL by user.
func parseACL(t *testing.T, acl string) map[string]map[string]bool {
	t.Helper()
	users := map[string]map[string]bool{}
	var user string
	for line := range strings.Lines(acl) {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "user "):
			user = strings.TrimPrefix(line, "user ")
			users[user] = map[string]bool{}
		case strings.HasPrefix(line, "topic ") && user != "":
			users[user][line] = true
		default:
			t.Fatalf("ACL line %q", line)
		}
	}
	return users
}

// TestMosquittoACLGolden: deploy/mosquitto/acl is what users.example gives
// (go test -run MosquittoACLGolden -update rewrites it).
func TestMosquittoACLGolden(t *testing.T) {
	t.Parallel()
	f, err := os.Open(filepath.Join(deployDir, "users.example"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	example, err := mqtt.ParseUsers(f)
	if err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	if err := mqtt.WriteMosquittoACL(&got, example); err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join(deployDir, "acl")
	if *update {
		if err := os.WriteFile(golden, got.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got.String() != string(want) {
		t.Errorf("%s is out of date (go test -run MosquittoACLGolden -update); it should be:\n%s", golden, got.String())
	}
}

// fromMosquittoPasswd is what `mosquitto_passwd -c -b FILE t1/e1 'correct
// horse'` (Mosquitto 2.0.11) wrote.
const fromMosquittoPasswd = "t1/e1:$7$101$slo4bZ2XmXvqRnns$zTUEFnNsFwaTr/i4ePtijhsdTQIN703mSWZyBNkEqy4o4Jo4lnD5CDH8Mb4jtCud4UUFBSRiO4qag/S9ptO+sg==\n"

func TestMosquittoHash(t *testing.T) {
	t.Parallel()
	hashes, err := mqtt.ReadMosquittoPasswords(strings.NewReader(fromMosquittoPasswd))
	if err != nil {
		t.Fatal(err)
	}
	own, err := mqtt.MosquittoHash(password)
	if err != nil {
		t.Fatal(err)
	}
	for _, hash := range []string{hashes["t1/e1"], own} {
		for pass, want := range map[string]bool{password: true, "correct horsE": false, "x": false} {
			if ok, err := mqtt.CheckMosquittoHash(pass, hash); err != nil || ok != want {
				t.Errorf("CheckMosquittoHash(%q, %s) = %v, %v; want %v", pass, hash, ok, err, want)
			}
		}
	}
	if !strings.HasPrefix(own, "$7$"+strconv.Itoa(mqtt.MosquittoIterations)+"$") || len(own) != len(hashes["t1/e1"]) {
		t.Errorf("MosquittoHash = %s, want the shape of %s", own, hashes["t1/e1"])
	}
	if again, _ := mqtt.MosquittoHash(password); again == own {
		t.Error("two hashes of a password are equal: no salt")
	}
	if _, err := mqtt.MosquittoHash(""); err == nil {
		t.Error("MosquittoHash of an empty password: no error")
	}
	for _, bad := range []string{"", "$6$salt$hash", "$7$x$c2FsdA==$aGFzaA==", "$7$0$c2FsdA==$aGFzaA==", "$7$101$!!$aGFzaA==", "$7$101$c2FsdA=="} {
		if _, err := mqtt.CheckMosquittoHash(password, bad); err == nil {
			t.Errorf("CheckMosquittoHash(%q): no error", bad)
		}
	}
}

func TestMosquittoPasswordFile(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"t1/e1\n", ":hash\n", "t1/e1:\n", "a:$7$x\na:$7$y\n"} {
		if _, err := mqtt.ReadMosquittoPasswords(strings.NewReader(bad)); err == nil {
			t.Errorf("ReadMosquittoPasswords(%q): no error", bad)
		}
	}
	edge := user(t, "t1/e1")
	var b bytes.Buffer
	if err := mqtt.WriteMosquittoPasswords(&b, []mqtt.Credential{edge}, map[string]string{"t1/e1": "$7$101$s$h"}); err != nil || b.String() != "t1/e1:$7$101$s$h\n" {
		t.Errorf("WriteMosquittoPasswords: %q, %v", b.String(), err)
	}
	for _, tc := range []struct {
		user mqtt.Credential
		hash string
	}{
		{edge, ""},                      // no hash
		{edge, "plain"},                 // not a $7$ hash
		{edge, "$7$1$s$h:x"},            // a ':' in the hash
		{mqtt.Credential{}, "$7$1$s$h"}, // zero credential
		{mqtt.Credential{Username: "a:b", Cloud: true}, "$7$1$s$h"},                // a ':' in the username
		{mqtt.Credential{Username: "t1/e1", Tenant: "t1", Edge: "e1"}, "$7$1$s$h"}, // no site
	} {
		if err := mqtt.WriteMosquittoPasswords(io.Discard, []mqtt.Credential{tc.user}, map[string]string{tc.user.Username: tc.hash}); err == nil {
			t.Errorf("WriteMosquittoPasswords(%+v, %q): no error", tc.user, tc.hash)
		}
	}
}

func TestParseUsers(t *testing.T) {
	t.Parallel()
	got, err := mqtt.ParseUsers(strings.NewReader("# comment\n\n  cloud cloud-1\nedge t1 s1 e1 \n\tedge t1 s2 e3\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []mqtt.Credential{
		{Username: "cloud-1", Cloud: true},
		{Username: "t1/e1", Tenant: "t1", Site: "s1", Edge: "e1"},
		{Username: "t1/e3", Tenant: "t1", Site: "s2", Edge: "e3"},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("ParseUsers = %+v, want %+v", got, want)
	}
	for _, bad := range []string{
		"edge t1 s1\n",                   // no edge
		"edge t1 s1 e1 x\n",              // extra field
		"edge T1 s1 e1\n",                // upper case
		"edge t1 s1 e/1\n",               // a '/'
		"edge t1 s1 +\n",                 // a wildcard
		"cloud\n",                        // no name
		"cloud a:b\n",                    // a ':' would break the password file
		"cloud t1/cloud\n",               // a '/'
		"router r1\n",                    // unknown kind
		"edge t1 s1 e1\nedge t1 s2 e1\n", // twice the same username
		"cloud c\ncloud c\n",             // twice
		"edge t1 s1 " + strings.Repeat("e", 65) + "\n", // too long
	} {
		if users, err := mqtt.ParseUsers(strings.NewReader(bad)); err == nil {
			t.Errorf("ParseUsers(%q) = %+v, no error", bad, users)
		}
	}
}

// FuzzParseUsers: whatever it accepts makes valid Mosquitto files.
func FuzzParseUsers(f *testing.F) {
	f.Add("cloud cloud-1\nedge t1 s1 e1\n")
	f.Add("# x\n\nedge a b c\n")
	f.Add("edge t1 s1 e1\nedge t1 s2 e1\n")
	f.Fuzz(func(t *testing.T, in string) {
		users, err := mqtt.ParseUsers(strings.NewReader(in))
		if err != nil {
			return
		}
		hashes := map[string]string{}
		for _, c := range users {
			hashes[c.Username] = "$7$101$c2FsdA==$aGFzaA=="
		}
		var acl, passwd bytes.Buffer
		if err := mqtt.WriteMosquittoACL(&acl, users); err != nil {
			t.Fatalf("ParseUsers accepted %q, WriteMosquittoACL: %v", in, err)
		}
		if err := mqtt.WriteMosquittoPasswords(&passwd, users, hashes); err != nil {
			t.Fatalf("ParseUsers accepted %q, WriteMosquittoPasswords: %v", in, err)
		}
		if back, err := mqtt.ReadMosquittoPasswords(&passwd); err != nil || len(back) != len(users) {
			t.Fatalf("password file of %q read back as %v, %v", in, back, err)
		}
	})
}
