// Package pgtest gives tests their own real PostgreSQL database.
//
// The server comes from VARCO_TEST_DATABASE_URL (default
// postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable). Migrations
// run once into a template database named after their content hash; each
// test then gets a fresh copy (CREATE DATABASE ... TEMPLATE), dropped in
// t.Cleanup. When the server is unreachable, tests are skipped, or fail
// when CI=true.
package pgtest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/alexedwards/argon2id"
	"github.com/jackc/pgx/v5"

	"varco.dev/cloud/postgres"
)

// DefaultURL is the server the tests use when VARCO_TEST_DATABASE_URL is unset.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// ServerURL returns the URL of the test server's maintenance database.
func ServerURL() string {
	if u := os.Getenv("VARCO_TEST_DATABASE_URL"); u != "" {
		return u
	}
	return DefaultURL
}

// FastPasswords are argon2id parameters cheap enough for tests.
var FastPasswords = &argon2id.Params{Memory: 1024, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32}

var (
	tplOnce sync.Once
	tplName string
	tplErr  error
)

func withDB(u, name string) string {
	p, err := url.Parse(u)
	if err != nil {
		return u
	}
	p.Path = "/" + name
	return p.String()
}

func migrationsHash() string {
	h := sha256.New()
	_ = fs.WalkDir(postgres.MigrationFS(), ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(postgres.MigrationFS(), path)
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", path, len(b))
		h.Write(b)
		return nil
	})
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// template creates, once per process, the migrated template database, under
// an advisory lock so that parallel test binaries build it only once.
func template(ctx context.Context) (string, error) {
	tplOnce.Do(func() {
		tplName = "varco_tpl_" + migrationsHash()
		tplErr = func() error {
			conn, err := pgx.Connect(ctx, ServerURL())
			if err != nil {
				return err
			}
			defer conn.Close(ctx)
			if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock(7412001)`); err != nil {
				return err
			}
			defer func() { _, _ = conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(7412001)`) }()
			var exists bool
			if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, tplName).Scan(&exists); err != nil {
				return err
			}
			if exists {
				return nil
			}
			tmp := tplName + "_tmp"
			if _, err := conn.Exec(ctx, `DROP DATABASE IF EXISTS `+tmp); err != nil {
				return err
			}
			if _, err := conn.Exec(ctx, `CREATE DATABASE `+tmp); err != nil {
				return err
			}
			db := postgres.NewDB(withDB(ServerURL(), tmp))
			db.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
			db.PasswordParams = FastPasswords
			if err := db.Open(ctx); err != nil {
				return err
			}
			err = db.Migrate(ctx)
			db.Close()
			if err != nil {
				return err
			}
			_, err = conn.Exec(ctx, `ALTER DATABASE `+tmp+` RENAME TO `+tplName)
			return err
		}()
	})
	return tplName, tplErr
}

func unavailable(t testing.TB, err error) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("pgtest: PostgreSQL at %s is required on CI: %v", ServerURL(), err)
	}
	t.Skipf("pgtest: PostgreSQL at %s unavailable, skipping: %v", ServerURL(), err)
}

// NewURL creates a fresh, migrated database for the test and returns its URL.
func NewURL(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	tpl, err := template(ctx)
	if err != nil {
		unavailable(t, err)
	}
	conn, err := pgx.Connect(ctx, ServerURL())
	if err != nil {
		unavailable(t, err)
	}
	defer conn.Close(ctx)
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "varco_test_" + hex.EncodeToString(b)
	if _, err := conn.Exec(ctx, `CREATE DATABASE `+name+` TEMPLATE `+tpl); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, ServerURL())
		if err != nil {
			t.Errorf("pgtest: drop %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`); err != nil {
			t.Errorf("pgtest: drop %s: %v", name, err)
		}
	})
	return withDB(ServerURL(), name)
}

// NewDB returns an open store on a fresh database, with cheap password
// hashing, the given clock and logs into t.Log. It is closed in t.Cleanup.
func NewDB(t testing.TB, clock *Clock) *postgres.DB {
	t.Helper()
	db := postgres.NewDB(NewURL(t))
	db.Logger = Logger(t)
	db.PasswordParams = FastPasswords
	if clock != nil {
		db.Now = clock.Now
	}
	if err := db.Open(context.Background()); err != nil {
		t.Fatalf("pgtest: open: %v", err)
	}
	t.Cleanup(db.Close)
	return db
}

// Clock is a settable clock for tests; it is safe for concurrent use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock stopped at t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// Add moves the clock by d.
func (c *Clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p[:max(0, len(p)-1)]))
	return len(p), nil
}

// Logger returns a slog.Logger writing into t.Log at debug level.
func Logger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
