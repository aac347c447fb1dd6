// Package postgres implements the services of package cloud on PostgreSQL
// through pgx. All SQL of varco-cloud lives here, together with the goose
// migrations embedded from migrations/.
//
// Every query is scoped by the tenant of the operator in the context, and
// the schema backs that up: references between tenant data are composite
// (tenant_id, id) foreign keys. Every change is written to the audit log in
// the same transaction as the change itself.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"strings"
	"time"

	"github.com/alexedwards/argon2id"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"varco.dev/cloud"
)

//go:embed migrations/*.sql
var migrations embed.FS

// DB is the connection pool and the settings shared by the services.
type DB struct {
	Pool *pgxpool.Pool
	URL  string

	// Now returns the current time; tests replace it.
	Now func() time.Time
	// Logger receives the store's logs.
	Logger *slog.Logger
	// PasswordParams are the argon2id parameters for new password hashes.
	PasswordParams *argon2id.Params
	// SessionTTL is how long a login token lasts.
	SessionTTL time.Duration

	dummyHash string // compared against when an e-mail is unknown, to keep timing flat
	configs   configCache
}

// NewDB returns a DB for the given connection URL. Call Open before use.
func NewDB(url string) *DB {
	return &DB{
		URL:            url,
		Now:            time.Now,
		Logger:         slog.Default(),
		PasswordParams: argon2id.DefaultParams,
		SessionTTL:     12 * time.Hour,
	}
}

// Open connects the pool and checks the server answers.
func (db *DB) Open(ctx context.Context) error {
	if db.URL == "" {
		return errors.New("postgres: database URL required")
	}
	cfg, err := pgxpool.ParseConfig(db.URL)
	if err != nil {
		return fmt.Errorf("postgres: parse URL: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("postgres: connect: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return fmt.Errorf("postgres: ping: %w", err)
	}
	db.Pool = pool
	db.dummyHash, err = argon2id.CreateHash("varco-dummy-password", db.PasswordParams)
	if err != nil {
		pool.Close()
		return fmt.Errorf("postgres: dummy hash: %w", err)
	}
	return nil
}

// Close closes the pool.
func (db *DB) Close() {
	if db.Pool != nil {
		db.Pool.Close()
	}
}

// Ping checks the database answers; /healthz uses it.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.Pool.Ping(ctx); err != nil {
		return fmt.Errorf("postgres: ping: %w", err)
	}
	return nil
}

// Migrate applies the embedded migrations that are not applied yet. A
// PostgreSQL advisory lock keeps concurrent replicas from racing.
// Migrations developed on parallel branches may be merged with a lower
// number than one a database already has: those are applied out of order
// rather than refused (goose's allow-out-of-order).
func (db *DB) Migrate(ctx context.Context) error {
	sqlDB := stdlib.OpenDBFromPool(db.Pool)
	defer sqlDB.Close()
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("postgres: migrations: %w", err)
	}
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return fmt.Errorf("postgres: migration lock: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, sqlDB, fsys, goose.WithSessionLocker(locker),
		goose.WithAllowOutofOrder(true))
	if err != nil {
		return fmt.Errorf("postgres: migrations: %w", err)
	}
	results, err := p.Up(ctx)
	if err != nil {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	for _, r := range results {
		db.Logger.InfoContext(ctx, "migration applied", slog.String("source", r.Source.Path), slog.Duration("duration", r.Duration))
	}
	return nil
}

func (db *DB) now() time.Time { return db.Now().UTC().Truncate(time.Microsecond) }

// queryer is what a pool and a transaction have in common.
type queryer interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// Tx is a transaction with the time it started and the acting operator.
type Tx struct {
	pgx.Tx
	db  *DB
	now time.Time
	op  *cloud.Operator
}

// inTx runs fn in a transaction of the operator in ctx, committing when fn
// returns nil.
func (db *DB) inTx(ctx context.Context, fn func(tx *Tx) error) error {
	op, err := cloud.Actor(ctx)
	if err != nil {
		return err
	}
	return db.inTxAs(ctx, op, fn)
}

func (db *DB) inTxAs(ctx context.Context, op *cloud.Operator, fn func(tx *Tx) error) error {
	ptx, err := db.Pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = ptx.Rollback(ctx) }()
	tx := &Tx{Tx: ptx, db: db, now: db.now(), op: op}
	if err := fn(tx); err != nil {
		return err
	}
	if err := ptx.Commit(ctx); err != nil {
		return mapErr(fmt.Errorf("commit: %w", err))
	}
	return nil
}

// tenant returns the tenant of the acting operator.
func (tx *Tx) tenant() int64 { return tx.op.TenantID }

// audit records a change made in this transaction.
func (tx *Tx) audit(ctx context.Context, action, entity string, id int64, data any) error {
	var opID *int64
	if tx.op != nil && tx.op.ID > 0 {
		opID = &tx.op.ID
	}
	_, err := tx.Exec(ctx, `INSERT INTO audit_log (tenant_id, operator_id, at, action, entity, entity_id, data)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, tx.tenant(), opID, tx.now, action, entity, id, data)
	if err != nil {
		return fmt.Errorf("audit %s: %w", action, err)
	}
	return nil
}

// mapErr turns constraint violations into domain errors: unique → ECONFLICT,
// foreign key → EINVALID naming the referencing column, check → EINVALID.
func mapErr(err error) error {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return err
	}
	switch pgErr.Code {
	case "23505":
		return &cloud.Error{Code: cloud.ECONFLICT, Field: constraintField(pgErr.TableName, pgErr.ConstraintName, "_key"),
			Message: "The value is already taken."}
	case "23503":
		return &cloud.Error{Code: cloud.EINVALID, Field: constraintField(pgErr.TableName, pgErr.ConstraintName, "_fkey"),
			Message: "The referenced entity does not exist."}
	case "23514":
		return &cloud.Error{Code: cloud.EINVALID, Field: constraintField(pgErr.TableName, pgErr.ConstraintName, "_check"),
			Message: "The value is not allowed."}
	case "22003", "22P02", "22007", "22008":
		return &cloud.Error{Code: cloud.EINVALID, Message: "A value is out of range."}
	}
	return err
}

// constraintField derives a field name from PostgreSQL's default constraint
// names, e.g. members_tenant_id_operator_id_fkey → operator_id.
func constraintField(table, constraint, suffix string) string {
	f := strings.TrimSuffix(strings.TrimPrefix(constraint, table+"_"), suffix)
	f = strings.TrimPrefix(f, "tenant_id_")
	if f == "" || f == "tenant_id" {
		return ""
	}
	return f
}

// notFound maps pgx.ErrNoRows to ENOTFOUND for kind.
func notFound(err error, kind string) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return cloud.NotFound(kind)
	}
	return err
}

// lockVersioned reads row id of table FOR UPDATE and checks that the caller
// edits the version it read: the first step of every optimistic update.
// kind names the entity in errors ("Credential").
func lockVersioned[T cloud.Versioned](ctx context.Context, tx *Tx, table, cols string, id int64, kind string, version int,
	scan func(pgx.Row) (T, error)) (T, error) {
	v, err := scan(tx.QueryRow(ctx, `SELECT `+cols+` FROM `+table+` WHERE tenant_id = $1 AND id = $2 FOR UPDATE`, tx.tenant(), id))
	if err != nil {
		return v, notFound(err, kind)
	}
	return v, checkVersion(strings.ToLower(kind), v.RowVersion(), version)
}

// checkVersion returns EPRECONDITION when the caller's version is stale.
func checkVersion(kind string, stored, given int) error {
	if stored != given {
		return &cloud.Error{Code: cloud.EPRECONDITION, Field: "version",
			Message: fmt.Sprintf("The %s was changed by someone else (version %d, you have %d): reload it.", kind, stored, given)}
	}
	return nil
}

// dateArg turns a Date into a query argument (nil when unset).
func dateArg(d cloud.Date) any {
	if d.IsZero() {
		return nil
	}
	return d.Time()
}

// dateOf turns a scanned nullable date into a Date.
func dateOf(t *time.Time) cloud.Date {
	if t == nil {
		return cloud.Date{}
	}
	return cloud.DateOf(*t)
}

func limitOf(n, def, max int) int {
	if n <= 0 {
		return def
	}
	return min(n, max)
}

// MigrationFS returns the embedded migrations, for tools and tests.
func MigrationFS() fs.FS {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		panic(err) // the embedded directory exists at compile time
	}
	return sub
}
