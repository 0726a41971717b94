-- +goose Up
-- SQLite twin of ../postgres/00006_trust.sql.
ALTER TABLE models ADD COLUMN provenance text NOT NULL DEFAULT '{}';
ALTER TABLE proofs ADD COLUMN provenance text;
ALTER TABLE models ADD COLUMN ceremony_contributions integer NOT NULL DEFAULT 0;
ALTER TABLE models ADD COLUMN ceremony_head text NOT NULL DEFAULT '';
ALTER TABLE models ADD COLUMN ceremony_sealed integer NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE models DROP COLUMN ceremony_sealed;
ALTER TABLE models DROP COLUMN ceremony_head;
ALTER TABLE models DROP COLUMN ceremony_contributions;
ALTER TABLE proofs DROP COLUMN provenance;
ALTER TABLE models DROP COLUMN provenance;
