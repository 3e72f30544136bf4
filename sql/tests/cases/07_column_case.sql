# Column names are case-insensitive, as in StarRocks, and keep their declared spelling: DESC and
# SELECT * show it; a column reference is headed as written in the query, an alias as written.
# (Table names are case-sensitive in StarRocks; they are written as declared here.)

CREATE DATABASE cc; USE cc
----
ok

CREATE TABLE Visits (UserId INT, PageName VARCHAR(20), visitCount BIGINT) DUPLICATE KEY(UserId)
DISTRIBUTED BY HASH(USERID) BUCKETS 2
----
ok

DESC Visits
----
Field,Type,Null,Key,Default,Extra
UserId,INT,YES,true,NULL,
PageName,VARCHAR(20),YES,false,NULL,
visitCount,BIGINT,YES,false,NULL,

INSERT INTO Visits (USERID, pagename, VisitCount) VALUES (1, 'home', 3), (2, 'cart', 5)
----
affected 2

INSERT INTO Visits (userid) VALUES (3)
----
affected 1

SELECT * FROM Visits ORDER BY userid
----
UserId,PageName,visitCount
1,home,3
2,cart,5
3,NULL,NULL

SELECT UserId, pagename AS PAGE FROM Visits WHERE PAGENAME = 'home'
----
UserId,PAGE
1,home

# NULL sorts as the smallest value, as in StarRocks: last in DESC.
SELECT pagename AS Page, sum(VISITCOUNT) AS Total FROM Visits GROUP BY PageName ORDER BY total DESC
----
Page,Total
cart,5
home,3
NULL,NULL

SELECT v.userid, W.PAGENAME FROM Visits v JOIN Visits w ON v.USERID = w.UserId WHERE v.userId < 2
----
userid,PAGENAME
1,home

WITH c AS (SELECT userid AS Id, visitcount FROM Visits) SELECT id, VisitCount FROM c WHERE ID = 2
----
id,VisitCount
2,5

SELECT x.Uid FROM (SELECT UserId AS uid FROM Visits) x ORDER BY x.UID
----
Uid
1
2
3

# An alias spelled like a column, in another case: the alias is matched case-insensitively too.
SELECT n FROM (SELECT count(*) AS VISITCOUNT FROM Visits) s JOIN (SELECT visitcount AS n FROM Visits WHERE userid = 1) t ON s.visitcount = t.N
----
n
3

CREATE TABLE Pages (PageName VARCHAR(20), Title VARCHAR(20)) DUPLICATE KEY(PAGENAME);
INSERT INTO Pages VALUES ('home', 'Welcome'), ('cart', 'Your cart')
----
affected 2

SELECT TITLE, userid FROM Visits JOIN Pages USING (PAGENAME) ORDER BY UserID
----
TITLE,userid
Welcome,1
Your cart,2

# Qualified names take the spelling of their own table.
CREATE TABLE Stats (userid INT, Score INT) DUPLICATE KEY(userid);
INSERT INTO Stats VALUES (1, 10), (2, 20)
----
affected 2

SELECT v.UserId, s.userId, S.SCORE FROM Visits v JOIN Stats s ON v.userid = s.USERID ORDER BY V.USERID
----
UserId,userId,SCORE
1,1,10
2,2,20

SELECT count(*) AS n FROM Visits WHERE userid IN (1, 2)
----
n
2

SELECT nope FROM Visits
----
error: nope

INSERT INTO Visits (userid, USERID) VALUES (1, 1)
----
error: Column 'USERID' specified twice

CREATE TABLE twice (a INT, A INT)
----
error: Duplicate column name 'A'

INSERT INTO Visits SELECT userId + 10, PAGENAME, visitcount FROM Visits WHERE USERID = 1;
SELECT UserId, pageName FROM Visits WHERE userid > 10
----
UserId,pageName
11,home

# Backquoted names too, as in StarRocks.
SELECT `userid`, `PAGENAME` FROM Visits WHERE `USERID` = 1
----
userid,PAGENAME
1,home
