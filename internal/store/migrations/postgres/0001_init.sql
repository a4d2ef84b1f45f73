-- Events: one row per recorded event, in chain order.
CREATE TABLE events (
    seq     BIGINT  PRIMARY KEY,
    time_us BIGINT  NOT NULL,
    kind    TEXT    NOT NULL,
    ip      TEXT    NOT NULL DEFAULT '',
    port    BIGINT  NOT NULL DEFAULT 0,
    account TEXT    NOT NULL DEFAULT '',
    call_id TEXT    NOT NULL DEFAULT '',
    code    BIGINT  NOT NULL DEFAULT 0,
    rule    TEXT    NOT NULL DEFAULT '',
    data    TEXT    NOT NULL,
    hash    BYTEA   NOT NULL
);
CREATE INDEX events_time ON events (time_us);
CREATE INDEX events_ip ON events (ip, time_us) WHERE ip <> '';
CREATE INDEX events_account ON events (account, time_us) WHERE account <> '';
CREATE INDEX events_call_id ON events (call_id) WHERE call_id <> '';

-- Signed checkpoints anchor the chain (and survive retention purges).
CREATE TABLE checkpoints (
    seq     BIGINT  PRIMARY KEY,
    hash    BYTEA   NOT NULL,
    time_us BIGINT  NOT NULL,
    sig     BYTEA   NOT NULL
);

-- Bans in force, written through; until_us 0 means never expires.
CREATE TABLE bans (
    scope    TEXT    NOT NULL,
    prefix   TEXT    NOT NULL,
    account  TEXT    NOT NULL,
    until_us BIGINT  NOT NULL,
    data     TEXT    NOT NULL,
    PRIMARY KEY (scope, prefix, account)
);
