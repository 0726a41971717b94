-- +goose Up
CREATE TABLE api_keys (
    id             text PRIMARY KEY,
    name           text NOT NULL,
    hash           text NOT NULL UNIQUE,
    webhook_secret text NOT NULL,
    created_at     timestamptz NOT NULL,
    revoked_at     timestamptz
);

CREATE TABLE models (
    id              text PRIMARY KEY,
    owner           text NOT NULL REFERENCES api_keys (id),
    name            text NOT NULL,
    status          text NOT NULL,
    onnx_digest     text NOT NULL,
    onnx_size       bigint NOT NULL,
    settings        jsonb NOT NULL,
    engine_model_id text NOT NULL DEFAULT '',
    constraints     jsonb NOT NULL DEFAULT '{}',
    inputs          jsonb NOT NULL DEFAULT '[]',
    outputs         jsonb NOT NULL DEFAULT '[]',
    stats           jsonb NOT NULL DEFAULT 'null',
    systems         jsonb NOT NULL DEFAULT '[]',
    error           text NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    deleted_at      timestamptz
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
    progress          double precision NOT NULL DEFAULT 0,
    attempt           integer NOT NULL DEFAULT 0,
    input             bytea,
    idempotency_key   text,
    request_hash      text NOT NULL DEFAULT '',
    webhook_url       text NOT NULL DEFAULT '',
    cancel_requested  boolean NOT NULL DEFAULT false,
    error_code        text NOT NULL DEFAULT '',
    error_message     text NOT NULL DEFAULT '',
    proof_id          text NOT NULL DEFAULT '',
    webhook_attempts  integer NOT NULL DEFAULT 0,
    webhook_delivered boolean NOT NULL DEFAULT false,
    created_at        timestamptz NOT NULL,
    started_at        timestamptz,
    finished_at       timestamptz,
    heartbeat_at      timestamptz
);
CREATE UNIQUE INDEX jobs_idempotency_idx ON jobs (owner, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX jobs_status_idx ON jobs (status, created_at);

CREATE TABLE proofs (
    id            text PRIMARY KEY,
    job_id        text NOT NULL UNIQUE REFERENCES jobs (id),
    owner         text NOT NULL REFERENCES api_keys (id),
    model_id      text NOT NULL REFERENCES models (id),
    system        text NOT NULL,
    proof         bytea NOT NULL,
    public_inputs jsonb NOT NULL,
    outputs       jsonb NOT NULL,
    calldata      bytea NOT NULL,
    prove_seconds double precision NOT NULL,
    created_at    timestamptz NOT NULL
);

-- +goose Down
DROP TABLE proofs;
DROP TABLE jobs;
DROP TABLE models;
DROP TABLE api_keys;
