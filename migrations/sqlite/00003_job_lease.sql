-- +goose Up
-- SQLite twin of ../postgres/00003_job_lease.sql.
ALTER TABLE jobs ADD COLUMN lease_until integer;
ALTER TABLE jobs ADD COLUMN reclaims integer NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE jobs DROP COLUMN reclaims;
ALTER TABLE jobs DROP COLUMN lease_until;
