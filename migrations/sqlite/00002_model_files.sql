-- +goose Up
-- SQLite twin of ../postgres/00002_model_files.sql.
ALTER TABLE models ADD COLUMN files text NOT NULL DEFAULT '{}';

-- +goose Down
ALTER TABLE models DROP COLUMN files;
