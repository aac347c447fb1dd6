-- +goose Up
-- The device types a membership opens (a spa add-on: '{spa}'); empty means all.
ALTER TABLE memberships ADD COLUMN device_types text[] NOT NULL DEFAULT '{}';

-- +goose Down
ALTER TABLE memberships DROP COLUMN device_types;
