package badger

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"testing"

	"go.uber.org/goleak"

	vsync "varco.dev/protocol/sync"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(childEnv); dir != "" {
		journalChild(dir) // the child process of TestJournalKill9
		return
	}
	goleak.VerifyTestMain(m)
}

// testLogger logs into t.Log.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

var (
	tenantKey = []byte("0123456789abcdef0123456789abcdef")
	ctx       = context.Background()
)

func cardKey(i int) vsync.CredentialKey {
	return vsync.CredentialHash(tenantKey, fmt.Sprintf("card:118:%d", i))
}

// rec is member m's record with card m and the given extras.
func rec(m int, extra ...func(r *vsync.Record)) vsync.Record {
	r := vsync.Record{
		Member:      vsync.MemberRef(m),
		Credentials: []vsync.Credential{{Key: cardKey(m)}},
		Valid:       []vsync.Window{{From: 1_700_000_000_000, Until: 1_900_000_000_000}},
		Devices:     vsync.DeviceSetOf(vsync.DeviceEntrance, vsync.DeviceExit),
	}
	for _, f := range extra {
		f(&r)
	}
	return r
}

// run runs a command and returns its output.
func run(name string, args ...string) ([]byte, error) {
	return exec.Command(name, args...).CombinedOutput()
}
