"""``duplicate_pair``: every likely duplicate pair of live customers, stored
so that ``duplicates`` reads a page by an index instead of scoring the pairs
of whole blocks per request (crmgraph.db.match_keys keeps it in the
transaction of every write that rewrites match keys). Filled here from the
keys already written.

Raw DDL, like crmgraph_0014: piccolo runs a migration's raw steps before its
table operations, and the backfill needs the table first."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

from crmgraph.db.engine import Database
from crmgraph.db.match_keys import NOT_DELETED, rebuild_duplicate_pairs

ID = "2026-11-24T10:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "duplicate pairs"

FLOAT = {"sqlite": "REAL", "postgres": "DOUBLE PRECISION"}

TABLE = """CREATE TABLE duplicate_pair (
    customer_a INTEGER NOT NULL REFERENCES customer (id) ON DELETE CASCADE,
    customer_b INTEGER NOT NULL REFERENCES customer (id) ON DELETE CASCADE,
    score {float} NOT NULL,
    reasons VARCHAR(400) NOT NULL,
    PRIMARY KEY (customer_a, customer_b),
    CHECK (customer_a < customer_b)
)"""

INDEXES = (
    # the list's order: best first, then by ids (a keyset page reads it backwards)
    "CREATE INDEX ix_duplicate_pair_score ON duplicate_pair (score, customer_a, customer_b)",
    # a customer's pairs, to replace them (customer_a has the primary key)
    "CREATE INDEX ix_duplicate_pair_customer_b ON duplicate_pair (customer_b)",
)


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="crmgraph", description=DESCRIPTION)

    async def create() -> None:
        engine = engine_finder()
        await engine.run_ddl(TABLE.format(float=FLOAT[engine.engine_type]))
        for statement in INDEXES:
            await engine.run_ddl(statement)
        # customer.erased_at comes with migration 0022
        # the pairs' kinds come with migration 0024
        await rebuild_duplicate_pairs(Database(engine, ()), live=NOT_DELETED, kinds=False)

    async def drop() -> None:
        await engine_finder().run_ddl("DROP TABLE IF EXISTS duplicate_pair")

    manager.add_raw(create)
    manager.add_raw_backwards(drop)
    return manager
