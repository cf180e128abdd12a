"""Folded names and e-mails (crmgraph.db.text_keys), so that search matches
in any script and case and ordering by name sets accents aside, the same on
both engines:

- ``customer.name_sort``: the order names are read in (folded name, then the
  name), compared byte by byte: ``COLLATE "C"`` on PostgreSQL, SQLite's
  default BINARY, both code point order as in Python. Indexed with the id,
  the keyset order of ``customers(orderBy: {field: NAME})``; the index on
  (name, id) it replaces goes.
- ``customer.name_folded``, ``customer.email_folded``, ``contact.name_folded``,
  ``contact.email_folded``: what ``search`` and ``contactSearch`` match with
  ``LIKE``; a customer's contacts are listed by ``name_folded`` (then id).
  Binary too, so no column compares by the database's locale.

Every existing row is filled here, in Python, as every write fills them.
Name matching keys changed too (names in every script are transliterated,
crmgraph.db.normalize), so the match keys and the stored duplicate pairs
are rebuilt, as crmgraph_0014 foresaw.

Raw DDL, like crmgraph_0024: columns added, filled, then indexed. SQLite adds
a NOT NULL column only with a default."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

from crmgraph.db.engine import Database
from crmgraph.db.match_keys import rebuild_duplicate_pairs, rebuild_match_keys
from crmgraph.db.text_keys import refresh_text_keys

ID = "2026-12-06T13:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "folded names"

BINARY = {"postgres": ' COLLATE "C"', "sqlite": ""}

COLUMNS = (
    ("customer", "name_sort", "TEXT{binary} NOT NULL DEFAULT ''"),
    ("customer", "name_folded", "TEXT{binary} NOT NULL DEFAULT ''"),
    ("customer", "email_folded", "TEXT{binary}"),
    ("contact", "name_folded", "TEXT{binary} NOT NULL DEFAULT ''"),
    ("contact", "email_folded", "TEXT{binary}"),
)


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="crmgraph", description=DESCRIPTION)

    async def add() -> None:
        engine = engine_finder()
        binary = BINARY[engine.engine_type]
        for table, column, definition in COLUMNS:
            await engine.run_ddl(
                f"ALTER TABLE {table} ADD COLUMN {column} {definition.format(binary=binary)}"
            )
        db = Database(engine, ())
        for table in ("customer", "contact"):
            await refresh_text_keys(db, table)
        await engine.run_ddl("CREATE INDEX ix_customer_name_sort ON customer (name_sort, id)")
        await engine.run_ddl("DROP INDEX IF EXISTS ix_customer_name_id")
        await rebuild_match_keys(db)
        await rebuild_duplicate_pairs(db)
        if engine.engine_type == "postgres":
            await engine.run_ddl("ANALYZE customer")
            await engine.run_ddl("ANALYZE contact")

    async def drop() -> None:
        engine = engine_finder()
        await engine.run_ddl("DROP INDEX IF EXISTS ix_customer_name_sort")
        await engine.run_ddl("CREATE INDEX ix_customer_name_id ON customer (name, id)")
        for table, column, _ in reversed(COLUMNS):
            await engine.run_ddl(f"ALTER TABLE {table} DROP COLUMN {column}")

    manager.add_raw(add)
    manager.add_raw_backwards(drop)
    return manager
