package main

import (
	"bytes"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"varco.dev/cloud/mqtt"
)

// TestMosquittoConfig runs mosquitto-config twice, as an installer does
// when edges are added and removed.
func TestMosquittoConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	usersFile := filepath.Join(dir, "users")
	writeUsers := func(s string) {
		t.Helper()
		if err := os.WriteFile(usersFile, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	configure := func() map[string]string {
		t.Helper()
		var out bytes.Buffer
		if err := run(t.Context(), []string{"mosquitto-config", "-dir", dir, usersFile}, &out, io.Discard); err != nil {
			t.Fatal(err)
		}
		passwords := map[string]string{}
		for line := range strings.Lines(out.String()) {
			user, password, _ := strings.Cut(strings.TrimSpace(line), " ")
			passwords[user] = password
		}
		return passwords
	}
	hashes := func() map[string]string {
		t.Helper()
		f, err := os.Open(filepath.Join(dir, "passwd"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		h, err := mqtt.ReadMosquittoPasswords(f)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}

	writeUsers("cloud cloud-1\nedge t1 s1 e1\nedge t1 s1 e2\n")
	first := configure()
	if len(first) != 3 || first["cloud-1"] == "" || first["t1/e1"] == "" || first["t1/e2"] == "" || first["t1/e1"] == first["t1/e2"] {
		t.Fatalf("first run printed passwords %v, want a distinct one for each of 3 users", first)
	}
	if g, err := user.LookupGroup("mosquitto"); err == nil {
		fi, err := os.Stat(filepath.Join(dir, "passwd"))
		if err != nil || strconv.Itoa(int(fi.Sys().(*syscall.Stat_t).Gid)) != g.Gid || fi.Mode().Perm() != 0o640 {
			t.Errorf("new passwd: %v %+v, %v; want 0640 and group mosquitto (%s), which Mosquitto reads it as", fi.Mode(), fi.Sys(), err, g.Gid)
		}
	}
	h1 := hashes()
	for user, password := range first {
		if ok, err := mqtt.CheckMosquittoHash(password, h1[user]); !ok || err != nil {
			t.Errorf("%s: the printed password does not match its hash %s: %v", user, h1[user], err)
		}
	}
	// An installer gives the files to Mosquitto's user; a rewrite keeps that.
	if err := os.Chmod(filepath.Join(dir, "passwd"), 0o600); err != nil {
		t.Fatal(err)
	}
	const nobody = 65534
	root := os.Geteuid() == 0
	if root {
		if err := os.Chown(filepath.Join(dir, "passwd"), nobody, nobody); err != nil {
			t.Fatal(err)
		}
	}

	// An edge added, one removed: only the new one gets a password.
	writeUsers("cloud cloud-1\nedge t1 s1 e1\nedge t2 s9 e9\n")
	if second := configure(); len(second) != 1 || second["t2/e9"] == "" {
		t.Fatalf("second run printed passwords %v, want one for t2/e9", second)
	}
	h2 := hashes()
	if len(h2) != 3 || h2["cloud-1"] != h1["cloud-1"] || h2["t1/e1"] != h1["t1/e1"] || h2["t1/e2"] != "" {
		t.Errorf("second run: hashes %v; want those of cloud-1 and t1/e1 kept, t1/e2 gone", h2)
	}
	if fi, err := os.Stat(filepath.Join(dir, "passwd")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("passwd mode after a rewrite: %v, %v; want 0600 kept", fi.Mode(), err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "passwd")); root && (err != nil || fi.Sys().(*syscall.Stat_t).Uid != nobody || fi.Sys().(*syscall.Stat_t).Gid != nobody) {
		t.Errorf("passwd owner after a rewrite: %+v, %v; want %d:%d kept", fi.Sys(), err, nobody, nobody)
	}
	acl, err := os.ReadFile(filepath.Join(dir, "acl"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(acl), "user t2/e9\n") || strings.Contains(string(acl), "t1/e2") {
		t.Errorf("acl after the second run:\n%s", acl)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 3 {
		t.Errorf("files left in %s: %v; want users, acl, passwd", dir, entries)
	}
}

func TestMosquittoConfigErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, users, passwd string
		args                []string
	}{
		{name: "no users file", args: []string{}},
		{name: "two users files", args: []string{"a", "b"}},
		{name: "missing users file", args: []string{"/nonexistent/users"}},
		{name: "bad users file", users: "edge t1 s1\n"},
		{name: "bad passwd", users: "edge t1 s1 e1\n", passwd: "no colon\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			args := tc.args
			if args == nil {
				users := filepath.Join(dir, "users")
				if err := os.WriteFile(users, []byte(tc.users), 0o600); err != nil {
					t.Fatal(err)
				}
				args = []string{users}
			}
			if tc.passwd != "" {
				if err := os.WriteFile(filepath.Join(dir, "passwd"), []byte(tc.passwd), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			var out bytes.Buffer
			err := run(t.Context(), append([]string{"mosquitto-config", "-dir", dir}, args...), &out, io.Discard)
			if err == nil {
				t.Fatal("no error")
			}
			if out.Len() > 0 {
				t.Errorf("printed %q", out.String())
			}
			if _, err := os.Stat(filepath.Join(dir, "acl")); err == nil {
				t.Error("wrote an acl")
			}
		})
	}
}
