-- +goose Up
-- Where each system's keys come from (issue 20), as the engine reported it when the keys
-- were made: system -> provenance JSON (trust level, ptau hash, contributions, beacon).
-- A proof keeps the provenance of the keys it was made with.
ALTER TABLE models ADD COLUMN provenance jsonb NOT NULL DEFAULT '{}';
ALTER TABLE proofs ADD COLUMN provenance jsonb;
-- The head of the model's Groth16 phase-2 ceremony: accepting a contribution is a
-- compare-and-swap on it, so that two service processes cannot both accept a
-- contribution made from the same state. ceremony_head is the SHA-256 of the current
-- state ('' while no ceremony is open).
ALTER TABLE models ADD COLUMN ceremony_contributions integer NOT NULL DEFAULT 0;
ALTER TABLE models ADD COLUMN ceremony_head text NOT NULL DEFAULT '';
ALTER TABLE models ADD COLUMN ceremony_sealed boolean NOT NULL DEFAULT false;

-- +goose Down
ALTER TABLE models DROP COLUMN ceremony_sealed;
ALTER TABLE models DROP COLUMN ceremony_head;
ALTER TABLE models DROP COLUMN ceremony_contributions;
ALTER TABLE proofs DROP COLUMN provenance;
ALTER TABLE models DROP COLUMN provenance;
