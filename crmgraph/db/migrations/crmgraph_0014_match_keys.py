"""``customer_match_key``: the blocking keys of duplicate matching
(crmgraph.db.match_keys), filled here for the customers already written.

Raw DDL, like crmgraph_0012: piccolo runs a migration's raw steps before its
table operations, and the backfill needs the table first. The keys are
derived data: a later change to how they are computed ships a migration that
calls ``rebuild_match_keys`` again."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

from crmgraph.db.engine import Database
from crmgraph.db.match_keys import NOT_DELETED, rebuild_match_keys

ID = "2026-11-23T20:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "match keys"

PRIMARY_KEYS = {"sqlite": "INTEGER PRIMARY KEY NOT NULL", "postgres": "SERIAL PRIMARY KEY"}

TABLE = """CREATE TABLE customer_match_key (
    id {pk},
    customer INTEGER NOT NULL REFERENCES customer (id) ON DELETE CASCADE,
    key_type VARCHAR(16) NOT NULL,
    key_value VARCHAR(400) NOT NULL
)"""

INDEXES = (
    # the lookup: who holds this key; the customer column makes pairing index-only
    "CREATE INDEX ix_customer_match_key_lookup ON customer_match_key "
    "(key_type, key_value, customer)",
    # a customer's own keys, to replace them and to read pairs in customer order
    "CREATE INDEX ix_customer_match_key_customer ON customer_match_key (customer)",
)


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="crmgraph", description=DESCRIPTION)

    async def create() -> None:
        engine = engine_finder()
        await engine.run_ddl(TABLE.format(pk=PRIMARY_KEYS[engine.engine_type]))
        for statement in INDEXES:
            await engine.run_ddl(statement)
        # customer.erased_at comes with migration 0022
        await rebuild_match_keys(Database(engine, ()), live=NOT_DELETED)

    async def drop() -> None:
        await engine_finder().run_ddl("DROP TABLE IF EXISTS customer_match_key")

    manager.add_raw(create)
    manager.add_raw_backwards(drop)
    return manager
