# The remaining forms of the backup family: READ ONLY repositories, BACKUP DATABASE ... SNAPSHOT,
# IN for FROM, SHOW SNAPSHOT with IN and with a timestamp, RESTORE with backup_timestamp, CANCEL
# RESTORE, VERIFY without DEEP, a restore whose job is cancelled, and their errors.

CREATE DATABASE shop; USE shop;
CREATE TABLE items (id INT, name VARCHAR(10)) DUPLICATE KEY(id)
PARTITION BY RANGE(id) (
  PARTITION p1 VALUES LESS THAN ("10"),
  PARTITION p2 VALUES LESS THAN (MAXVALUE)
);
INSERT INTO items VALUES (1, "tea"), (2, "cake"), (20, "jam")
----
affected 3

CREATE REPOSITORY repo WITH BROKER ON LOCATION "$DIR/repo"
----
ok

CREATE REPOSITORY repo WITH BROKER ON LOCATION "$DIR/elsewhere"
----
error: repository with same name already exist: repo

# StarRocks' grammar wants at least one property in PROPERTIES (...).
CREATE REPOSITORY bare WITH BROKER ON LOCATION "$DIR/repo" PROPERTIES ()
----
error: expected string literal, found ')'

BACKUP DATABASE shop SNAPSHOT snap_full TO repo PROPERTIES ("type" = "full", "timeout" = "3600")
----
ok

wait
----
job 10: Some(Finished)

-- columns: SnapshotName,DbName,State,BackupObjs,Status,Timeout
SHOW BACKUP IN shop
----
SnapshotName,DbName,State,BackupObjs,Status,Timeout
snap_full,shop,FINISHED,[shop.items],[OK],3600

BACKUP SNAPSHOT shop.snap_full TO repo ON (items)
----
error: Snapshot with name 'snap_full' already exist in repository

BACKUP SNAPSHOT shop.other TO repo ON (items) PROPERTIES ("type" = "differential")
----
error: Invalid backup job type: differential

BACKUP SNAPSHOT shop.other TO repo ON (items) PROPERTIES ("timeout" = "60")
----
error: timeout must be at least 10 min

BACKUP SNAPSHOT shop.other TO repo ON (items) PROPERTIES ("colour" = "blue")
----
error: Unknown backup job properties: [colour]

BACKUP SNAPSHOT shop.other TO repo ON (items AS things)
----
error: BACKUP does not support an alias

BACKUP SNAPSHOT shop.other TO repo ON (nope)
----
error: nope

BACKUP SNAPSHOT shop.other TO repo ON (items PARTITION (p9))
----
error: p9

BACKUP SNAPSHOT shop.items_p1 TO repo ON (items PARTITION (p1))
----
ok

wait
----
job 10: None
job 11: Some(Finished)

-- columns: Snapshot,Status
SHOW SNAPSHOT ON repo WHERE SNAPSHOT IN ("snap_full", "items_p1", "nope")
----
Snapshot,Status
items_p1,OK
snap_full,OK

SHOW SNAPSHOT ON nowhere
----
error: Repository [nowhere] does not exist

# TIMESTAMP alone is not a filter StarRocks accepts.
SHOW SNAPSHOT ON repo WHERE TIMESTAMP = "2025-01-01-00-00-00-000"
----
error: line 1, column 29: Where clause should looks like: SNAPSHOT = 'your_snapshot_name' [AND TIMESTAMP = '2018-04-18-19-19-10']

-- columns: Snapshot,Status
VERIFY SNAPSHOT snap_full ON repo
----
Snapshot,Status
snap_full,OK

VERIFY SNAPSHOT nope ON repo
----
error: nope

RESTORE SNAPSHOT shop.snap_full FROM repo ON (items AS items_copy) PROPERTIES ("backup_timestamp" = "2000-01-01-00-00-00-000")
----
error: Failed to get info of snapshot 'snap_full'

RESTORE SNAPSHOT shop.snap_full FROM repo ON (nope)
----
error: Table nope does not exist in snapshot snap_full

RESTORE SNAPSHOT shop.snap_full FROM repo ON (items PARTITION (p9) AS x)
----
error: Partition p9 of table items does not exist in snapshot snap_full

RESTORE SNAPSHOT shop.snap_full FROM repo ON (items AS copy) PROPERTIES ("allow_load" = "maybe")
----
error: Invalid allow load value: maybe

RESTORE SNAPSHOT shop.snap_full FROM repo ON (items AS items_copy) PROPERTIES ("replication_num" = "1")
----
ok

wait
----
job 10: None
job 11: None
job 12: Some(Finished)

-- columns: Label,DbName,State,AllowLoad,ReplicationNum,RestoreObjs,Status
SHOW RESTORE IN shop
----
Label,DbName,State,AllowLoad,ReplicationNum,RestoreObjs,Status
snap_full,shop,FINISHED,false,1,items_copy PARTITIONS [p1, p2],[OK]

SELECT count(*) AS n FROM items_copy
----
n
3

# The job checks the target when it starts: a table of that name with another schema cancels it.
CREATE TABLE clash (id BIGINT) DUPLICATE KEY(id);
RESTORE SNAPSHOT shop.snap_full FROM repo ON (items AS clash)
----
ok

wait
----
job 10: None
job 11: None
job 12: None
job 23: Some(Cancelled)

-- columns: Label,State,Status
SHOW RESTORE FROM shop
----
Label,State,Status
snap_full,CANCELLED,[COMMON_ERROR, msg: Table clash already exist but with different schema, errMsg: column count is 1 in existed table and 2 in backup snapshot]

CANCEL RESTORE FROM shop
----
error: Job with label snap_full can not be cancelled. state: CANCELLED

CANCEL RESTORE IN nope
----
error: No restore is currently running

CREATE READ ONLY REPOSITORY archive WITH BROKER ON LOCATION "$DIR/repo"
----
ok

-- columns: RepoName,IsReadOnly
SHOW REPOSITORIES
----
RepoName,IsReadOnly
archive,true
repo,false

BACKUP SNAPSHOT shop.more TO archive ON (items)
----
error: Repository archive is read only

-- columns: Snapshot,Status
SHOW SNAPSHOT ON archive WHERE SNAPSHOT = "items_p1"
----
Snapshot,Status
items_p1,OK

DROP SNAPSHOT items_p1 ON archive
----
error: read only

DROP SNAPSHOT nope ON repo
----
error: nope

DROP REPOSITORY archive
----
ok
