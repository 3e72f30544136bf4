# The backup family on shale-backup: repositories, BACKUP, SHOW BACKUP, SHOW SNAPSHOT,
# RESTORE (a partition, under an alias), SHOW RESTORE, VERIFY, DROP SNAPSHOT.

CREATE DATABASE sales; USE sales
----
ok

CREATE TABLE orders (id INT, region VARCHAR(10)) DUPLICATE KEY(id)
PARTITION BY RANGE(id) (
  PARTITION p1 VALUES LESS THAN ("100"),
  PARTITION p2 VALUES LESS THAN (MAXVALUE)
)
DISTRIBUTED BY HASH(id) BUCKETS 2;
INSERT INTO orders VALUES (1, "east"), (2, "west"), (150, "east")
----
affected 3

SHOW BACKUP
----
JobId,SnapshotName,DbName,State,BackupObjs,CreateTime,SnapshotFinishedTime,UploadFinishedTime,FinishedTime,UnfinishedTasks,Progress,TaskErrMsg,Status,Timeout

CREATE REPOSITORY repo WITH BROKER ON LOCATION "$DIR/repo"
----
ok

-- columns: RepoName,IsReadOnly,Broker,ErrMsg
SHOW REPOSITORIES
----
RepoName,IsReadOnly,Broker,ErrMsg
repo,false,,NULL

BACKUP SNAPSHOT sales.snap1 TO repo ON (orders)
----
ok

wait
----
job 13: Some(Finished)

-- columns: SnapshotName,DbName,State,BackupObjs,Status,Timeout
SHOW BACKUP FROM sales
----
SnapshotName,DbName,State,BackupObjs,Status,Timeout
snap1,sales,FINISHED,[sales.orders],[OK],86400

-- columns: Snapshot,Status
SHOW SNAPSHOT ON repo
----
Snapshot,Status
snap1,OK

-- columns: Snapshot,Status
SHOW SNAPSHOT ON repo WHERE SNAPSHOT = "nope"
----
Snapshot,Status

BACKUP SNAPSHOT sales.snap1 TO nowhere
----
error: Repository [nowhere] does not exist

-- columns: Snapshot,Status,Path,Problem
VERIFY SNAPSHOT snap1 ON repo DEEP
----
Snapshot,Status,Path,Problem
snap1,OK,NULL,NULL

RESTORE SNAPSHOT sales.snap1 FROM repo ON (orders PARTITION (p1) AS orders_p1)
----
ok

wait
----
job 13: None
job 14: Some(Finished)

-- columns: Label,DbName,State,RestoreObjs,Status
SHOW RESTORE
----
Label,DbName,State,RestoreObjs,Status
snap1,sales,FINISHED,orders_p1 PARTITIONS [p1],[OK]

SELECT id, region FROM orders_p1 ORDER BY id
----
id,region
1,east
2,west

CANCEL BACKUP FROM sales
----
error: No backup job is currently running

DROP SNAPSHOT snap1 ON repo
----
ok

-- columns: Snapshot,Status
SHOW SNAPSHOT ON repo
----
Snapshot,Status

DROP REPOSITORY repo
----
ok

DROP REPOSITORY repo
----
error: Repository does not exist

BACKUP SNAPSHOT sales.snap2 TO repo ON (orders PARTITION (p2))
----
error: Repository [repo] does not exist

CREATE REPOSITORY repo WITH BROKER ON LOCATION "$DIR/repo2";
BACKUP SNAPSHOT sales.snap2 TO repo ON (orders PARTITION (p2))
----
ok

wait
----
job 13: None
job 14: None
job 22: Some(Finished)

-- columns: Snapshot,Timestamp,Database,Status
SHOW SNAPSHOT ON repo WHERE SNAPSHOT = "snap2" AND TIMESTAMP = "nope"
----
error: Failed to get info of snapshot 'snap2'
