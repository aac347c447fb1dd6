-- +goose Up
-- Every change to a tenant's CRM configuration (action types, outcomes,
-- commercial statuses, relations), by whatever path, gives the tenant a new
-- crm_config_version from a sequence. Processes cache the configuration
-- under the version they read and reload when it differs; a sequence never
-- hands out a value twice, so even a rolled-back change cannot make a stale
-- cache entry look current.
CREATE SEQUENCE crm_config_versions;
ALTER TABLE tenants ADD COLUMN crm_config_version bigint NOT NULL DEFAULT 0;

-- +goose StatementBegin
CREATE FUNCTION crm_config_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    tid bigint;
BEGIN
    IF TG_OP = 'DELETE' THEN
        tid := OLD.tenant_id;
    ELSE
        tid := NEW.tenant_id;
    END IF;
    UPDATE tenants SET crm_config_version = nextval('crm_config_versions') WHERE id = tid;
    RETURN NULL;
END;
$$;
-- +goose StatementEnd

CREATE TRIGGER action_types_config_version AFTER INSERT OR UPDATE OR DELETE ON action_types
    FOR EACH ROW EXECUTE FUNCTION crm_config_changed();
CREATE TRIGGER outcomes_config_version AFTER INSERT OR UPDATE OR DELETE ON outcomes
    FOR EACH ROW EXECUTE FUNCTION crm_config_changed();
CREATE TRIGGER commercial_statuses_config_version AFTER INSERT OR UPDATE OR DELETE ON commercial_statuses
    FOR EACH ROW EXECUTE FUNCTION crm_config_changed();
CREATE TRIGGER crm_relations_config_version AFTER INSERT OR UPDATE OR DELETE ON crm_relations
    FOR EACH ROW EXECUTE FUNCTION crm_config_changed();

-- +goose Down
DROP TRIGGER crm_relations_config_version ON crm_relations;
DROP TRIGGER commercial_statuses_config_version ON commercial_statuses;
DROP TRIGGER outcomes_config_version ON outcomes;
DROP TRIGGER action_types_config_version ON action_types;
DROP FUNCTION crm_config_changed();
ALTER TABLE tenants DROP COLUMN crm_config_version;
DROP SEQUENCE crm_config_versions;
