-- +goose Up
-- Every table carries tenant_id; references between tenant data are
-- composite (tenant_id, id) foreign keys, so a row can never point at
-- another tenant's row, whatever the application does.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE TABLE tenants (
    id                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name                 text NOT NULL,
    slug                 text NOT NULL UNIQUE,
    membership_warn_days int NOT NULL DEFAULT 7,
    medical_warn_days    int NOT NULL DEFAULT 15,
    credential_key       bytea NOT NULL CHECK (length(credential_key) = 32),
    created_at           timestamptz NOT NULL
);

CREATE TABLE sites (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id  bigint NOT NULL REFERENCES tenants (id),
    name       text NOT NULL,
    timezone   text NOT NULL,
    version    int NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    UNIQUE (tenant_id, id)
);

CREATE TABLE gates (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id   bigint NOT NULL REFERENCES tenants (id),
    site_id     bigint NOT NULL,
    name        text NOT NULL,
    device_type text NOT NULL,
    version     int NOT NULL DEFAULT 1,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, site_id) REFERENCES sites (tenant_id, id)
);

CREATE TABLE operators (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id     bigint NOT NULL REFERENCES tenants (id),
    email         text NOT NULL,
    name          text NOT NULL,
    role          text NOT NULL CHECK (role IN ('admin', 'crm_manager', 'operator')),
    password_hash text NOT NULL,
    active        boolean NOT NULL DEFAULT true,
    version       int NOT NULL DEFAULT 1,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    UNIQUE (tenant_id, id)
);
CREATE UNIQUE INDEX operators_email_key ON operators (lower(email));

CREATE TABLE api_tokens (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id   bigint NOT NULL,
    operator_id bigint NOT NULL,
    name        text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('session', 'api')),
    token_hash  bytea NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz,
    revoked_at  timestamptz,
    FOREIGN KEY (tenant_id, operator_id) REFERENCES operators (tenant_id, id)
);

CREATE TABLE audit_log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id   bigint NOT NULL REFERENCES tenants (id),
    operator_id bigint,
    at          timestamptz NOT NULL,
    action      text NOT NULL,
    entity      text NOT NULL,
    entity_id   bigint NOT NULL,
    data        jsonb
);
CREATE INDEX audit_log_tenant ON audit_log (tenant_id, id DESC);
CREATE INDEX audit_log_entity ON audit_log (tenant_id, entity, entity_id);

CREATE TABLE commercial_statuses (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id bigint NOT NULL REFERENCES tenants (id),
    name      text NOT NULL,
    active    boolean NOT NULL DEFAULT true,
    version   int NOT NULL DEFAULT 1,
    UNIQUE (tenant_id, id),
    UNIQUE (tenant_id, name)
);

CREATE TABLE outcomes (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id  bigint NOT NULL REFERENCES tenants (id),
    name       text NOT NULL,
    grp        text NOT NULL CHECK (grp IN ('to_start', 'in_progress', 'closed_positive', 'closed_negative')),
    is_default boolean NOT NULL DEFAULT false,
    active     boolean NOT NULL DEFAULT true,
    version    int NOT NULL DEFAULT 1,
    UNIQUE (tenant_id, id),
    UNIQUE (tenant_id, name)
);

CREATE TABLE action_types (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id       bigint NOT NULL REFERENCES tenants (id),
    name            text NOT NULL,
    colour          text NOT NULL,
    active          boolean NOT NULL DEFAULT true,
    is_default      boolean NOT NULL DEFAULT false,
    description     text NOT NULL DEFAULT '',
    access_action   text NOT NULL CHECK (access_action IN ('none', 'message', 'message_block')),
    device_types    text[] NOT NULL DEFAULT '{}',
    display_message text NOT NULL DEFAULT '',
    version         int NOT NULL DEFAULT 1,
    UNIQUE (tenant_id, id),
    UNIQUE (tenant_id, name)
);

CREATE TABLE members (
    id                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id            bigint NOT NULL REFERENCES tenants (id),
    kind                 text NOT NULL CHECK (kind IN ('person', 'company')),
    first_name           text NOT NULL DEFAULT '',
    last_name            text NOT NULL DEFAULT '',
    birth_date           date,
    tax_code             text NOT NULL DEFAULT '',
    company_name         text NOT NULL DEFAULT '',
    vat_number           text NOT NULL DEFAULT '',
    legal_rep_id         bigint,
    email                text NOT NULL DEFAULT '',
    mobile               text NOT NULL DEFAULT '',
    phone                text NOT NULL DEFAULT '',
    language             text NOT NULL DEFAULT 'it',
    consents             jsonb NOT NULL DEFAULT '[]',
    tags                 text[] NOT NULL DEFAULT '{}',
    commercial_status_id bigint,
    operator_id          bigint,
    medical_cert_expiry  date,
    suspended            boolean NOT NULL DEFAULT false,
    archived_at          timestamptz,
    version              int NOT NULL DEFAULT 1,
    created_at           timestamptz NOT NULL,
    updated_at           timestamptz NOT NULL,
    search               text GENERATED ALWAYS AS (lower(first_name || ' ' || last_name || ' ' || company_name || ' ' || email || ' ' || mobile || ' ' || tax_code || ' ' || vat_number)) STORED,
    UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, legal_rep_id) REFERENCES members (tenant_id, id),
    FOREIGN KEY (tenant_id, commercial_status_id) REFERENCES commercial_statuses (tenant_id, id),
    FOREIGN KEY (tenant_id, operator_id) REFERENCES operators (tenant_id, id)
);
CREATE INDEX members_search ON members USING gin (search gin_trgm_ops);
CREATE INDEX members_tags ON members USING gin (tags);
CREATE INDEX members_birthday ON members (tenant_id, extract(month FROM birth_date), extract(day FROM birth_date));

CREATE TABLE credentials (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id   bigint NOT NULL REFERENCES tenants (id),
    member_id   bigint NOT NULL,
    key         text NOT NULL,
    kind        text NOT NULL,
    label       text NOT NULL DEFAULT '',
    valid_from  date,
    valid_until date,
    disabled    boolean NOT NULL DEFAULT false,
    version     int NOT NULL DEFAULT 1,
    created_at  timestamptz NOT NULL,
    UNIQUE (tenant_id, id),
    UNIQUE (tenant_id, key),
    FOREIGN KEY (tenant_id, member_id) REFERENCES members (tenant_id, id)
);
CREATE INDEX credentials_member ON credentials (tenant_id, member_id);

CREATE TABLE memberships (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id  bigint NOT NULL REFERENCES tenants (id),
    member_id  bigint NOT NULL,
    name       text NOT NULL,
    starts_on  date NOT NULL,
    ends_on    date NOT NULL CHECK (ends_on >= starts_on),
    site_ids   bigint[] NOT NULL DEFAULT '{}',
    cancelled  boolean NOT NULL DEFAULT false,
    version    int NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL,
    UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, member_id) REFERENCES members (tenant_id, id)
);
CREATE INDEX memberships_member ON memberships (tenant_id, member_id);

CREATE TABLE crm_relations (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id        bigint NOT NULL REFERENCES tenants (id),
    action_type_id   bigint NOT NULL,
    outcome_id       bigint NOT NULL,
    allowed          boolean NOT NULL DEFAULT true,
    new_status_id    bigint,
    next_type_id     bigint,
    next_recipient   text NOT NULL DEFAULT 'myself',
    next_operator_id bigint,
    next_after_days  int NOT NULL DEFAULT 0,
    next_after_hours int NOT NULL DEFAULT 0,
    points           int NOT NULL DEFAULT 0,
    conclusive       boolean NOT NULL DEFAULT false,
    UNIQUE (tenant_id, action_type_id, outcome_id),
    FOREIGN KEY (tenant_id, action_type_id) REFERENCES action_types (tenant_id, id),
    FOREIGN KEY (tenant_id, outcome_id) REFERENCES outcomes (tenant_id, id),
    FOREIGN KEY (tenant_id, new_status_id) REFERENCES commercial_statuses (tenant_id, id),
    FOREIGN KEY (tenant_id, next_type_id) REFERENCES action_types (tenant_id, id),
    FOREIGN KEY (tenant_id, next_operator_id) REFERENCES operators (tenant_id, id)
);

CREATE TABLE crm_actions (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id   bigint NOT NULL REFERENCES tenants (id),
    member_id   bigint NOT NULL,
    type_id     bigint NOT NULL,
    outcome_id  bigint NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('planned', 'note')),
    description text NOT NULL DEFAULT '',
    tags        text[] NOT NULL DEFAULT '{}',
    planned_at  timestamptz,
    complete_by date,
    purpose     text NOT NULL DEFAULT '',
    private     boolean NOT NULL DEFAULT false,
    operator_id bigint,
    created_by  bigint,
    parent_id   bigint,
    is_open     boolean NOT NULL,
    closed_at   timestamptz,
    closed_by   bigint,
    version     int NOT NULL DEFAULT 1,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, member_id) REFERENCES members (tenant_id, id),
    FOREIGN KEY (tenant_id, type_id) REFERENCES action_types (tenant_id, id),
    FOREIGN KEY (tenant_id, outcome_id) REFERENCES outcomes (tenant_id, id),
    FOREIGN KEY (tenant_id, operator_id) REFERENCES operators (tenant_id, id),
    FOREIGN KEY (tenant_id, created_by) REFERENCES operators (tenant_id, id),
    FOREIGN KEY (tenant_id, closed_by) REFERENCES operators (tenant_id, id),
    FOREIGN KEY (tenant_id, parent_id) REFERENCES crm_actions (tenant_id, id)
);
CREATE INDEX crm_actions_member ON crm_actions (tenant_id, member_id, id DESC);
CREATE INDEX crm_actions_open ON crm_actions (tenant_id, type_id, member_id) WHERE is_open;
CREATE INDEX crm_actions_agenda ON crm_actions (tenant_id, operator_id, planned_at) WHERE is_open;

-- CRM actions are never deleted: cancelling is an outcome.
-- +goose StatementBegin
CREATE FUNCTION crm_actions_no_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'crm_actions are never deleted (action %)', OLD.id;
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER crm_actions_no_delete BEFORE DELETE ON crm_actions
    FOR EACH ROW EXECUTE FUNCTION crm_actions_no_delete();

CREATE TABLE operator_points (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id   bigint NOT NULL REFERENCES tenants (id),
    operator_id bigint NOT NULL,
    action_id   bigint NOT NULL,
    points      int NOT NULL,
    at          timestamptz NOT NULL,
    FOREIGN KEY (tenant_id, operator_id) REFERENCES operators (tenant_id, id),
    FOREIGN KEY (tenant_id, action_id) REFERENCES crm_actions (tenant_id, id)
);
CREATE INDEX operator_points_at ON operator_points (tenant_id, at);

CREATE TABLE access_overrides (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id   bigint NOT NULL REFERENCES tenants (id),
    member_id   bigint NOT NULL,
    gate_id     bigint NOT NULL,
    operator_id bigint NOT NULL,
    reason      text NOT NULL,
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    FOREIGN KEY (tenant_id, member_id) REFERENCES members (tenant_id, id),
    FOREIGN KEY (tenant_id, gate_id) REFERENCES gates (tenant_id, id),
    FOREIGN KEY (tenant_id, operator_id) REFERENCES operators (tenant_id, id)
);
CREATE INDEX access_overrides_member ON access_overrides (tenant_id, member_id) WHERE used_at IS NULL;

-- +goose Down
DROP TABLE access_overrides, operator_points, crm_actions, crm_relations, memberships, credentials,
    members, action_types, outcomes, commercial_statuses, audit_log, api_tokens, operators, gates, sites, tenants;
DROP FUNCTION crm_actions_no_delete();
