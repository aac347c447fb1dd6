package cloud

import (
	"context"
	"time"
)

// ImportSyncRows is the largest member CSV imported while the request
// waits: bigger files (and any file when the client asks) become a
// background job the client follows with ImportService.FindImportByID.
const ImportSyncRows = 500

// ImportErrorsShown is how many row errors a job carries when read; the
// whole report is paged with ImportService.FindImportErrors.
const ImportErrorsShown = 100

// ImportStatus is where an import job stands.
type ImportStatus string

// Import job statuses: queued → running → done, or failed when the job
// cannot go on (an internal error that persisted over ImportMaxAttempts
// attempts). Bad rows do not fail a job: they are reported.
const (
	ImportQueued  ImportStatus = "queued"
	ImportRunning ImportStatus = "running"
	ImportDone    ImportStatus = "done"
	ImportFailed  ImportStatus = "failed"
)

// ImportMaxAttempts is how many times a job is tried after internal errors
// before it is failed.
const ImportMaxAttempts = 3

// ImportJob is a CSV import of members and its progress. Rows are imported
// in order and in batches, each batch in one transaction together with the
// job's progress, so a job that is interrupted (shutdown, crash) resumes
// where it stopped and imports no row twice. The uploaded file is deleted
// when the job ends.
type ImportJob struct {
	ID       int64        `json:"id"`
	TenantID int64        `json:"-"`
	Status   ImportStatus `json:"status"`
	// Rows is the number of data rows in the file; Processed how many have
	// been handled, Imported how many became members, ErrorCount how many
	// were refused.
	Rows       int `json:"rows"`
	Processed  int `json:"processed"`
	Imported   int `json:"imported"`
	ErrorCount int `json:"error_count"`
	// Errors are the first ImportErrorsShown refused rows, by row; lists of
	// jobs leave them out.
	Errors []MemberImportError `json:"errors,omitzero"`
	// Failure says why a failed job stopped.
	Failure    string     `json:"failure,omitempty"`
	CreatedBy  int64      `json:"created_by"`
	CreatedAt  time.Time  `json:"created_at"`
	StartedAt  *time.Time `json:"started_at"`
	FinishedAt *time.Time `json:"finished_at"`
}

// Finished reports whether the job has ended, well or not.
func (j *ImportJob) Finished() bool { return j.Status == ImportDone || j.Status == ImportFailed }

// ImportService imports members from CSV files as jobs owned by the tenant.
// Any operator may import; the rows are created as the operator who
// uploaded the file.
type ImportService interface {
	// ImportMembers checks a member CSV file (ParseMembersCSV: a bad header
	// or too many rows is EINVALID) and stores it as a job. A file of at most
	// ImportSyncRows rows is imported before ImportMembers returns, unless
	// background is true; otherwise the job is queued for the background
	// worker and returned as is.
	ImportMembers(ctx context.Context, file []byte, background bool) (*ImportJob, error)
	// FindImportByID returns ENOTFOUND if the job is not the tenant's.
	FindImportByID(ctx context.Context, id int64) (*ImportJob, error)
	// FindImports lists the tenant's jobs, newest first; cursor is the last
	// ID of the previous page.
	FindImports(ctx context.Context, cursor int64, limit int) ([]*ImportJob, error)
	// FindImportErrors pages through a job's refused rows by row number,
	// after row afterRow.
	FindImportErrors(ctx context.Context, id int64, afterRow int, limit int) ([]MemberImportError, error)
}
