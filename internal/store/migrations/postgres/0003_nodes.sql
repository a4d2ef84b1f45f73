-- Several nodes share one database: every event and checkpoint names its
-- node, and each node has its own chain (seq counts per node). Existing
-- rows belong to node '' (a guard alone) and keep their hashes: adding a
-- column with a constant default rewrites no row.
ALTER TABLE events ADD COLUMN node TEXT NOT NULL DEFAULT '';
ALTER TABLE events DROP CONSTRAINT events_pkey;
ALTER TABLE events ADD CONSTRAINT events_pkey PRIMARY KEY (node, seq);
CREATE INDEX events_node ON events (node, time_us) WHERE node <> '';

ALTER TABLE checkpoints ADD COLUMN node TEXT NOT NULL DEFAULT '';
ALTER TABLE checkpoints DROP CONSTRAINT checkpoints_pkey;
ALTER TABLE checkpoints ADD CONSTRAINT checkpoints_pkey PRIMARY KEY (node, seq);

-- Each chain's head as its writer left it: every batch transaction locks
-- the row (FOR UPDATE), checks it and moves it, so a chain never forks.
CREATE TABLE chain_heads (
    node TEXT   PRIMARY KEY,
    seq  BIGINT NOT NULL,
    hash BYTEA  NOT NULL
);

-- Each node's checkpoint public key, stored by the node at its first start
-- (trust on first use; store.node_keys pins them instead).
CREATE TABLE node_keys (
    node    TEXT   PRIMARY KEY,
    pub     BYTEA  NOT NULL,
    time_us BIGINT NOT NULL
);
