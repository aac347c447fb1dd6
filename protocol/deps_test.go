package protocol_test

import (
	"os/exec"
	"strings"
	"testing"
)

// bannedPrefixes are the import paths that must never reach protocol: the
// adapters' dependencies and the modules that build on protocol. protocol is
// the leaf that edge, cloud and varco-sim share; pulling any of these in would
// drag a database driver or a GPIO library onto every side.
var bannedPrefixes = []string{
	"github.com/dgraph-io/badger",
	"github.com/jackc/pgx",
	"github.com/eclipse/paho",
	"periph.io/",
	"github.com/go-chi/chi",
	"github.com/mochi-mqtt/",
	"go.bug.st/serial",
	"varco.dev/edge",
	"varco.dev/cloud",
	"varco.dev/firmware-sim",
}

// TestBannedDeps lists every package that protocol and its tests import,
// transitively, and fails on any banned one.
func TestBannedDeps(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-test", "-f", "{{.ImportPath}}", "./...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) == 0 {
		t.Fatal("go list -deps printed no packages")
	}
	for _, dep := range deps {
		if prefix, ok := banned(dep); ok {
			t.Errorf("protocol depends on %s (banned prefix %q)", dep, prefix)
		}
	}
}

func banned(importPath string) (prefix string, ok bool) {
	for _, prefix := range bannedPrefixes {
		if strings.HasPrefix(importPath, prefix) {
			return prefix, true
		}
	}
	return "", false
}

// TestBannedDepsDetects proves the check above can fail: a package known to be
// in the list must be found by the same matching.
func TestBannedDepsDetects(t *testing.T) {
	for _, dep := range []string{"github.com/dgraph-io/badger/v4", "periph.io/x/host/v3/gpioioctl", "varco.dev/edge/cmd/varco-edge"} {
		if _, ok := banned(dep); !ok {
			t.Errorf("%s is not caught by bannedPrefixes", dep)
		}
	}
}
