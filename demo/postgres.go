package demo

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// database is the demo's PostgreSQL database, and how to remove it.
type database struct {
	URL     string // of the demo's own database
	cleanup func(context.Context) error
	// restart restarts a throwaway cluster (the system tests' PostgreSQL
	// restart); nil on a server the demo did not start.
	restart func(context.Context) error
}

// openDatabase gives the demo a fresh database named name: on the
// PostgreSQL at adminURL when one answers there, otherwise on a throwaway
// cluster started from the installed server binaries in dir, which cleanup
// stops and removes. throwaway starts the cluster whatever answers.
func openDatabase(ctx context.Context, adminURL string, throwaway bool, name, dir string, say func(string, ...any)) (*database, error) {
	stopCluster := func(context.Context) error { return nil }
	var restart func(context.Context) error
	var pingErr error
	if !throwaway {
		pingErr = ping(ctx, adminURL)
	}
	if throwaway || pingErr != nil {
		if pingErr != nil {
			say("no PostgreSQL answers at %s (%v)", redact(adminURL), pingErr)
		}
		initdb, lookErr := findInitdb()
		if lookErr != nil {
			return nil, fmt.Errorf("no PostgreSQL to use: none answers at %s and %w; "+
				"install it (apt-get install postgresql) or point DATABASE_URL at one", redact(adminURL), lookErr)
		}
		say("starting a throwaway PostgreSQL cluster with %s", initdb)
		var err error
		adminURL, stopCluster, restart, err = startCluster(ctx, initdb, dir)
		if err != nil {
			return nil, err
		}
	}
	if err := exec1(ctx, adminURL, fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", pgx.Identifier{name}.Sanitize())); err != nil {
		stopCluster(ctx)
		return nil, err
	}
	if err := exec1(ctx, adminURL, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		stopCluster(ctx)
		return nil, err
	}
	u, err := url.Parse(adminURL)
	if err != nil {
		return nil, fmt.Errorf("database url: %w", err)
	}
	u.Path = "/" + name
	return &database{URL: u.String(), restart: restart, cleanup: func(ctx context.Context) error {
		err := exec1(ctx, adminURL, fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", pgx.Identifier{name}.Sanitize()))
		return errors.Join(err, stopCluster(ctx))
	}}, nil
}

func ping(ctx context.Context, dbURL string) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	return conn.Ping(ctx)
}

func exec1(ctx context.Context, dbURL, sql string) error {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", redact(dbURL), err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, sql); err != nil {
		return fmt.Errorf("%s: %w", sql, err)
	}
	return nil
}

// findInitdb looks for PostgreSQL's initdb in PATH and in Debian's
// /usr/lib/postgresql/<version>/bin, newest version first.
func findInitdb() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		return p, nil
	}
	found, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	slices.SortFunc(found, func(a, b string) int { return version(b) - version(a) })
	if len(found) == 0 {
		return "", errors.New("no PostgreSQL server binaries (initdb) are installed")
	}
	return found[0], nil
}

func version(initdb string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(initdb))))
	return v
}

// startCluster makes a cluster in dir on a free loopback port, trusting
// local connections, and starts it. PostgreSQL refuses to run as root, so
// as root it runs as the postgres user.
func startCluster(ctx context.Context, initdb, dir string) (adminURL string, stop, restart func(context.Context) error, err error) {
	port, err := freePort()
	if err != nil {
		return "", nil, nil, err
	}
	pgCtl := filepath.Join(filepath.Dir(initdb), "pg_ctl")
	var asUser []string
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return "", nil, nil, fmt.Errorf("throwaway cluster: running as root and %w", err)
		}
		asUser = []string{"runuser", "-u", "postgres", "--"}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return "", nil, nil, err
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			return "", nil, nil, fmt.Errorf("throwaway cluster: %w", err)
		}
	}
	cmd := func(bin string, args ...string) (string, []string) {
		all := append(append(slices.Clone(asUser), bin), args...)
		return all[0], all[1:]
	}
	bin, args := cmd(initdb, "-D", dir, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-instructions")
	if _, err := runCommand(ctx, bin, args, nil); err != nil {
		return "", nil, nil, fmt.Errorf("throwaway cluster: %w", err)
	}
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1", port, dir)
	bin, args = cmd(pgCtl, "-D", dir, "-o", opts, "-l", filepath.Join(dir, "server.log"), "-w", "start")
	if _, err := runCommand(ctx, bin, args, nil); err != nil {
		os.RemoveAll(dir)
		return "", nil, nil, fmt.Errorf("throwaway cluster: %w", err)
	}
	stop = func(ctx context.Context) error {
		bin, args := cmd(pgCtl, "-D", dir, "-m", "fast", "-w", "stop")
		_, err := runCommand(ctx, bin, args, nil)
		return errors.Join(err, os.RemoveAll(dir))
	}
	restart = func(ctx context.Context) error {
		bin, args := cmd(pgCtl, "-D", dir, "-o", opts, "-l", filepath.Join(dir, "server.log"), "-m", "fast", "-w", "restart")
		_, err := runCommand(ctx, bin, args, nil)
		return err
	}
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port), stop, restart, nil
}

// freePort returns a TCP port free on the loopback interface now.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// redact hides a URL's password.
func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(bad url)"
	}
	return u.Redacted()
}
