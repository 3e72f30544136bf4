# String columns reach DataFusion as Utf8View (dictionary-encoded segments decode without copying
# the strings) and users as VARCHAR/Utf8: GROUP BY, filters, joins and INSERT ... SELECT give the
# same rows as on plain strings, NULLs included, short (inline) and long values alike.

CREATE DATABASE s; USE s
----
ok

CREATE TABLE ev (id INT NOT NULL, region VARCHAR(40), amount DOUBLE) DUPLICATE KEY(id)
DISTRIBUTED BY HASH(id) BUCKETS 2
----
ok

# 3000 rows over four values and NULL: the segments' sample picks a dictionary for `region`.
INSERT INTO ev SELECT CAST(value AS INT),
  CASE value % 5 WHEN 0 THEN 'north' WHEN 1 THEN 'south' WHEN 2 THEN 'a region name over twelve bytes'
    WHEN 3 THEN '' ELSE NULL END,
  CAST(value % 7 AS DOUBLE)
FROM generate_series(1, 3000)
----
affected 3000

DESC ev
----
Field,Type,Null,Key,Default,Extra
id,INT,NO,true,NULL,
region,VARCHAR(40),YES,false,NULL,
amount,DOUBLE,YES,false,NULL,

SELECT region, count(*) AS n, sum(amount) AS s FROM ev GROUP BY region ORDER BY region
----
region,n,s
NULL,600,1799.0
,600,1801.0
a region name over twelve bytes,600,1796.0
north,600,1804.0
south,600,1798.0

SELECT count(*) AS n FROM ev WHERE region = 'a region name over twelve bytes'
----
n
600

SELECT count(*) AS n FROM ev WHERE region IN ('north', 'south') AND id <= 10
----
n
4

SELECT count(DISTINCT region) AS d, min(region) AS lo, max(region) AS hi FROM ev
----
d,lo,hi
4,,south

SELECT upper(region) AS u, length(region) AS l FROM ev WHERE id IN (1, 2, 3, 4, 5) ORDER BY id
----
u,l
SOUTH,5
A REGION NAME OVER TWELVE BYTES,31
,0
NULL,NULL
NORTH,5

SELECT a.id, b.region FROM ev a JOIN ev b ON a.region = b.region WHERE a.id = 2 AND b.id < 20 ORDER BY b.id
----
id,region
2,a region name over twelve bytes
2,a region name over twelve bytes
2,a region name over twelve bytes
2,a region name over twelve bytes

SELECT region FROM ev WHERE id = 1 UNION ALL SELECT 'literal' ORDER BY region
----
region
literal
south

CREATE TABLE copy (region VARCHAR(40), n BIGINT) DUPLICATE KEY(region)
DISTRIBUTED BY HASH(region) BUCKETS 1
----
ok

INSERT INTO copy SELECT region, count(*) FROM ev GROUP BY region
----
affected 5

SELECT region, n FROM copy ORDER BY region
----
region,n
NULL,600
,600
a region name over twelve bytes,600
north,600
south,600
