-- +goose Up
-- SQLite twin of ../postgres/00001_init.sql: times are Unix microseconds, JSON is text.
CREATE TABLE api_keys (
    id             text PRIMARY KEY,
    name           text NOT NULL,
    hash           text NOT NULL UNIQUE,
    webhook_secret text NOT NULL,
    created_at     integer NOT NULL,
    revoked_at     integer
);

CREATE TABLE models (
    id              text PRIMARY KEY,
    owner           text NOT NULL REFERENCES api_keys (id),
    name            text NOT NULL,
    status          text NOT NULL,
    onnx_digest     text NOT NULL,
    onnx_size       integer NOT NULL,
    settings        text NOT NULL,
    engine_model_id text NOT NULL DEFAULT '',
    constraints     text NOT NULL DEFAULT '{}',
    inputs          text NOT NULL DEFAULT '[]',
    outputs         text NOT NULL DEFAULT '[]',
    stats           text NOT NULL DEFAULT 'null',
    systems         text NOT NULL DEFAULT '[]',
    error           text NOT NULL DEFAULT '',
    created_at      integer NOT NULL,
    updated_at      integer NOT NULL,
    deleted_at      integer
);
CREATE INDEX models_owner_idx ON models (owner, created_at);

CREATE TABLE jobs (
    id                text PRIMARY KEY,
    owner             text NOT NULL REFERENCES api_keys (id),
    model_id          text NOT NULL REFERENCES models (id),
    kind              text NOT NULL,
    system            text NOT NULL DEFAULT '',
    status            text NOT NULL,
    stage             text NOT NULL DEFAULT '',
    progress          real NOT NULL DEFAULT 0,
    attempt           integer NOT NULL DEFAULT 0,
    input             blob,
    idempotency_key   text,
    request_hash      text NOT NULL DEFAULT '',
    webhook_url       text NOT NULL DEFAULT '',
    cancel_requested  integer NOT NULL DEFAULT 0,
    error_code        text NOT NULL DEFAULT '',
    error_message     text NOT NULL DEFAULT '',
    proof_id          text NOT NULL DEFAULT '',
    webhook_attempts  integer NOT NULL DEFAULT 0,
    webhook_delivered integer NOT NULL DEFAULT 0,
    created_at        integer NOT NULL,
    started_at        integer,
    finished_at       integer,
    heartbeat_at      integer
);
CREATE UNIQUE INDEX jobs_idempotency_idx ON jobs (owner, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX jobs_status_idx ON jobs (status, created_at);

CREATE TABLE proofs (
    id            text PRIMARY KEY,
    job_id        text NOT NULL UNIQUE REFERENCES jobs (id),
    owner         text NOT NULL REFERENCES api_keys (id),
    model_id      text NOT NULL REFERENCES models (id),
    system        text NOT NULL,
    proof         blob NOT NULL,
    public_inputs text NOT NULL,
    outputs       text NOT NULL,
    calldata      blob NOT NULL,
    prove_seconds real NOT NULL,
    created_at    integer NOT NULL
);

-- +goose Down
DROP TABLE proofs;
DROP TABLE jobs;
DROP TABLE models;
DROP TABLE api_keys;
