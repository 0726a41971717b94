-- +goose Up
-- At most one setup job per model and proving system is in flight: a second setup
-- request gets the running one back instead of making keys that would replace the
-- first ones under a deployed verifier. (In-flight duplicates made before this
-- migration are cancelled, the oldest kept.)
UPDATE jobs SET status = 'cancelled', cancel_requested = true, finished_at = now(), error_code = 'cancelled',
    error_message = 'duplicate setup of the same model and system'
WHERE kind = 'setup' AND status IN ('queued', 'running') AND id <> (
    SELECT d.id FROM jobs d WHERE d.model_id = jobs.model_id AND d.system = jobs.system AND d.kind = 'setup'
        AND d.status IN ('queued', 'running') ORDER BY d.created_at, d.id LIMIT 1);
CREATE UNIQUE INDEX jobs_setup_once_idx ON jobs (model_id, system) WHERE kind = 'setup' AND status IN ('queued', 'running');

-- +goose Down
DROP INDEX jobs_setup_once_idx;
