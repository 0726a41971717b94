-- +goose Up
-- files is the artifact manifest of the model's working directory: relative path ->
-- content digest, so any worker can rebuild and verify the directory.
ALTER TABLE models ADD COLUMN files jsonb NOT NULL DEFAULT '{}';

-- +goose Down
ALTER TABLE models DROP COLUMN files;
