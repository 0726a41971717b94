-- +goose Up
-- lease_until: a running job belongs to its worker until then; the worker renews it
-- with every heartbeat, and a reaper hands a job whose lease ran out (its worker died)
-- to another worker. reclaims counts those hand-overs; it tells the queue task of
-- each hand-over apart from the dead worker's.
ALTER TABLE jobs ADD COLUMN lease_until timestamptz;
ALTER TABLE jobs ADD COLUMN reclaims integer NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE jobs DROP COLUMN reclaims;
ALTER TABLE jobs DROP COLUMN lease_until;
