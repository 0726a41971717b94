-- +goose Up
-- SQLite twin of ../postgres/00004_setup_once.sql.
UPDATE jobs SET status = 'cancelled', cancel_requested = 1, finished_at = CAST(unixepoch('subsec') * 1000000 AS integer),
    error_code = 'cancelled', error_message = 'duplicate setup of the same model and system'
WHERE kind = 'setup' AND status IN ('queued', 'running') AND id <> (
    SELECT d.id FROM jobs d WHERE d.model_id = jobs.model_id AND d.system = jobs.system AND d.kind = 'setup'
        AND d.status IN ('queued', 'running') ORDER BY d.created_at, d.id LIMIT 1);
CREATE UNIQUE INDEX jobs_setup_once_idx ON jobs (model_id, system) WHERE kind = 'setup' AND status IN ('queued', 'running');

-- +goose Down
DROP INDEX jobs_setup_once_idx;
