-- +goose Up
-- State down (cloud -> edges): the transactional outbox, each site's
-- versioned change log, the records last published per site, the offline
-- policy and the tenants' signing keys. See postgres/sync.go.

-- access_outbox lists what may have changed in members' access records,
-- written by the triggers below in the transaction of the change itself. A
-- row is one of:
--   member_id set             recompute that member (at site_id, or every site)
--   all_members               recompute every member (at site_id, or every
--                             site), in batches: after_member is the cursor
--   neither                   a wake-up: the offline policy or the set of
--                             sites changed, no member to recompute
CREATE TABLE access_outbox (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id    bigint NOT NULL REFERENCES tenants (id),
    member_id    bigint,
    site_id      bigint,
    all_members  boolean NOT NULL DEFAULT false,
    after_member bigint NOT NULL DEFAULT 0,
    created_at   timestamptz NOT NULL DEFAULT now(),
    CHECK (NOT (all_members AND member_id IS NOT NULL))
);
CREATE INDEX access_outbox_tenant ON access_outbox (tenant_id, id);

-- sync_sites is each site's sync state: version is the last version in the
-- change log (the state sync_records hold), published_version the last one
-- published on the site's state topic; policy is the offline policy (CBOR)
-- as of version. recomputed_on and record_format drive the daily full
-- recompute (the site's local day) and the one after a format change.
CREATE TABLE sync_sites (
    tenant_id         bigint NOT NULL,
    site_id           bigint NOT NULL,
    version           bigint NOT NULL DEFAULT 0,
    published_version bigint NOT NULL DEFAULT 0,
    policy            bytea,
    recomputed_on     date,
    record_format     int NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, site_id),
    FOREIGN KEY (tenant_id, site_id) REFERENCES sites (tenant_id, id),
    CHECK (published_version <= version)
);
CREATE INDEX sync_sites_unpublished ON sync_sites (tenant_id) WHERE published_version < version;

-- sync_changes is a site's change log: the delta from prev to version, as
-- the unsigned protocol/sync envelope (signed when published or replayed).
-- Rows older than the retention are pruned once published; a catch-up from
-- before the oldest row gets a snapshot.
CREATE TABLE sync_changes (
    tenant_id  bigint NOT NULL,
    site_id    bigint NOT NULL,
    version    bigint NOT NULL,
    prev       bigint NOT NULL,
    delta      bytea NOT NULL,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, site_id, version),
    FOREIGN KEY (tenant_id, site_id) REFERENCES sync_sites (tenant_id, site_id),
    CHECK (version > prev)
);
CREATE INDEX sync_changes_created ON sync_changes (created_at);

-- sync_records holds each member's record (CBOR) at each site as of the
-- site's version: what the publisher compares a recomputed record with, and
-- what a snapshot is made of. A member without a published record has no row.
CREATE TABLE sync_records (
    tenant_id bigint NOT NULL,
    site_id   bigint NOT NULL,
    member_id bigint NOT NULL,
    record    bytea NOT NULL,
    PRIMARY KEY (tenant_id, site_id, member_id),
    FOREIGN KEY (tenant_id, site_id) REFERENCES sync_sites (tenant_id, site_id)
);
-- A full recompute of every site walks members in id order.
CREATE INDEX sync_records_member ON sync_records (tenant_id, member_id);

-- Snapshot ids grow, so that an edge can tell the newer of two snapshots.
CREATE SEQUENCE sync_snapshot_ids;

-- The tenant's offline policy for its edges (protocol/sync OfflinePolicy):
-- limits is [{"rule":..., "mode":..., "after_seconds":...}].
CREATE TABLE sync_policies (
    tenant_id  bigint PRIMARY KEY REFERENCES tenants (id),
    limits     jsonb NOT NULL,
    version    int NOT NULL DEFAULT 1,
    updated_at timestamptz NOT NULL
);

-- Ed25519 keys that sign what the cloud sends to a tenant's edges. The key
-- id on the wire is "<slug>-<generation>". The newest activated generation
-- signs; a generation not yet activated is staged, so that installers can
-- add its public key to the edges before it signs; an older one is listed
-- until retired (kept, not deleted, for the audit trail). The private key
-- (the 32-byte seed) is stored here: production should keep it in a KMS.
CREATE TABLE tenant_signing_keys (
    tenant_id    bigint NOT NULL REFERENCES tenants (id),
    generation   int NOT NULL CHECK (generation > 0),
    private_key  bytea NOT NULL CHECK (length(private_key) = 32),
    public_key   bytea NOT NULL CHECK (length(public_key) = 32),
    created_at   timestamptz NOT NULL,
    activated_at timestamptz,
    retired_at   timestamptz,
    PRIMARY KEY (tenant_id, generation)
);

-- The outbox triggers. Why triggers rather than a call in every store
-- method: the access record depends on seven tables written by many paths
-- (the API, CSV imports, bulk actions, scheduled jobs, relations that open
-- and close actions, a future SQL fix-up by hand). A trigger runs in the
-- writing transaction whatever the path, so a change can neither be
-- forgotten nor published without being committed; pg_notify is delivered
-- at commit only, and one notification per tenant and transaction.

-- +goose StatementBegin
CREATE FUNCTION sync_outbox_member(tenant bigint, member bigint) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO access_outbox (tenant_id, member_id) VALUES (tenant, member);
    PERFORM pg_notify('varco_sync', tenant::text);
END;
$$;
-- +goose StatementEnd

-- Rows of tables with a member_id column: credentials, memberships,
-- instalments.
-- +goose StatementBegin
CREATE FUNCTION sync_member_row_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        PERFORM sync_outbox_member(OLD.tenant_id, OLD.member_id);
    END IF;
    IF TG_OP <> 'DELETE' AND (TG_OP = 'INSERT' OR NEW.member_id <> OLD.member_id) THEN
        PERFORM sync_outbox_member(NEW.tenant_id, NEW.member_id);
    END IF;
    RETURN NULL;
END;
$$;
-- +goose StatementEnd

CREATE TRIGGER credentials_sync AFTER INSERT OR UPDATE OR DELETE ON credentials
    FOR EACH ROW EXECUTE FUNCTION sync_member_row_changed();
CREATE TRIGGER memberships_sync AFTER INSERT OR UPDATE OR DELETE ON memberships
    FOR EACH ROW EXECUTE FUNCTION sync_member_row_changed();
CREATE TRIGGER instalments_sync_insert_delete AFTER INSERT OR DELETE ON instalments
    FOR EACH ROW EXECUTE FUNCTION sync_member_row_changed();
CREATE TRIGGER instalments_sync_update AFTER UPDATE ON instalments
    FOR EACH ROW WHEN ((OLD.member_id, OLD.due_on, OLD.paid_at, OLD.cancelled) IS DISTINCT FROM
                       (NEW.member_id, NEW.due_on, NEW.paid_at, NEW.cancelled))
    EXECUTE FUNCTION sync_member_row_changed();

-- Members: the columns a record is computed from (names and language for
-- the birthday text). A new member has no credential, hence no record yet.
-- +goose StatementBegin
CREATE FUNCTION sync_member_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM sync_outbox_member(OLD.tenant_id, OLD.id);
    RETURN NULL;
END;
$$;
-- +goose StatementEnd

CREATE TRIGGER members_sync_update AFTER UPDATE ON members
    FOR EACH ROW WHEN ((OLD.kind, OLD.first_name, OLD.last_name, OLD.birth_date, OLD.language, OLD.medical_cert_expiry,
                        OLD.suspended, OLD.archived_at) IS DISTINCT FROM
                       (NEW.kind, NEW.first_name, NEW.last_name, NEW.birth_date, NEW.language, NEW.medical_cert_expiry,
                        NEW.suspended, NEW.archived_at))
    EXECUTE FUNCTION sync_member_changed();
CREATE TRIGGER members_sync_delete AFTER DELETE ON members
    FOR EACH ROW EXECUTE FUNCTION sync_member_changed();

-- CRM actions: only those whose type acts at gates, when they are created
-- open or change openness, type or member (never deleted).
-- +goose StatementBegin
CREATE FUNCTION sync_action_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND EXISTS (SELECT 1 FROM action_types
            WHERE tenant_id = OLD.tenant_id AND id = OLD.type_id AND access_action <> 'none') THEN
        PERFORM sync_outbox_member(OLD.tenant_id, OLD.member_id);
        IF NEW.member_id = OLD.member_id THEN
            RETURN NULL;
        END IF;
    END IF;
    IF EXISTS (SELECT 1 FROM action_types WHERE tenant_id = NEW.tenant_id AND id = NEW.type_id AND access_action <> 'none') THEN
        PERFORM sync_outbox_member(NEW.tenant_id, NEW.member_id);
    END IF;
    RETURN NULL;
END;
$$;
-- +goose StatementEnd

CREATE TRIGGER crm_actions_sync_insert AFTER INSERT ON crm_actions
    FOR EACH ROW WHEN (NEW.is_open) EXECUTE FUNCTION sync_action_changed();
CREATE TRIGGER crm_actions_sync_update AFTER UPDATE ON crm_actions
    FOR EACH ROW WHEN ((OLD.is_open, OLD.type_id, OLD.member_id) IS DISTINCT FROM (NEW.is_open, NEW.type_id, NEW.member_id))
    EXECUTE FUNCTION sync_action_changed();

-- Action types: what acts at gates, on which devices, with which text; the
-- members with an open action of the type.
-- +goose StatementBegin
CREATE FUNCTION sync_action_type_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO access_outbox (tenant_id, member_id)
        SELECT DISTINCT tenant_id, member_id FROM crm_actions
        WHERE tenant_id = NEW.tenant_id AND type_id = NEW.id AND is_open;
    IF FOUND THEN
        PERFORM pg_notify('varco_sync', NEW.tenant_id::text);
    END IF;
    RETURN NULL;
END;
$$;
-- +goose StatementEnd

CREATE TRIGGER action_types_sync AFTER UPDATE ON action_types
    FOR EACH ROW WHEN ((OLD.access_action, OLD.device_types, OLD.display_message) IS DISTINCT FROM
                       (NEW.access_action, NEW.device_types, NEW.display_message))
    EXECUTE FUNCTION sync_action_type_changed();

-- Tenant settings that change every record: warning days, the credential key.
-- +goose StatementBegin
CREATE FUNCTION sync_tenant_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO access_outbox (tenant_id, all_members) VALUES (NEW.id, true);
    PERFORM pg_notify('varco_sync', NEW.id::text);
    RETURN NULL;
END;
$$;
-- +goose StatementEnd

CREATE TRIGGER tenants_sync AFTER UPDATE ON tenants
    FOR EACH ROW WHEN ((OLD.membership_warn_days, OLD.medical_warn_days, OLD.credential_key) IS DISTINCT FROM
                       (NEW.membership_warn_days, NEW.medical_warn_days, NEW.credential_key))
    EXECUTE FUNCTION sync_tenant_changed();

-- Sites: a new site gets its sync state and every member's record; a new
-- time zone moves every window of the site.
-- +goose StatementBegin
CREATE FUNCTION sync_site_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO sync_sites (tenant_id, site_id) VALUES (NEW.tenant_id, NEW.id);
    END IF;
    INSERT INTO access_outbox (tenant_id, site_id, all_members) VALUES (NEW.tenant_id, NEW.id, true);
    PERFORM pg_notify('varco_sync', NEW.tenant_id::text);
    RETURN NULL;
END;
$$;
-- +goose StatementEnd

CREATE TRIGGER sites_sync_insert AFTER INSERT ON sites
    FOR EACH ROW EXECUTE FUNCTION sync_site_changed();
CREATE TRIGGER sites_sync_update AFTER UPDATE ON sites
    FOR EACH ROW WHEN (OLD.timezone IS DISTINCT FROM NEW.timezone) EXECUTE FUNCTION sync_site_changed();

-- The offline policy: every site's next delta carries it.
-- +goose StatementBegin
CREATE FUNCTION sync_policy_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO access_outbox (tenant_id) VALUES (NEW.tenant_id);
    PERFORM pg_notify('varco_sync', NEW.tenant_id::text);
    RETURN NULL;
END;
$$;
-- +goose StatementEnd

CREATE TRIGGER sync_policies_sync AFTER INSERT OR UPDATE ON sync_policies
    FOR EACH ROW EXECUTE FUNCTION sync_policy_changed();

-- Sites that exist already start at version 0 with every member to publish.
INSERT INTO sync_sites (tenant_id, site_id) SELECT tenant_id, id FROM sites;
INSERT INTO access_outbox (tenant_id, all_members) SELECT DISTINCT tenant_id, true FROM sites;

-- +goose Down
DROP TRIGGER sync_policies_sync ON sync_policies;
DROP TRIGGER sites_sync_update ON sites;
DROP TRIGGER sites_sync_insert ON sites;
DROP TRIGGER tenants_sync ON tenants;
DROP TRIGGER action_types_sync ON action_types;
DROP TRIGGER crm_actions_sync_update ON crm_actions;
DROP TRIGGER crm_actions_sync_insert ON crm_actions;
DROP TRIGGER members_sync_delete ON members;
DROP TRIGGER members_sync_update ON members;
DROP TRIGGER instalments_sync_update ON instalments;
DROP TRIGGER instalments_sync_insert_delete ON instalments;
DROP TRIGGER memberships_sync ON memberships;
DROP TRIGGER credentials_sync ON credentials;
DROP FUNCTION sync_policy_changed(), sync_site_changed(), sync_tenant_changed(), sync_action_type_changed(),
    sync_action_changed(), sync_member_changed(), sync_member_row_changed(), sync_outbox_member(bigint, bigint);
DROP TABLE tenant_signing_keys, sync_policies, sync_records, sync_changes, sync_sites, access_outbox;
DROP SEQUENCE sync_snapshot_ids;
