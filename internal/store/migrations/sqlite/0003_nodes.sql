-- Several nodes' chains in one database: every event and checkpoint names
-- its node and seq counts per node. SQLite cannot change a primary key in
-- place, so the tables are copied once, row for row (hashes unchanged:
-- the rows of node '' verify as before); it needs free disk about the
-- size of the database while it runs, inside this migration's
-- transaction.
CREATE TABLE events_nodes (
    node    TEXT    NOT NULL DEFAULT '',
    seq     INTEGER NOT NULL,
    time_us INTEGER NOT NULL,
    kind    TEXT    NOT NULL,
    ip      TEXT    NOT NULL DEFAULT '',
    port    INTEGER NOT NULL DEFAULT 0,
    account TEXT    NOT NULL DEFAULT '',
    call_id TEXT    NOT NULL DEFAULT '',
    code    INTEGER NOT NULL DEFAULT 0,
    rule    TEXT    NOT NULL DEFAULT '',
    data    TEXT    NOT NULL,
    hash    BLOB    NOT NULL,
    PRIMARY KEY (node, seq)
);
INSERT INTO events_nodes (node, seq, time_us, kind, ip, port, account, call_id, code, rule, data, hash)
    SELECT '', seq, time_us, kind, ip, port, account, call_id, code, rule, data, hash FROM events ORDER BY seq;
DROP TABLE events;
ALTER TABLE events_nodes RENAME TO events;
CREATE INDEX events_time ON events (time_us);
CREATE INDEX events_ip ON events (ip, time_us) WHERE ip <> '';
CREATE INDEX events_account ON events (account, time_us) WHERE account <> '';
CREATE INDEX events_call_id ON events (call_id) WHERE call_id <> '';
CREATE INDEX events_node ON events (node, time_us) WHERE node <> '';

CREATE TABLE checkpoints_nodes (
    node    TEXT    NOT NULL DEFAULT '',
    seq     INTEGER NOT NULL,
    hash    BLOB    NOT NULL,
    time_us INTEGER NOT NULL,
    sig     BLOB    NOT NULL,
    PRIMARY KEY (node, seq)
);
INSERT INTO checkpoints_nodes (node, seq, hash, time_us, sig)
    SELECT '', seq, hash, time_us, sig FROM checkpoints;
DROP TABLE checkpoints;
ALTER TABLE checkpoints_nodes RENAME TO checkpoints;

-- Each chain's head as its writer left it: every batch transaction checks
-- and moves it, so a chain never forks.
CREATE TABLE chain_heads (
    node TEXT    PRIMARY KEY,
    seq  INTEGER NOT NULL,
    hash BLOB    NOT NULL
) WITHOUT ROWID;

-- Each node's checkpoint public key, stored by the node at its first start
-- (trust on first use; store.node_keys pins them instead).
CREATE TABLE node_keys (
    node    TEXT    PRIMARY KEY,
    pub     BLOB    NOT NULL,
    time_us INTEGER NOT NULL
) WITHOUT ROWID;
