-- +goose Up
-- One row per attempt to deliver a job's webhook, so a tenant can see what happened
-- (and when) without access to the logs. redelivery is 0 for the automatic delivery
-- and n for the n-th manual redelivery; webhook_redeliveries counts those requests.
CREATE TABLE webhook_deliveries (
    id          bigserial PRIMARY KEY,
    job_id      text NOT NULL REFERENCES jobs (id),
    redelivery  integer NOT NULL,
    attempt     integer NOT NULL,
    at          timestamptz NOT NULL,
    status_code integer NOT NULL DEFAULT 0,
    error       text NOT NULL DEFAULT '',
    delivered   boolean NOT NULL
);
CREATE INDEX webhook_deliveries_job_idx ON webhook_deliveries (job_id, id);
ALTER TABLE jobs ADD COLUMN webhook_redeliveries integer NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE jobs DROP COLUMN webhook_redeliveries;
DROP TABLE webhook_deliveries;
