-- +goose Up
-- Instalments due and bookings of members. As everywhere, references are
-- composite (tenant_id, ...) foreign keys; an instalment's membership must
-- also be one of the same member's.
ALTER TABLE memberships ADD CONSTRAINT memberships_tenant_id_member_id_id_key UNIQUE (tenant_id, member_id, id);

CREATE TABLE instalments (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id     bigint NOT NULL REFERENCES tenants (id),
    member_id     bigint NOT NULL,
    membership_id bigint,
    description   text NOT NULL DEFAULT '',
    amount_cents  bigint NOT NULL CONSTRAINT instalments_amount_cents_check CHECK (amount_cents > 0),
    currency      text NOT NULL CONSTRAINT instalments_currency_check CHECK (currency ~ '^[A-Z]{3}$'),
    due_on        date NOT NULL,
    paid_at       timestamptz,
    cancelled     boolean NOT NULL DEFAULT false,
    version       int NOT NULL DEFAULT 1,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    UNIQUE (tenant_id, id),
    CONSTRAINT instalments_member_id_fkey FOREIGN KEY (tenant_id, member_id) REFERENCES members (tenant_id, id),
    CONSTRAINT instalments_membership_id_fkey FOREIGN KEY (tenant_id, member_id, membership_id)
        REFERENCES memberships (tenant_id, member_id, id),
    CONSTRAINT instalments_cancelled_check CHECK (NOT (cancelled AND paid_at IS NOT NULL))
);
CREATE INDEX instalments_member ON instalments (tenant_id, member_id, due_on);
-- Open instalments by due date: overdue notices, "instalment due in N days" targets.
CREATE INDEX instalments_open ON instalments (tenant_id, due_on) WHERE paid_at IS NULL AND NOT cancelled;

CREATE TABLE bookings (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id  bigint NOT NULL REFERENCES tenants (id),
    member_id  bigint NOT NULL,
    site_id    bigint NOT NULL,
    kind       text NOT NULL CONSTRAINT bookings_kind_check CHECK (kind IN ('class', 'appointment')),
    title      text NOT NULL,
    starts_at  timestamptz NOT NULL,
    ends_at    timestamptz NOT NULL,
    status     text NOT NULL DEFAULT 'booked' CONSTRAINT bookings_status_check CHECK (status IN ('booked', 'cancelled', 'attended')),
    version    int NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    UNIQUE (tenant_id, id),
    CONSTRAINT bookings_member_id_fkey FOREIGN KEY (tenant_id, member_id) REFERENCES members (tenant_id, id),
    CONSTRAINT bookings_site_id_fkey FOREIGN KEY (tenant_id, site_id) REFERENCES sites (tenant_id, id),
    CONSTRAINT bookings_ends_at_check CHECK (ends_at > starts_at)
);
CREATE INDEX bookings_member ON bookings (tenant_id, member_id, starts_at, id);
-- A site's schedule ("bookings tomorrow" targets).
CREATE INDEX bookings_site ON bookings (tenant_id, site_id, starts_at);

-- +goose Down
DROP TABLE bookings, instalments;
ALTER TABLE memberships DROP CONSTRAINT memberships_tenant_id_member_id_id_key;
