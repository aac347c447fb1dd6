-- +goose Up
-- Messaging: templates, members' app installations, communications (jobs)
-- and messages (the send history). 00006-00008 belong to other branches;
-- goose applies what is missing, in order, whatever the gaps.

-- Templates are archived, never deleted: communications name them.
CREATE TABLE message_templates (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id   bigint NOT NULL REFERENCES tenants (id),
    name        text NOT NULL,
    channel     text NOT NULL CHECK (channel IN ('email', 'sms', 'push')),
    subject     text NOT NULL DEFAULT '',
    text        text NOT NULL DEFAULT '',
    html        text NOT NULL DEFAULT '',
    title       text NOT NULL DEFAULT '',
    subtitle    text NOT NULL DEFAULT '',
    image_url   text NOT NULL DEFAULT '',
    link        text NOT NULL DEFAULT '',
    sms_text    text NOT NULL DEFAULT '',
    created_by  bigint NOT NULL,
    archived_at timestamptz,
    version     int NOT NULL DEFAULT 1,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, created_by) REFERENCES operators (tenant_id, id)
);
CREATE UNIQUE INDEX message_templates_name_key ON message_templates (tenant_id, lower(name)) WHERE archived_at IS NULL;

-- A member's app installations: an FCM registration token each. A member
-- without one has not got the app.
CREATE TABLE member_push_tokens (
    tenant_id  bigint NOT NULL REFERENCES tenants (id),
    member_id  bigint NOT NULL,
    token      text NOT NULL,
    platform   text NOT NULL CHECK (platform IN ('android', 'ios', 'web')),
    created_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, token),
    FOREIGN KEY (tenant_id, member_id) REFERENCES members (tenant_id, id)
);
CREATE INDEX member_push_tokens_member ON member_push_tokens (tenant_id, member_id, created_at DESC);

-- A communication is a job, run like member_imports: a worker holds it by a
-- lease and plans its members in batches (processed is the index in
-- member_ids), each batch in one transaction that stores the batch's
-- messages, pending, before any is sent. template is the template as it was
-- when the communication was created: editing it does not change a send in
-- progress. target_id is the saved search the members came from (targets
-- live in another migration; no foreign key here yet).
CREATE TABLE communications (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id   bigint NOT NULL REFERENCES tenants (id),
    kind        text NOT NULL CHECK (kind IN ('message', 'crm')),
    status      text NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed')),
    template_id bigint,
    template    jsonb,
    delivery    text NOT NULL DEFAULT '' CHECK (delivery IN ('', 'email', 'sms', 'push', 'push_or_sms')),
    purpose     text NOT NULL DEFAULT '',
    dedup_key   text NOT NULL,
    target_id   bigint,
    member_ids  bigint[] NOT NULL,
    total       int NOT NULL CHECK (total >= 0),
    processed   int NOT NULL DEFAULT 0,
    duplicates  int NOT NULL DEFAULT 0, -- members already messaged under dedup_key
    not_found   int NOT NULL DEFAULT 0, -- ids that are not the tenant's members
    actions     int NOT NULL DEFAULT 0, -- CRM actions created (kind crm)
    archived    int NOT NULL DEFAULT 0, -- archived members left out (kind crm)
    attempts    int NOT NULL DEFAULT 0,
    failure     text NOT NULL DEFAULT '',
    lease_owner text,
    lease_until timestamptz,
    created_by  bigint NOT NULL,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    started_at  timestamptz,
    finished_at timestamptz,
    UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, template_id) REFERENCES message_templates (tenant_id, id),
    FOREIGN KEY (tenant_id, created_by) REFERENCES operators (tenant_id, id),
    CHECK (processed <= total)
);
CREATE INDEX communications_tenant ON communications (tenant_id, id DESC);
CREATE INDEX communications_pending ON communications (id) WHERE status IN ('queued', 'running');

-- One row per member per dedup key: the message sent (pending → sent or
-- failed) or the skip, with its reason. The unique key is what makes a
-- member get at most one message per dedup key, whatever replica or job
-- plans it. idempotency_key is given to the gateway on every try.
CREATE TABLE messages (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id         bigint NOT NULL REFERENCES tenants (id),
    communication_id  bigint NOT NULL,
    member_id         bigint NOT NULL,
    dedup_key         text NOT NULL,
    channel           text NOT NULL CHECK (channel IN ('email', 'sms', 'push')),
    purpose           text NOT NULL,
    status            text NOT NULL CHECK (status IN ('pending', 'sent', 'failed', 'skipped')),
    skip_reason       text NOT NULL DEFAULT '',
    idempotency_key   text NOT NULL,
    recipient         text NOT NULL DEFAULT '',
    subject           text NOT NULL DEFAULT '',
    payload           jsonb,
    provider_id       text NOT NULL DEFAULT '',
    error             text NOT NULL DEFAULT '',
    attempts          int NOT NULL DEFAULT 0,
    unsubscribe_token text UNIQUE,
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    sent_at           timestamptz,
    UNIQUE (tenant_id, id),
    UNIQUE (tenant_id, dedup_key, member_id),
    FOREIGN KEY (tenant_id, communication_id) REFERENCES communications (tenant_id, id),
    FOREIGN KEY (tenant_id, member_id) REFERENCES members (tenant_id, id)
);
CREATE INDEX messages_member ON messages (tenant_id, member_id, id DESC);
CREATE INDEX messages_communication ON messages (tenant_id, communication_id, id DESC);
CREATE INDEX messages_pending ON messages (communication_id, id) WHERE status = 'pending';

-- +goose Down
DROP TABLE messages, communications, member_push_tokens, message_templates;
