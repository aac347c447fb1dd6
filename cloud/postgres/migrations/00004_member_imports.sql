-- +goose Up
-- CSV imports of members as jobs. A worker imports a job's rows in batches,
-- each batch in one transaction with the job's progress (processed), so an
-- interrupted job resumes where it stopped. A worker holds a job by a lease
-- (lease_owner until lease_until) that it renews with every batch; a job
-- whose lease expired (its worker died) is taken over.
CREATE TABLE member_imports (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id   bigint NOT NULL REFERENCES tenants (id),
    created_by  bigint NOT NULL,
    status      text NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed')),
    file        bytea,                      -- the uploaded CSV; dropped when the job ends
    total_rows  int NOT NULL CHECK (total_rows >= 0),
    processed   int NOT NULL DEFAULT 0,
    imported    int NOT NULL DEFAULT 0,
    error_count int NOT NULL DEFAULT 0,
    attempts    int NOT NULL DEFAULT 0,     -- internal failures so far
    failure     text NOT NULL DEFAULT '',
    lease_owner text,
    lease_until timestamptz,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    started_at  timestamptz,
    finished_at timestamptz,
    UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, created_by) REFERENCES operators (tenant_id, id),
    CHECK (processed <= total_rows)
);
CREATE INDEX member_imports_tenant ON member_imports (tenant_id, id DESC);
CREATE INDEX member_imports_pending ON member_imports (id) WHERE status IN ('queued', 'running');

-- The refused rows of a job, in file order (seq is the row's index).
CREATE TABLE member_import_errors (
    tenant_id bigint NOT NULL,
    import_id bigint NOT NULL,
    seq       int NOT NULL,
    line      int NOT NULL,
    field     text NOT NULL DEFAULT '',
    reason    text NOT NULL,
    PRIMARY KEY (import_id, seq),
    FOREIGN KEY (tenant_id, import_id) REFERENCES member_imports (tenant_id, id)
);
CREATE INDEX member_import_errors_line ON member_import_errors (import_id, line);

-- +goose Down
DROP TABLE member_import_errors, member_imports;
