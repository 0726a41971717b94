-- +goose Up
-- Sharded proofs (issue 16): a prove job of a sharded model fans out into one segment
-- job per segment (kind 'segment', parent_id the prove job, segment its index), run
-- in parallel by any worker. The parent records how many segments it waits for and
-- how many are done (counted in the transaction that finishes each segment, so
-- exactly one finisher sees the last), and the blob of the boundary activations every
-- segment proves from. A segment job keeps its segment proof in result until the
-- parent assembles the bundle. A proof row with bundle set holds a bundle (JSON).
ALTER TABLE jobs ADD COLUMN parent_id text REFERENCES jobs (id);
ALTER TABLE jobs ADD COLUMN segment integer NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN segments_total integer NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN segments_done integer NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN activations text NOT NULL DEFAULT '';
ALTER TABLE jobs ADD COLUMN result bytea;
CREATE UNIQUE INDEX jobs_segment_idx ON jobs (parent_id, segment) WHERE parent_id IS NOT NULL;
ALTER TABLE proofs ADD COLUMN bundle boolean NOT NULL DEFAULT false;

-- +goose Down
ALTER TABLE proofs DROP COLUMN bundle;
DROP INDEX jobs_segment_idx;
ALTER TABLE jobs DROP COLUMN result;
ALTER TABLE jobs DROP COLUMN activations;
ALTER TABLE jobs DROP COLUMN segments_done;
ALTER TABLE jobs DROP COLUMN segments_total;
ALTER TABLE jobs DROP COLUMN segment;
ALTER TABLE jobs DROP COLUMN parent_id;
