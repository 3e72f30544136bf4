# INSERT VALUES and INSERT SELECT, and SELECT on DataFusion: joins, aggregates, ORDER BY, LIMIT.

CREATE DATABASE shop; USE shop
----
ok

CREATE TABLE orders (
  id BIGINT NOT NULL,
  day DATE,
  customer INT,
  amount DECIMAL(10, 2),
  note VARCHAR(10)
) DUPLICATE KEY(id)
PARTITION BY RANGE(id) (
  PARTITION p0 VALUES LESS THAN ("100"),
  PARTITION p1 VALUES LESS THAN ("200"),
  PARTITION p2 VALUES LESS THAN (MAXVALUE)
)
DISTRIBUTED BY HASH(id) BUCKETS 3
----
ok

INSERT INTO orders VALUES
  (1, "2025-01-01", 10, 12.50, "first"),
  (150, "2025-01-02", 20, "7.25", NULL),
  (250, '2025-01-03', 10, 100, 'big')
----
affected 3

INSERT INTO orders (id, customer) VALUES (2, 30)
----
affected 1

SELECT * FROM orders ORDER BY id
----
id,day,customer,amount,note
1,2025-01-01,10,12.50,first
2,NULL,30,NULL,NULL
150,2025-01-02,20,7.25,NULL
250,2025-01-03,10,100.00,big

INSERT INTO orders VALUES (3, "2025-01-01")
----
error: Inserted target column count: 5 doesn't match select/value column count: 2

INSERT INTO orders (id, nope) VALUES (4, 1)
----
error: Unknown column 'nope'

INSERT INTO orders (id, id) VALUES (4, 1)
----
error: Column 'id' specified twice

INSERT INTO orders (id) VALUES ("x")
----
error: cannot convert a value for column 'id'

INSERT INTO orders (customer) VALUES (1)
----
error: cannot insert into 'orders': Invalid argument error: Column 'id' is declared as non-nullable but contains null values

INSERT INTO orders (id, note) VALUES (5, "far too long for ten")
----
error: invalid value "far too long for ten" for VARCHAR(10): longer than 10 bytes (column note)

INSERT INTO nope VALUES (1)
----
error: Unknown table 'shop.nope'

CREATE TABLE customers (id INT, name VARCHAR(20)) DUPLICATE KEY(id);
INSERT INTO customers VALUES (10, "ann"), (20, "bob"), (30, "cy")
----
affected 3

SELECT c.name, count(*) AS orders, sum(o.amount) AS total
FROM orders o JOIN customers c ON o.customer = c.id
GROUP BY c.name ORDER BY c.name
----
name,orders,total
ann,2,112.50
bob,1,7.25
cy,1,NULL

SELECT id FROM orders WHERE id >= 100 AND id < 200
----
id
150

SELECT id FROM orders WHERE id BETWEEN 2 AND 150 ORDER BY id DESC LIMIT 2
----
id
150
2

SELECT id FROM orders WHERE id IN (1, 250) ORDER BY id
----
id
1
250

SELECT id, note FROM orders WHERE note = 'big'
----
id,note
250,big

SELECT count(*) AS n FROM orders WHERE day = '2025-01-01'
----
n
1

SELECT id FROM shop.orders WHERE customer IS NULL
----
id

SELECT max(amount) AS m FROM `orders`
----
m
100.00

CREATE TABLE big_orders LIKE orders
----
error: syntax error at line 1, column 25: expected '(', found 'LIKE'

CREATE TABLE archive (id BIGINT, amount DECIMAL(12, 2)) DUPLICATE KEY(id);
INSERT INTO archive SELECT id, amount FROM orders WHERE amount > 10
----
affected 2

SELECT * FROM archive ORDER BY id
----
id,amount
1,12.50
250,100.00

INSERT INTO archive (amount, id) SELECT 1.5, id * 1000 FROM orders WHERE id = 1
----
affected 1

SELECT * FROM archive ORDER BY id
----
id,amount
1,12.50
250,100.00
1000,1.50

INSERT INTO archive SELECT id FROM orders
----
error: Inserted target column count: 2 doesn't match select/value column count: 1

INSERT INTO archive SELECT note, id FROM orders WHERE note = 'big'
----
error: cannot convert a value for column 'id'

SELECT count(*) AS n FROM archive
----
n
3

INSERT INTO archive SELECT * FROM archive; SELECT count(*) AS n FROM archive
----
n
6

SELECT * FROM nope
----
error: nope

SELECT nope FROM orders
----
error: nope
