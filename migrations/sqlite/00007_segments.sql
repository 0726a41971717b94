-- +goose Up
-- SQLite twin of ../postgres/00007_segments.sql.
ALTER TABLE jobs ADD COLUMN parent_id text REFERENCES jobs (id);
ALTER TABLE jobs ADD COLUMN segment integer NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN segments_total integer NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN segments_done integer NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN activations text NOT NULL DEFAULT '';
ALTER TABLE jobs ADD COLUMN result blob;
CREATE UNIQUE INDEX jobs_segment_idx ON jobs (parent_id, segment) WHERE parent_id IS NOT NULL;
ALTER TABLE proofs ADD COLUMN bundle integer NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE proofs DROP COLUMN bundle;
DROP INDEX jobs_segment_idx;
ALTER TABLE jobs DROP COLUMN result;
ALTER TABLE jobs DROP COLUMN activations;
ALTER TABLE jobs DROP COLUMN segments_done;
ALTER TABLE jobs DROP COLUMN segments_total;
ALTER TABLE jobs DROP COLUMN segment;
ALTER TABLE jobs DROP COLUMN parent_id;
