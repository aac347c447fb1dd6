package postgres

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"

	"varco.dev/cloud"
)

var _ cloud.ImportService = (*ImportService)(nil)

// ImportService implements cloud.ImportService with jobs in PostgreSQL
// (table member_imports), and is also the background worker that runs the
// queued ones: Start it once per process and Stop it at shutdown.
//
// A job's rows are imported in batches of BatchRows, each batch in one
// transaction that also advances the job's progress, while the importer
// holds the job's lease (renewed with every batch). So no row is imported
// twice and none is lost: a job interrupted by Stop or a cancelled request
// releases its lease and is resumed at once by any worker; a job whose
// process died is taken over when its lease expires. Several replicas may
// run workers on the same database.
type ImportService struct {
	db *DB

	// The settings and hooks below are read by the worker: set them before
	// Start.

	// BatchRows is how many rows one transaction imports (default 200).
	BatchRows int
	// Lease is how long a job stays with its importer after a batch, and
	// how long a job waits after an internal error (default 1 minute).
	Lease time.Duration
	// PollInterval is how often the worker looks for jobs nobody told it
	// about: queued by another replica, released, or left by a dead process
	// (default 10 seconds).
	PollInterval time.Duration
	// OnJobEnd, when set, is called by the background worker after a job it
	// ran ended (done or failed); tests wait on it instead of sleeping.
	OnJobEnd func(job *cloud.ImportJob)
	// OnBatch, when set, is called after each committed batch with the
	// number of rows the job has processed; tests use it to interrupt a job.
	OnBatch func(id int64, processed int)

	owner string // this instance's name in lease_owner
	worker
}

// NewImportService returns an ImportService on db; its worker is not started.
func NewImportService(db *DB) *ImportService {
	b := make([]byte, 8)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return &ImportService{db: db, owner: "importer-" + hex.EncodeToString(b), worker: newWorker()}
}

func (s *ImportService) batchRows() int              { return cmp.Or(s.BatchRows, 200) }
func (s *ImportService) lease() time.Duration        { return cmp.Or(s.Lease, time.Minute) }
func (s *ImportService) pollInterval() time.Duration { return cmp.Or(s.PollInterval, 10*time.Second) }

// Start starts the background worker; it runs until Stop or until ctx ends.
// Starting a started service does nothing.
func (s *ImportService) Start(ctx context.Context) error {
	s.start(ctx, s.pollInterval(), s.runPending)
	return nil
}

// Stop stops the worker and waits for it: the batch in progress is rolled
// back and the job's lease released, so the next worker resumes it. It is
// safe to call Stop on a service that was not started.
func (s *ImportService) Stop() { s.stop() }

// runPending runs the jobs that can be claimed, one after the other.
func (s *ImportService) runPending(ctx context.Context) {
	for ctx.Err() == nil {
		c, err := s.claim(ctx)
		if err != nil {
			if ctx.Err() == nil {
				s.db.Logger.ErrorContext(ctx, "import: claim a job", slog.Any("err", err))
			}
			return
		}
		if c == nil {
			return
		}
		ended := s.runClaimed(ctx, c)
		if ended && s.OnJobEnd != nil {
			if job, err := s.findJob(context.WithoutCancel(ctx), c.tenantID, c.id); err == nil {
				s.OnJobEnd(job)
			}
		}
	}
}

type claimed struct {
	id, tenantID, createdBy int64
	file                    []byte
	total                   int
}

// claim takes the oldest job that is queued, or running without a live
// lease, and leases it to this instance.
func (s *ImportService) claim(ctx context.Context) (*claimed, error) {
	now := s.db.now()
	var c claimed
	err := s.db.Pool.QueryRow(ctx, `UPDATE member_imports SET status = 'running', lease_owner = $1, lease_until = $3,
		started_at = coalesce(started_at, $2), updated_at = $2
		WHERE id = (SELECT id FROM member_imports WHERE status IN ('queued', 'running') AND (lease_until IS NULL OR lease_until <= $2)
			ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
		RETURNING id, tenant_id, created_by, file, total_rows`, s.owner, now, now.Add(s.lease())).
		Scan(&c.id, &c.tenantID, &c.createdBy, &c.file, &c.total)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	return &c, nil
}

// runClaimed parses a claimed job's file and imports its remaining rows as
// the operator who uploaded it. It reports whether the job ended.
func (s *ImportService) runClaimed(ctx context.Context, c *claimed) bool {
	log := s.db.Logger.With(slog.Int64("tenant_id", c.tenantID), slog.Int64("import_id", c.id))
	actor, err := scanOperator(s.db.Pool.QueryRow(ctx, `SELECT `+operatorCols+` FROM operators WHERE tenant_id = $1 AND id = $2`, c.tenantID, c.createdBy))
	if err != nil {
		log.ErrorContext(ctx, "import: load the job's operator", slog.Any("err", err))
		return s.failed(ctx, actor, c.tenantID, c.id, err) // actor may be nil: failed handles it
	}
	rows, err := cloud.ParseMembersCSV(bytes.NewReader(c.file))
	if err == nil && len(rows) != c.total {
		err = fmt.Errorf("the file has %d rows, the job %d", len(rows), c.total)
	}
	if err != nil {
		log.ErrorContext(ctx, "import: parse the stored file", slog.Any("err", err))
		return s.end(ctx, actor, c.id, "The stored file cannot be read again: upload it anew.")
	}
	log.InfoContext(ctx, "import: running", slog.Int("rows", c.total))
	ended, err := s.run(ctx, actor, c.id, rows)
	switch {
	case ctx.Err() != nil:
		return false // stopping: run released the job
	case err != nil:
		return s.failed(ctx, actor, c.tenantID, c.id, err)
	}
	return ended
}

// run imports the job's remaining rows, batch after batch, while this
// instance holds the job. It returns whether the job ended; on a
// cancelled ctx it releases the job for another importer.
func (s *ImportService) run(ctx context.Context, actor *cloud.Operator, id int64, rows []cloud.MemberImportRow) (bool, error) {
	for {
		ended, held, processed, err := s.batch(ctx, actor, id, rows)
		if err == nil && held && s.OnBatch != nil {
			s.OnBatch(id, processed)
		}
		switch {
		case ctx.Err() != nil:
			s.release(actor.TenantID, id)
			return false, ctx.Err()
		case err != nil:
			return false, err
		case ended:
			return true, nil
		case !held:
			return false, nil // another importer has it now
		}
	}
}

// batch imports the next BatchRows rows in one transaction together with
// the job's progress. held is false when the job is no longer this
// instance's (its lease expired and another took it, or it ended).
func (s *ImportService) batch(ctx context.Context, actor *cloud.Operator, id int64, rows []cloud.MemberImportRow) (ended, held bool, done int, err error) {
	err = s.db.inTxAs(ctx, actor, func(tx *Tx) error {
		var status string
		var processed, total int
		var owner *string
		if err := tx.QueryRow(ctx, `SELECT status, processed, total_rows, lease_owner FROM member_imports
			WHERE tenant_id = $1 AND id = $2 FOR UPDATE`, tx.tenant(), id).Scan(&status, &processed, &total, &owner); err != nil {
			return fmt.Errorf("lock import %d: %w", id, err)
		}
		if status != string(cloud.ImportRunning) || owner == nil || *owner != s.owner {
			return nil
		}
		if total != len(rows) {
			return fmt.Errorf("import %d: %d rows stored, %d parsed", id, total, len(rows))
		}
		held = true
		end := min(processed+s.batchRows(), total)
		done = end
		var imported int
		var seqs, lines []int32
		var fields, reasons []string
		for i := processed; i < end; i++ {
			err := importRow(ctx, tx, rows[i])
			switch cloud.ErrorCode(err) {
			case "":
				imported++
			case cloud.EINVALID, cloud.ECONFLICT:
				seqs, lines = append(seqs, int32(i)), append(lines, int32(rows[i].Line))
				fields, reasons = append(fields, cloud.ErrorField(err)), append(reasons, cloud.ErrorMessage(err))
			default:
				return fmt.Errorf("import %d line %d: %w", id, rows[i].Line, err)
			}
		}
		if len(seqs) > 0 {
			if _, err := tx.Exec(ctx, `INSERT INTO member_import_errors (tenant_id, import_id, seq, line, field, reason)
				SELECT $1, $2, * FROM unnest($3::int[], $4::int[], $5::text[], $6::text[])`,
				tx.tenant(), id, seqs, lines, fields, reasons); err != nil {
				return fmt.Errorf("import %d errors: %w", id, err)
			}
		}
		ended = end == total
		var sum struct{ imported, errors int }
		if err := tx.QueryRow(ctx, `UPDATE member_imports SET processed = $3, imported = imported + $4, error_count = error_count + $5,
			updated_at = $6::timestamptz, lease_until = $7,
			status = CASE WHEN $8::boolean THEN 'done' ELSE status END, finished_at = CASE WHEN $8 THEN $6 END,
			file = CASE WHEN $8 THEN NULL ELSE file END, lease_owner = CASE WHEN $8 THEN NULL ELSE lease_owner END
			WHERE tenant_id = $1 AND id = $2 RETURNING imported, error_count`,
			tx.tenant(), id, end, imported, len(seqs), tx.now, tx.now.Add(s.lease()), ended).Scan(&sum.imported, &sum.errors); err != nil {
			return fmt.Errorf("import %d progress: %w", id, err)
		}
		if ended {
			return tx.audit(ctx, "member.import", "member_import", id, map[string]any{"rows": total, "imported": sum.imported, "errors": sum.errors})
		}
		return nil
	})
	if err != nil {
		return false, false, 0, err
	}
	return ended, held, done, nil
}

// release gives a job this instance holds back to the queue, to be resumed
// at once by any importer.
func (s *ImportService) release(tenantID, id int64) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := s.db.Pool.Exec(ctx, `UPDATE member_imports SET lease_owner = NULL, lease_until = NULL
		WHERE tenant_id = $1 AND id = $2 AND lease_owner = $3 AND status = 'running'`, tenantID, id, s.owner); err != nil {
		s.db.Logger.Error("import: release a job", slog.Int64("import_id", id), slog.Any("err", err))
		return
	}
	s.notify()
}

// failed counts an internal error against the job: it is retried after
// Lease, and failed after cloud.ImportMaxAttempts attempts. It reports
// whether the job ended.
func (s *ImportService) failed(ctx context.Context, actor *cloud.Operator, tenantID, id int64, cause error) bool {
	ctx = context.WithoutCancel(ctx)
	s.db.Logger.ErrorContext(ctx, "import: batch failed", slog.Int64("import_id", id), slog.Any("err", cause))
	now := s.db.now()
	var attempts, processed int
	if err := s.db.Pool.QueryRow(ctx, `UPDATE member_imports SET attempts = attempts + 1, lease_owner = NULL, lease_until = $3, updated_at = $4
		WHERE tenant_id = $1 AND id = $2 AND status = 'running' RETURNING attempts, processed`,
		tenantID, id, now.Add(s.lease()), now).Scan(&attempts, &processed); err != nil {
		s.db.Logger.ErrorContext(ctx, "import: record a failed attempt", slog.Int64("import_id", id), slog.Any("err", err))
		return false
	}
	if attempts < cloud.ImportMaxAttempts || actor == nil {
		return false
	}
	return s.end(ctx, actor, id, fmt.Sprintf("The import stopped after %d internal errors; the first %d rows were handled.", attempts, processed))
}

// end fails a job for good.
func (s *ImportService) end(ctx context.Context, actor *cloud.Operator, id int64, failure string) bool {
	ctx = context.WithoutCancel(ctx)
	err := s.db.inTxAs(ctx, actor, func(tx *Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE member_imports SET status = 'failed', failure = $3, file = NULL, lease_owner = NULL,
			lease_until = NULL, finished_at = $4, updated_at = $4 WHERE tenant_id = $1 AND id = $2`, tx.tenant(), id, failure, tx.now); err != nil {
			return fmt.Errorf("fail import %d: %w", id, err)
		}
		return tx.audit(ctx, "member.import.failed", "member_import", id, map[string]any{"failure": failure})
	})
	if err != nil {
		s.db.Logger.ErrorContext(ctx, "import: fail a job", slog.Int64("import_id", id), slog.Any("err", err))
		return false
	}
	return true
}

// ImportMembers stores a member CSV file as a job and, when it is small and
// background is false, imports it before returning.
func (s *ImportService) ImportMembers(ctx context.Context, file []byte, background bool) (*cloud.ImportJob, error) {
	op, err := cloud.Actor(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := cloud.ParseMembersCSV(bytes.NewReader(file))
	if err != nil {
		return nil, err
	}
	inline := !background && len(rows) <= cloud.ImportSyncRows
	var id int64
	err = s.db.inTx(ctx, func(tx *Tx) error {
		status, owner, until, started, finished, stored := cloud.ImportQueued, (*string)(nil), (*time.Time)(nil), (*time.Time)(nil), (*time.Time)(nil), file
		switch {
		case len(rows) == 0:
			status, started, finished, stored = cloud.ImportDone, &tx.now, &tx.now, nil
		case inline:
			u := tx.now.Add(s.lease())
			status, owner, until, started = cloud.ImportRunning, &s.owner, &u, &tx.now
		}
		if err := tx.QueryRow(ctx, `INSERT INTO member_imports (tenant_id, created_by, status, file, total_rows, lease_owner, lease_until,
			created_at, updated_at, started_at, finished_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9, $10) RETURNING id`,
			tx.tenant(), tx.op.ID, status, stored, len(rows), owner, until, tx.now, started, finished).Scan(&id); err != nil {
			return mapErr(fmt.Errorf("insert import: %w", err))
		}
		return tx.audit(ctx, "member_import.create", "member_import", id, map[string]any{"rows": len(rows), "bytes": len(file)})
	})
	if err != nil {
		return nil, err
	}
	switch {
	case len(rows) == 0:
	case inline:
		if _, err := s.run(ctx, op, id, rows); err != nil {
			if ctx.Err() != nil {
				return nil, err
			}
			s.failed(ctx, op, op.TenantID, id, err)
			return nil, err
		}
	default:
		s.notify()
	}
	return s.findJob(ctx, op.TenantID, id)
}

const importCols = `id, tenant_id, status, total_rows, processed, imported, error_count, failure, created_by, created_at, started_at, finished_at`

func scanImport(row pgx.Row) (*cloud.ImportJob, error) {
	var j cloud.ImportJob
	err := row.Scan(&j.ID, &j.TenantID, &j.Status, &j.Rows, &j.Processed, &j.Imported, &j.ErrorCount, &j.Failure, &j.CreatedBy,
		&j.CreatedAt, &j.StartedAt, &j.FinishedAt)
	return &j, err
}

// findJob returns a job with its first cloud.ImportErrorsShown errors.
func (s *ImportService) findJob(ctx context.Context, tenantID, id int64) (*cloud.ImportJob, error) {
	j, err := scanImport(s.db.Pool.QueryRow(ctx, `SELECT `+importCols+` FROM member_imports WHERE tenant_id = $1 AND id = $2`, tenantID, id))
	if err != nil {
		return nil, notFound(err, "Import")
	}
	if j.Errors, err = s.errors(ctx, tenantID, id, 0, cloud.ImportErrorsShown); err != nil {
		return nil, err
	}
	return j, nil
}

func (s *ImportService) errors(ctx context.Context, tenantID, id int64, afterRow, limit int) ([]cloud.MemberImportError, error) {
	rows, err := s.db.Pool.Query(ctx, `SELECT line, field, reason FROM member_import_errors
		WHERE tenant_id = $1 AND import_id = $2 AND line > $3 ORDER BY seq LIMIT $4`, tenantID, id, afterRow, limit)
	if err != nil {
		return nil, fmt.Errorf("import errors: %w", err)
	}
	errs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (cloud.MemberImportError, error) {
		var e cloud.MemberImportError
		err := r.Scan(&e.Row, &e.Field, &e.Reason)
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("import errors: %w", err)
	}
	if errs == nil {
		errs = []cloud.MemberImportError{}
	}
	return errs, nil
}

// FindImportByID returns one of the tenant's import jobs.
func (s *ImportService) FindImportByID(ctx context.Context, id int64) (*cloud.ImportJob, error) {
	op, err := cloud.Actor(ctx)
	if err != nil {
		return nil, err
	}
	return s.findJob(ctx, op.TenantID, id)
}

// FindImports lists the tenant's import jobs, newest first.
func (s *ImportService) FindImports(ctx context.Context, cursor int64, limit int) ([]*cloud.ImportJob, error) {
	op, err := cloud.Actor(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := s.db.Pool.Query(ctx, `SELECT `+importCols+` FROM member_imports WHERE tenant_id = $1 AND ($2 = 0 OR id < $2)
		ORDER BY id DESC LIMIT $3`, op.TenantID, cursor, limitOf(limit, 50, 500))
	if err != nil {
		return nil, fmt.Errorf("find imports: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (*cloud.ImportJob, error) { return scanImport(r) })
}

// FindImportErrors pages through a job's refused rows.
func (s *ImportService) FindImportErrors(ctx context.Context, id int64, afterRow, limit int) ([]cloud.MemberImportError, error) {
	op, err := cloud.Actor(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.db.Pool.QueryRow(ctx, `SELECT id FROM member_imports WHERE tenant_id = $1 AND id = $2`, op.TenantID, id).Scan(&id); err != nil {
		return nil, notFound(err, "Import")
	}
	return s.errors(ctx, op.TenantID, id, afterRow, limitOf(limit, 100, 1000))
}
