-- SPDX-License-Identifier: MIT
-- workload.sql: sqlite3 builds and queries tables of 100,000 rows; the
-- output is deterministic (every query has a total ORDER BY).
PRAGMA cache_size = -20000;
PRAGMA journal_mode = MEMORY;
PRAGMA temp_store = MEMORY;

CREATE TABLE item (
  id INTEGER PRIMARY KEY,
  grp INTEGER NOT NULL,
  name TEXT NOT NULL,
  price REAL NOT NULL,
  payload BLOB
);
CREATE TABLE grp (id INTEGER PRIMARY KEY, label TEXT NOT NULL, weight INTEGER NOT NULL);

BEGIN;
WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < 100000)
INSERT INTO item (id, grp, name, price, payload)
SELECT n,
       (n * 7919) % 997,
       printf('item-%06d-%s', (n * 104729) % 1000003, substr('abcdefghijklmnopqrstuvwxyz', 1 + n % 26, 1 + n % 11)),
       ((n * 31337) % 100000) / 100.0,
       zeroblob(n % 300)
FROM seq;
WITH RECURSIVE g(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM g WHERE n < 996)
INSERT INTO grp (id, label, weight) SELECT n, 'group-' || n, (n * 37) % 101 FROM g;
COMMIT;

CREATE INDEX item_grp ON item(grp);
CREATE INDEX item_name ON item(name);
CREATE INDEX item_price ON item(price, id);

SELECT 'rows', count(*), sum(length(payload)), round(sum(price), 2) FROM item;
SELECT 'distinct names', count(DISTINCT name) FROM item;

-- group by with a join
SELECT g.label, count(*) AS c, round(avg(i.price), 3), min(i.name), max(i.name)
FROM item i JOIN grp g ON g.id = i.grp
GROUP BY g.id
ORDER BY c DESC, g.id
LIMIT 15;

-- order by on an index and on an expression
SELECT id, name, price FROM item ORDER BY price DESC, id LIMIT 10;
SELECT id, name FROM item ORDER BY substr(name, 13) || name, id LIMIT 10;

-- window functions
SELECT grp, id, price, rnk FROM (
  SELECT grp, id, price, rank() OVER (PARTITION BY grp ORDER BY price DESC, id) AS rnk FROM item
) WHERE rnk <= 2 AND grp < 5 ORDER BY grp, rnk;

-- self join and subqueries
SELECT a.grp, count(*) FROM item a JOIN item b ON a.grp = b.grp AND a.id < b.id AND b.id - a.id < 2000
WHERE a.grp < 20 GROUP BY a.grp ORDER BY a.grp;
SELECT g.weight, count(*), sum(i.price > 500) FROM grp g LEFT JOIN item i ON i.grp = g.id
GROUP BY g.weight HAVING count(*) > 900 ORDER BY g.weight LIMIT 12;

-- updates, deletes and a rebuild
UPDATE item SET name = name || '-upd', payload = zeroblob(1000) WHERE id % 10 = 0;
DELETE FROM item WHERE id % 7 = 3;
SELECT 'after update', count(*), sum(length(payload)), sum(name LIKE '%-upd') FROM item;
CREATE TABLE summary AS
  SELECT grp, group_concat(id, ',') AS ids, count(*) AS c FROM (SELECT grp, id FROM item ORDER BY grp, id) GROUP BY grp;
SELECT grp, c, length(ids), substr(ids, 1, 40) FROM summary ORDER BY c DESC, grp LIMIT 5;
VACUUM;
PRAGMA integrity_check;
SELECT 'json', json_group_array(json_object('id', id, 'n', name)) FROM (SELECT id, name FROM item ORDER BY id LIMIT 5);
SELECT 'end', count(*) FROM item;
