-- +goose Up
-- SQLite twin of ../postgres/00005_webhook_deliveries.sql.
CREATE TABLE webhook_deliveries (
    id          integer PRIMARY KEY AUTOINCREMENT,
    job_id      text NOT NULL REFERENCES jobs (id),
    redelivery  integer NOT NULL,
    attempt     integer NOT NULL,
    at          integer NOT NULL,
    status_code integer NOT NULL DEFAULT 0,
    error       text NOT NULL DEFAULT '',
    delivered   integer NOT NULL
);
CREATE INDEX webhook_deliveries_job_idx ON webhook_deliveries (job_id, id);
ALTER TABLE jobs ADD COLUMN webhook_redeliveries integer NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE jobs DROP COLUMN webhook_redeliveries;
DROP TABLE webhook_deliveries;
