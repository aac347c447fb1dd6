-- +goose Up
-- Edges (varco-edge daemons) with their MQTT credentials and the status the
-- cloud learns from their births and statuses; the events they journal
-- (passages, alarms, command acknowledgements), stored once each; the
-- commands staff send them; and each member's last visit.

-- An edge authenticates to the broker as "{tenant slug}/{code}" with a
-- password whose argon2id hash is kept here, as operators' are. A deleted
-- edge keeps its row (its events reference it) but loses its credentials,
-- and its code can be given to a new edge.
--
-- The status columns are the cloud's, not the admin's: they do not move
-- version. Times named *_time are the edge's clock, *_at the cloud's.
-- status_time is the time of the status kept: a Birth (sent on every
-- connect) is always kept, an online status when it is newer. An offline status (a last will carries the
-- time its connection was made) is kept when it is not older than the
-- previous Birth (prev_birth_time): it is then the will of the current
-- connection, or of one the cloud did not hear of, while the late will of
-- an older connection, made before the current one's Birth, cannot hide a
-- newer online status. acked_seq is the high-water mark of the journal
-- numbered journal_epoch: every event with seq <= acked_seq is stored. A
-- Birth whose last sequence is below acked_seq tells of a new journal (a
-- new disk): journal_epoch grows by one and acked_seq starts from 0.
CREATE TABLE edges (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id        bigint NOT NULL REFERENCES tenants (id),
    site_id          bigint NOT NULL,
    code             text NOT NULL CONSTRAINT edges_code_check CHECK (code ~ '^[a-z0-9][a-z0-9-]{0,63}$'),
    name             text NOT NULL,
    password_hash    text NOT NULL,
    version          int NOT NULL DEFAULT 1,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    deleted_at       timestamptz,
    online           boolean NOT NULL DEFAULT false,
    boot_id          bigint NOT NULL DEFAULT 0, -- the edge's uint64 boot id, bit for bit
    cache_version    bigint NOT NULL DEFAULT 0,
    software         text NOT NULL DEFAULT '',
    protocol_version int NOT NULL DEFAULT 0,
    readers          jsonb NOT NULL DEFAULT '[]',
    last_seen_at     timestamptz,
    last_birth_at    timestamptz,
    status_time      timestamptz,
    birth_time       timestamptz,
    prev_birth_time  timestamptz,
    acked_seq        bigint NOT NULL DEFAULT 0,
    journal_epoch    int NOT NULL DEFAULT 0,
    UNIQUE (tenant_id, id),
    CONSTRAINT edges_site_id_fkey FOREIGN KEY (tenant_id, site_id) REFERENCES sites (tenant_id, id)
);
CREATE UNIQUE INDEX edges_code_key ON edges (tenant_id, code) WHERE deleted_at IS NULL;

-- An edge's journaled events. The key is the edge's journal position, so a
-- batch sent twice (QoS 1, resends until acknowledged) is stored once.
-- member_id, action_id and command_id are what the edge reported, not
-- foreign keys: an edge may name a member the cloud has since removed from
-- its site, and a bad reference must not make a whole batch unstorable.
CREATE TABLE edge_events (
    id            bigint GENERATED ALWAYS AS IDENTITY,
    tenant_id     bigint NOT NULL,
    edge_id       bigint NOT NULL,
    journal_epoch int NOT NULL,
    seq           bigint NOT NULL,
    boot_id       bigint NOT NULL,
    at            timestamptz NOT NULL,
    received_at   timestamptz NOT NULL,
    kind          smallint NOT NULL, -- protocol/sync EventKind
    reader        text NOT NULL DEFAULT '',
    credential    bytea,
    member_id     bigint,
    decision      smallint NOT NULL DEFAULT 0, -- protocol/sync Decision
    reason        smallint NOT NULL DEFAULT 0, -- protocol/sync Reason
    action_id     bigint,
    command_id    bigint,
    PRIMARY KEY (tenant_id, edge_id, journal_epoch, seq),
    FOREIGN KEY (tenant_id, edge_id) REFERENCES edges (tenant_id, id)
);
-- Passages newest first, per tenant and per member (keyset on at, id).
CREATE INDEX edge_events_passages ON edge_events (tenant_id, at DESC, id DESC) WHERE kind = 1;
CREATE INDEX edge_events_member ON edge_events (tenant_id, member_id, at DESC, id DESC) WHERE kind = 1 AND member_id IS NOT NULL;

-- Commands to edges. The id is the command id on the wire; the edge
-- acknowledges it with an EventRemoteOpen (open) or EventCommandDone (show,
-- resync). A command still queued or sent after expires_at reads as expired.
CREATE TABLE edge_commands (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id  bigint NOT NULL,
    edge_id    bigint NOT NULL,
    op         text NOT NULL CONSTRAINT edge_commands_op_check CHECK (op IN ('open', 'resync', 'show')),
    reader     text NOT NULL DEFAULT '',
    text       text NOT NULL DEFAULT '',
    seconds    int NOT NULL DEFAULT 0,
    status     text NOT NULL CONSTRAINT edge_commands_status_check CHECK (status IN ('queued', 'sent', 'done')),
    created_by bigint,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    sent_at    timestamptz,
    done_at    timestamptz,
    UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, edge_id) REFERENCES edges (tenant_id, id),
    FOREIGN KEY (tenant_id, created_by) REFERENCES operators (tenant_id, id)
);
CREATE INDEX edge_commands_edge ON edge_commands (tenant_id, edge_id, id DESC);

-- The latest granted passage of each member, from the edges' events. Every
-- batch of passages updates it for the members it grants: room left on each
-- page lets those updates be HOT (no index is touched, the trigram index on
-- search included), which makes ingest several times faster.
ALTER TABLE members ADD COLUMN IF NOT EXISTS last_visit_at timestamptz;
ALTER TABLE members SET (fillfactor = 80);

-- +goose Down
ALTER TABLE members RESET (fillfactor);
ALTER TABLE members DROP COLUMN IF EXISTS last_visit_at;
DROP TABLE edge_commands, edge_events, edges;
