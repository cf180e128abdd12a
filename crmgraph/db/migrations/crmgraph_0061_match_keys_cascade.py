"""PostgreSQL: a customer's match keys go with it by triggers instead of a
foreign key (``customer_match_key.customer``, migration 0014: ``REFERENCES
customer (id) ON DELETE CASCADE``).

Why (issue 28): the foreign key checked every key inserted, a lookup of the
customer and a lock on its row, 6 us a key (72,000 keys inserted into the 1M
database in rolled-back transactions: 19.8 us a key with it, 13.8 without),
and an imported customer has 3.6 keys: some 6% of what an import's
PostgreSQL spends a row. The check never fails: the keys are derived data,
written only by crmgraph.db.match_keys, for customers it has just written or
read in the same transaction, and crmgraph deletes no customer row (a delete
sets ``deleted_at``; only SQL from outside removes one, and a key written
while such a DELETE commits is the one case the check's lock covered). What
the foreign key was for is the cascade, and two triggers keep it: a
statement's deleted customers take their keys along (``AFTER DELETE``, the
deleted rows as a transition table, one DELETE per statement where the
foreign key ran one per row), and ``TRUNCATE customer`` empties the keys
(the foreign key made it refuse without ``CASCADE``).

SQLite keeps the foreign key (its checks cost little; dropping one means
rebuilding the table). Reversed, the foreign key comes back (``NOT VALID``,
then validated, which reads the keys once without stopping writes)."""

from crmgraph.db.migrate import postgres_only, raw_migration

ID = "2026-12-08T13:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "match keys cascade"

CONSTRAINT = "customer_match_key_customer_fkey"
FORGET = "crmgraph_forget_match_keys"
CLEAR = "crmgraph_clear_match_keys"

CREATE = [
    f"""CREATE OR REPLACE FUNCTION {FORGET}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM customer_match_key k USING gone g WHERE k.customer = g.id;
  RETURN NULL;
END $$""",
    f"""CREATE OR REPLACE FUNCTION {CLEAR}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  TRUNCATE customer_match_key;
  RETURN NULL;
END $$""",
    "DROP TRIGGER IF EXISTS customer_match_keys_gone ON customer",
    "CREATE TRIGGER customer_match_keys_gone AFTER DELETE ON customer "
    f"REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION {FORGET}()",
    "DROP TRIGGER IF EXISTS customer_match_keys_cleared ON customer",
    "CREATE TRIGGER customer_match_keys_cleared AFTER TRUNCATE ON customer "
    f"FOR EACH STATEMENT EXECUTE FUNCTION {CLEAR}()",
    f"ALTER TABLE customer_match_key DROP CONSTRAINT IF EXISTS {CONSTRAINT}",
]

DROP = [
    # no key of a missing customer can be left (the triggers), but a reversal
    # must not fail on one: they would be the foreign key's violations
    "DELETE FROM customer_match_key k WHERE NOT EXISTS "
    "(SELECT 1 FROM customer c WHERE c.id = k.customer)",
    f"ALTER TABLE customer_match_key ADD CONSTRAINT {CONSTRAINT} FOREIGN KEY (customer) "
    "REFERENCES customer (id) ON DELETE CASCADE NOT VALID",
    f"ALTER TABLE customer_match_key VALIDATE CONSTRAINT {CONSTRAINT}",
    "DROP TRIGGER IF EXISTS customer_match_keys_gone ON customer",
    "DROP TRIGGER IF EXISTS customer_match_keys_cleared ON customer",
    f"DROP FUNCTION IF EXISTS {FORGET}()",
    f"DROP FUNCTION IF EXISTS {CLEAR}()",
]


forwards = raw_migration(ID, DESCRIPTION, postgres_only(CREATE), postgres_only(DROP))
