-- One row per admitted request until it settles: what it reserved, and until when. A
-- replica that dies leaves its rows behind; once they expire any replica releases them
-- from the key's counters (SQLite: the one server releases all of them at start).
CREATE TABLE reservations (
    request_id  TEXT PRIMARY KEY,
    key_id      TEXT NOT NULL,
    amount_nano BIGINT NOT NULL,
    expires_ms  BIGINT NOT NULL
);
CREATE INDEX reservations_expires ON reservations (expires_ms);
