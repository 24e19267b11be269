-- Keys, usage records and rate windows (Postgres). Money is integer nano-USD, times are
-- integer Unix milliseconds, ids are text: the same shapes as the SQLite migration.
CREATE TABLE api_keys (
    id               TEXT PRIMARY KEY,
    name             TEXT NOT NULL,
    key_hash         TEXT NOT NULL UNIQUE,
    key_prefix       TEXT NOT NULL,
    models           TEXT,
    budget_nano      BIGINT,
    budget_period_ms BIGINT,
    period_start_ms  BIGINT NOT NULL,
    spent_nano       BIGINT NOT NULL DEFAULT 0,
    reserved_nano    BIGINT NOT NULL DEFAULT 0,
    rpm              BIGINT,
    tpm              BIGINT,
    max_parallel     BIGINT,
    in_flight        BIGINT NOT NULL DEFAULT 0,
    created_ms       BIGINT NOT NULL,
    expires_ms       BIGINT,
    revoked_ms       BIGINT
);

CREATE TABLE usage_records (
    id                TEXT PRIMARY KEY,
    key_id            TEXT NOT NULL,
    model             TEXT NOT NULL,
    created_ms        BIGINT NOT NULL,
    prompt_tokens     BIGINT NOT NULL,
    cached_tokens     BIGINT NOT NULL,
    completion_tokens BIGINT NOT NULL,
    reasoning_tokens  BIGINT NOT NULL,
    cost_nano         BIGINT NOT NULL,
    status            TEXT NOT NULL
);
CREATE INDEX usage_records_key_created ON usage_records (key_id, created_ms);
CREATE INDEX usage_records_created ON usage_records (created_ms);

CREATE TABLE rate_windows (
    key_id    TEXT NOT NULL,
    window_ms BIGINT NOT NULL,
    requests  BIGINT NOT NULL,
    tokens    BIGINT NOT NULL,
    PRIMARY KEY (key_id, window_ms)
);
