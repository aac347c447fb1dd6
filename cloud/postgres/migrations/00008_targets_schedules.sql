-- +goose Up
-- Targets (saved member searches) and scheduled operations that send a
-- communication to a target or create CRM actions for it.

-- The last passage of a member, kept up to date by the event ingester: the
-- "not attending for N days" criterion reads it instead of scanning passages.
ALTER TABLE members ADD COLUMN IF NOT EXISTS last_visit_at timestamptz;

-- Indexes for the target criteria evaluated over a whole tenant.
CREATE INDEX members_registered ON members (tenant_id, created_at);
CREATE INDEX members_medical_cert ON members (tenant_id, medical_cert_expiry);
CREATE INDEX memberships_ends ON memberships (tenant_id, ends_on) WHERE NOT cancelled;
CREATE INDEX crm_actions_closed ON crm_actions (tenant_id, type_id, closed_at) WHERE NOT is_open;

CREATE TABLE targets (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id      bigint NOT NULL REFERENCES tenants (id),
    name           text NOT NULL,
    description    text NOT NULL DEFAULT '',
    criteria       jsonb NOT NULL,          -- []cloud.Criterion
    date_mode      text NOT NULL CHECK (date_mode IN ('none', 'fixed', 'rolling')),
    reference_date date NOT NULL,           -- the day the dates were chosen (rolling moves them from it)
    schedulable    boolean NOT NULL DEFAULT false,
    in_menu        boolean NOT NULL DEFAULT false,
    created_by     bigint,
    archived_at    timestamptz,
    version        int NOT NULL DEFAULT 1,
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL,
    UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, created_by) REFERENCES operators (tenant_id, id)
);
CREATE UNIQUE INDEX targets_name_key ON targets (tenant_id, lower(name)) WHERE archived_at IS NULL;

-- A scheduled operation: once or daily at send_time (wall clock in
-- timezone) from starts_on until ends_on, it sends a communication to its
-- target's members or creates a CRM action for each, acting as sender_id.
-- next_run_at is the next due run (NULL: none), kept by the store whenever
-- the operation changes or a run is enqueued.
CREATE TABLE schedules (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id      bigint NOT NULL REFERENCES tenants (id),
    name           text NOT NULL,
    active         boolean NOT NULL DEFAULT false,
    sender_id      bigint NOT NULL,
    recurrence     text NOT NULL CHECK (recurrence IN ('once', 'daily')),
    send_time      time NOT NULL,
    timezone       text NOT NULL,
    starts_on      date NOT NULL,
    ends_on        date,
    target_id      bigint NOT NULL,
    body_kind      text NOT NULL CHECK (body_kind IN ('communication', 'actions')),
    -- communication: the template lives in the communications schema, so no
    -- foreign key here; the communicator refuses an unknown one.
    template_id    bigint,
    channel        text NOT NULL DEFAULT '',
    purpose        text NOT NULL DEFAULT '',
    -- actions
    action_type_id bigint,
    action_text    text NOT NULL DEFAULT '',
    complete_days  int CHECK (complete_days BETWEEN 0 AND 365),
    recipe         text,                     -- the seeded recipe it came from
    next_run_at    timestamptz,
    version        int NOT NULL DEFAULT 1,
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL,
    UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, sender_id) REFERENCES operators (tenant_id, id),
    FOREIGN KEY (tenant_id, target_id) REFERENCES targets (tenant_id, id),
    FOREIGN KEY (tenant_id, action_type_id) REFERENCES action_types (tenant_id, id),
    CHECK (ends_on IS NULL OR ends_on >= starts_on),
    CHECK (body_kind <> 'actions' OR action_type_id IS NOT NULL)
);
CREATE UNIQUE INDEX schedules_recipe_key ON schedules (tenant_id, recipe) WHERE recipe IS NOT NULL;
CREATE INDEX schedules_due ON schedules (next_run_at) WHERE active;
CREATE INDEX schedules_target ON schedules (tenant_id, target_id);

-- Whether the tenant got the recipe schedules (seeded once, at creation or
-- lazily for tenants older than this migration).
ALTER TABLE tenants ADD COLUMN recipes_seeded boolean NOT NULL DEFAULT false;

-- One run of an operation on one day: at most one, whatever the replicas
-- or retries. body is a copy of what the operation was to do.
CREATE TABLE schedule_runs (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id   bigint NOT NULL REFERENCES tenants (id),
    schedule_id bigint NOT NULL,
    run_day     date NOT NULL,
    status      text NOT NULL CHECK (status IN ('running', 'done', 'failed', 'missed')),
    sender_id   bigint NOT NULL,
    target_id   bigint NOT NULL,
    body        jsonb NOT NULL,
    members     int NOT NULL DEFAULT 0,
    created     int NOT NULL DEFAULT 0,     -- CRM actions created
    sent        int NOT NULL DEFAULT 0,     -- messages sent
    skipped     int NOT NULL DEFAULT 0,
    failed      int NOT NULL DEFAULT 0,
    error       text NOT NULL DEFAULT '',
    attempts    int NOT NULL DEFAULT 0,
    started_at  timestamptz NOT NULL,
    finished_at timestamptz,
    UNIQUE (tenant_id, id),
    UNIQUE (schedule_id, run_day),
    FOREIGN KEY (tenant_id, schedule_id) REFERENCES schedules (tenant_id, id)
);
CREATE INDEX schedule_runs_schedule ON schedule_runs (tenant_id, schedule_id, run_day DESC);

-- What a run did for each member. The primary key is the promise "at most
-- one action per member per operation per day": the item is inserted with
-- ON CONFLICT DO NOTHING in the transaction that creates the action.
CREATE TABLE schedule_run_items (
    tenant_id   bigint NOT NULL,
    schedule_id bigint NOT NULL,
    run_day     date NOT NULL,
    member_id   bigint NOT NULL,
    status      text NOT NULL CHECK (status IN ('created', 'skipped')),
    reason      text NOT NULL DEFAULT '',
    action_id   bigint,
    at          timestamptz NOT NULL,
    PRIMARY KEY (schedule_id, run_day, member_id),
    FOREIGN KEY (tenant_id, schedule_id) REFERENCES schedules (tenant_id, id),
    FOREIGN KEY (tenant_id, member_id) REFERENCES members (tenant_id, id),
    FOREIGN KEY (tenant_id, action_id) REFERENCES crm_actions (tenant_id, id)
);

-- +goose Down
DROP TABLE schedule_run_items, schedule_runs, schedules, targets;
ALTER TABLE tenants DROP COLUMN recipes_seeded;
DROP INDEX crm_actions_closed, memberships_ends, members_medical_cert, members_registered;
-- members.last_visit_at stays: the passages migration may own it too, and
-- ADD COLUMN IF NOT EXISTS makes a second Up harmless.
