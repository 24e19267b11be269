-- Keys, usage records and rate windows (SQLite). Money is integer nano-USD, times are
-- integer Unix milliseconds, ids are text: the same shapes as the Postgres migration.
CREATE TABLE api_keys (
    id               TEXT PRIMARY KEY,
    name             TEXT NOT NULL,
    key_hash         TEXT NOT NULL UNIQUE,
    key_prefix       TEXT NOT NULL,
    models           TEXT,
    budget_nano      INTEGER,
    budget_period_ms INTEGER,
    period_start_ms  INTEGER NOT NULL,
    spent_nano       INTEGER NOT NULL DEFAULT 0,
    reserved_nano    INTEGER NOT NULL DEFAULT 0,
    rpm              INTEGER,
    tpm              INTEGER,
    max_parallel     INTEGER,
    in_flight        INTEGER NOT NULL DEFAULT 0,
    created_ms       INTEGER NOT NULL,
    expires_ms       INTEGER,
    revoked_ms       INTEGER
);

CREATE TABLE usage_records (
    id                TEXT PRIMARY KEY,
    key_id            TEXT NOT NULL,
    model             TEXT NOT NULL,
    created_ms        INTEGER NOT NULL,
    prompt_tokens     INTEGER NOT NULL,
    cached_tokens     INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    reasoning_tokens  INTEGER NOT NULL,
    cost_nano         INTEGER NOT NULL,
    status            TEXT NOT NULL
);
CREATE INDEX usage_records_key_created ON usage_records (key_id, created_ms);
CREATE INDEX usage_records_created ON usage_records (created_ms);

CREATE TABLE rate_windows (
    key_id    TEXT NOT NULL,
    window_ms INTEGER NOT NULL,
    requests  INTEGER NOT NULL,
    tokens    INTEGER NOT NULL,
    PRIMARY KEY (key_id, window_ms)
);
