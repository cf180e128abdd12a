"""``duplicate_pair.kind_a`` / ``kind_b``: the kinds of the pair's two
customers, so that ``duplicates(kind:)`` reads a page by an index in the
list's order instead of joining every stored pair to its two customers.
Written with the pairs (crmgraph.dedupe.matching); a conversion to another
type refreshes the customer's pairs like any write that changes its scoring.

Raw DDL, like crmgraph_0020: the columns are added, filled from ``customer``,
then indexed. SQLite adds a NOT NULL column only with a default."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-24T14:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "duplicate pair kinds"

SIDES = ("a", "b")

INDEXES = tuple(
    # a kind's pairs on one side, in the list's order (read backwards, as the score index)
    f"CREATE INDEX ix_duplicate_pair_kind_{side} "
    f"ON duplicate_pair (kind_{side}, score, customer_a, customer_b)"
    for side in SIDES
)


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="crmgraph", description=DESCRIPTION)

    async def add() -> None:
        engine = engine_finder()
        for side in SIDES:
            await engine.run_ddl(
                f"ALTER TABLE duplicate_pair ADD COLUMN kind_{side} VARCHAR(64) NOT NULL DEFAULT ''"
            )
        await engine.run_ddl(
            "UPDATE duplicate_pair SET "
            "kind_a = (SELECT c.kind FROM customer c WHERE c.id = duplicate_pair.customer_a), "
            "kind_b = (SELECT c.kind FROM customer c WHERE c.id = duplicate_pair.customer_b)"
        )
        for statement in INDEXES:
            await engine.run_ddl(statement)
        if engine.engine_type == "postgres":
            await engine.run_ddl("ANALYZE duplicate_pair")

    async def drop() -> None:
        engine = engine_finder()
        for side in SIDES:
            await engine.run_ddl(f"DROP INDEX IF EXISTS ix_duplicate_pair_kind_{side}")
            await engine.run_ddl(f"ALTER TABLE duplicate_pair DROP COLUMN kind_{side}")

    manager.add_raw(add)
    manager.add_raw_backwards(drop)
    return manager
