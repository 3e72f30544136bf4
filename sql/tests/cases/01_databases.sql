# CREATE/DROP DATABASE, USE, SHOW DATABASES, SHOW TABLES and their errors.

CREATE DATABASE shop
----
ok

CREATE DATABASE shop
----
error: Can't create database 'shop'; database exists

CREATE DATABASE IF NOT EXISTS shop
----
ok

CREATE DATABASE other; SHOW DATABASES
----
Database
other
shop

DROP DATABASE other; SHOW DATABASES
----
Database
shop

DROP DATABASE other
----
error: Unknown database 'other'

DROP DATABASE IF EXISTS other
----
ok

USE nowhere
----
error: Unknown database 'nowhere'

SHOW TABLES
----
error: No database selected

CREATE TABLE t (k INT)
----
error: No database selected

SELECT * FROM t
----
error: No database selected

USE shop; SHOW TABLES
----
Tables_in_shop

CREATE TABLE t (k INT); SHOW TABLES FROM shop
----
Tables_in_shop
t

SHOW TABLES FROM nowhere
----
error: Unknown database 'nowhere'

SELEC 1
----
error: line 1, column 1

SELECT 1;
  DROP TABLE
----
error: line 2, column 13
