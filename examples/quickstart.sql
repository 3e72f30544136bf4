-- shale quickstart: a partitioned, bucketed table loaded with generated rows and queried, then
-- backed up to a repository and one partition restored from the backup under another name.
-- Run it from the repository root on a fresh data directory:
--   rm -rf ./shale-data && cargo run -p shale-sql --bin shale -- --data ./shale-data -f examples/quickstart.sql

CREATE DATABASE IF NOT EXISTS demo;
USE demo;

-- One partition per quarter of 2025, each split into 4 buckets by user.
CREATE TABLE events (
  day     DATE NOT NULL,
  user_id BIGINT NOT NULL,
  kind    VARCHAR(16),
  amount  DECIMAL(10, 2)
)
DUPLICATE KEY(day, user_id)
PARTITION BY RANGE(day) (
  PARTITION p2025q1 VALUES LESS THAN ("2025-04-01"),
  PARTITION p2025q2 VALUES LESS THAN ("2025-07-01"),
  PARTITION p2025q3 VALUES LESS THAN ("2025-10-01"),
  PARTITION p2025q4 VALUES LESS THAN ("2026-01-01")
)
DISTRIBUTED BY HASH(user_id) BUCKETS 4
PROPERTIES ("replication_num" = "1");

-- 200,000 generated events spread over the year, loaded in one atomic INSERT.
INSERT INTO events
SELECT
  DATE '2025-01-01' + CAST(value % 365 AS INT) AS day,
  value % 97 AS user_id,
  CASE value % 3 WHEN 0 THEN 'view' WHEN 1 THEN 'click' ELSE 'buy' END AS kind,
  CAST(value % 50 AS DECIMAL(10, 2)) + 0.99 AS amount
FROM generate_series(1, 200000);

SELECT count(*) AS total_rows FROM events;

SHOW PARTITIONS FROM events;

-- Partition pruning: only p2025q2 is read.
SELECT kind, count(*) AS events, sum(amount) AS revenue
FROM events
WHERE day BETWEEN '2025-04-01' AND '2025-06-30'
GROUP BY kind
ORDER BY kind;

SELECT user_id, count(*) AS purchases
FROM events
WHERE kind = 'buy'
GROUP BY user_id
ORDER BY purchases DESC, user_id
LIMIT 5;

-- A repository is a directory of Parquet and JSON files. This one sits inside the data
-- directory so that `rm -rf ./shale-data` resets both; a relative LOCATION is relative to the
-- current directory.
CREATE REPOSITORY quickstart_repo WITH BROKER ON LOCATION "./shale-data/repo";

-- BACKUP runs as a job, as in StarRocks; a script waits for it to end before going on
-- (`shale --no-wait` does not), and the snapshot is then listed.
BACKUP SNAPSHOT demo.events_2025 TO quickstart_repo ON (events);

SHOW SNAPSHOT ON quickstart_repo;

-- Restore the second quarter only, as a new table. The snapshot holds one backup, so the
-- "backup_timestamp" property StarRocks asks for can be left out.
RESTORE SNAPSHOT demo.events_2025 FROM quickstart_repo
ON (events PARTITION (p2025q2) AS events_q2);

SELECT
  (SELECT count(*) FROM events WHERE day BETWEEN '2025-04-01' AND '2025-06-30') AS q2_in_events,
  (SELECT count(*) FROM events_q2) AS q2_restored;
