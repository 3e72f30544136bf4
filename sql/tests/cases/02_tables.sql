# CREATE TABLE, DESC, SHOW PARTITIONS, SHOW CREATE TABLE, ALTER TABLE, TRUNCATE, DROP TABLE.

CREATE DATABASE d; USE d
----
ok

CREATE TABLE sales (
  day DATE NOT NULL,
  item VARCHAR(20),
  qty INT,
  price DECIMAL(10, 2)
) DUPLICATE KEY(day, item)
PARTITION BY RANGE(day) (
  PARTITION p2024 VALUES LESS THAN ("2025-01-01"),
  PARTITION p2025 VALUES [("2025-01-01"), ("2026-01-01"))
)
DISTRIBUTED BY HASH(item) BUCKETS 4
PROPERTIES ("replication_num" = "1")
----
ok

DESC sales
----
Field,Type,Null,Key,Default,Extra
day,DATE,NO,true,NULL,
item,VARCHAR(20),YES,true,NULL,
qty,INT,YES,false,NULL,
price,DECIMAL(10,2),YES,false,NULL,

SHOW PARTITIONS FROM sales
----
PartitionId,PartitionName,VisibleVersion,VisibleVersionTime,VisibleVersionHash,State,PartitionKey,Range,DistributionKey,Buckets,ReplicationNum,StorageMedium,CooldownTime,LastConsistencyCheckTime,DataSize,IsInMemory,RowCount
2,p2024,1,NULL,0,NORMAL,day,[MINVALUE, 2025-01-01),item,4,1,HDD,9999-12-31 23:59:59,NULL,0B,false,0
7,p2025,1,NULL,0,NORMAL,day,[2025-01-01, 2026-01-01),item,4,1,HDD,9999-12-31 23:59:59,NULL,0B,false,0

SHOW CREATE TABLE sales
----
Table,Create Table
sales,CREATE TABLE d.sales (day DATE NOT NULL, item VARCHAR(20), qty INT, price DECIMAL(10, 2)) ENGINE = OLAP DUPLICATE KEY(day, item) PARTITION BY RANGE(day) (PARTITION p2024 VALUES LESS THAN ('2025-01-01'), PARTITION p2025 VALUES [('2025-01-01'), ('2026-01-01'))) DISTRIBUTED BY HASH(item) BUCKETS 4 PROPERTIES ('replication_num' = '1')

CREATE TABLE sales (k INT)
----
error: Table 'sales' already exists

CREATE TABLE IF NOT EXISTS sales (k INT)
----
ok

CREATE TABLE agg (k INT, v BIGINT) AGGREGATE KEY(k)
----
error: AGGREGATE KEY (only DUPLICATE KEY tables are) is not supported

CREATE TABLE u (k INT, v INT) UNIQUE KEY(k)
----
error: UNIQUE KEY (only DUPLICATE KEY tables are) is not supported

CREATE TABLE pk (k INT, v INT) PRIMARY KEY(k)
----
error: PRIMARY KEY (only DUPLICATE KEY tables are) is not supported

CREATE TABLE bad (k BLOB)
----
error: unknown type BLOB

CREATE TABLE bad (k VARCHAR(0))
----
error: invalid type VARCHAR

CREATE TABLE bad (k INT, v INT) DUPLICATE KEY(nope)
----
error: Key column 'nope' does not exist

CREATE TABLE bad (k INT) DISTRIBUTED BY HASH(nope) BUCKETS 2
----
error: Unknown distribution column 'nope'

CREATE TABLE bad (k INT, j INT) PARTITION BY RANGE(k, j) (PARTITION p VALUES LESS THAN ("1", "2"))
----
error: partitioning on more than one column is not supported

CREATE TABLE regions (id INT, region VARCHAR(10))
DUPLICATE KEY(id)
PARTITION BY LIST(region) (
  PARTITION p_east VALUES IN ("east", "north"),
  PARTITION p_west VALUES IN ("west")
)
DISTRIBUTED BY HASH(id)
----
ok

SHOW PARTITIONS FROM regions
----
PartitionId,PartitionName,VisibleVersion,VisibleVersionTime,VisibleVersionHash,State,PartitionKey,Range,DistributionKey,Buckets,ReplicationNum,StorageMedium,CooldownTime,LastConsistencyCheckTime,DataSize,IsInMemory,RowCount
13,p_east,1,NULL,0,NORMAL,region,('east', 'north'),id,1,1,HDD,9999-12-31 23:59:59,NULL,0B,false,0
15,p_west,1,NULL,0,NORMAL,region,('west'),id,1,1,HDD,9999-12-31 23:59:59,NULL,0B,false,0

CREATE TABLE plain (id INT, note STRING); SHOW PARTITIONS FROM plain
----
PartitionId,PartitionName,VisibleVersion,VisibleVersionTime,VisibleVersionHash,State,PartitionKey,Range,DistributionKey,Buckets,ReplicationNum,StorageMedium,CooldownTime,LastConsistencyCheckTime,DataSize,IsInMemory,RowCount
18,plain,1,NULL,0,NORMAL,,,ALL KEY,1,1,HDD,9999-12-31 23:59:59,NULL,0B,false,0

ALTER TABLE sales ADD PARTITION p2026 VALUES LESS THAN ("2027-01-01")
----
ok

ALTER TABLE sales ADD PARTITION p_overlap VALUES [("2025-06-01"), ("2025-07-01"))
----
error: overlaps partition p2025

ALTER TABLE sales ADD PARTITION p2026 VALUES LESS THAN ("2028-01-01")
----
error: Duplicate partition name p2026

ALTER TABLE sales ADD PARTITION IF NOT EXISTS p2026 VALUES LESS THAN ("2028-01-01")
----
ok

ALTER TABLE sales DROP PARTITION p2024
----
ok

ALTER TABLE sales DROP PARTITION p2024
----
error: partition[p2024] does not exist in table sales

ALTER TABLE sales DROP PARTITION IF EXISTS p2024
----
ok

INSERT INTO sales VALUES ("2025-03-01", "tea", 2, "3.50"), ("2026-02-01", "cake", 1, "4.00")
----
affected 2

TRUNCATE TABLE sales PARTITION (p2025); SELECT item FROM sales
----
item
cake

TRUNCATE TABLE sales; SELECT count(*) AS n FROM sales
----
n
0

TRUNCATE TABLE nope
----
error: Unknown table 'd.nope'

DROP TABLE sales; SHOW TABLES
----
Tables_in_d
plain
regions

DROP TABLE sales
----
error: Unknown table 'd.sales'

DROP TABLE IF EXISTS sales
----
ok

DESC nope
----
error: Unknown table 'd.nope'
