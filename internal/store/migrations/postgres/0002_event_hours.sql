-- Per-hour counts of events by kind and rule (hour = time_us / 3600000000),
-- kept by the batch writer in the transaction of each batch and lowered by
-- the retention purge; the console's overview reads them instead of
-- grouping the events table.
CREATE TABLE event_hours (
    hour BIGINT NOT NULL,
    kind TEXT   NOT NULL,
    rule TEXT   NOT NULL,
    n    BIGINT NOT NULL,
    PRIMARY KEY (hour, kind, rule)
);

-- Backfill from the events already stored: one pass over the table inside
-- this migration's transaction.
INSERT INTO event_hours (hour, kind, rule, n)
    SELECT time_us / 3600000000, kind, rule, COUNT(*) FROM events GROUP BY 1, 2, 3;
