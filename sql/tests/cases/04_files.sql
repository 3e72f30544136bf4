# StarRocks' FILES() table function over a parquet and a csv file written by the harness.

CREATE DATABASE f; USE f
----
ok

CREATE TABLE people (id INT, name VARCHAR(10), score DOUBLE) DUPLICATE KEY(id)
----
ok

SELECT * FROM FILES("path" = "$DIR/people.parquet", "format" = "parquet") ORDER BY id
----
id,name,score
1,ann,9.5
2,bob,7.25
3,cy,NULL

INSERT INTO people SELECT * FROM FILES("path" = "$DIR/people.parquet", "format" = "parquet")
----
affected 3

INSERT INTO people
SELECT id + 10, upper(name), score FROM files("path" = "$DIR/people.csv", "format" = "csv", "csv.skip_header" = "1")
----
affected 3

SELECT * FROM people ORDER BY id
----
id,name,score
1,ann,9.5
2,bob,7.25
3,cy,NULL
11,ANN,9.5
12,BOB,7.25
13,CY,NULL

SELECT count(*) AS n FROM FILES("path" = "$DIR/people.csv", "format" = "csv")
----
n
4

SELECT * FROM FILES("path" = "$DIR/people.parquet")
----
error: FILES() needs a "format" property

SELECT * FROM FILES("format" = "parquet")
----
error: FILES() needs a "path" property

SELECT * FROM FILES("path" = "$DIR/people.parquet", "format" = "orc")
----
error: FILES() format "orc" (parquet and csv are) is not supported

SELECT * FROM FILES("path" = "$DIR/missing.parquet", "format" = "parquet")
----
error: No files found at

SELECT * FROM FILES(path = "x")
----
error: line 1, column 21
