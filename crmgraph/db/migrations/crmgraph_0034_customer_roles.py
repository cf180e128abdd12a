"""``customer_role.attributes``, ``added_at`` and ``ended_at``: a party's
further roles (crmgraph.operations.roles). A row of another kind than the
customer's primary one is a held role while ``added_at`` is set and
``ended_at`` is not; rows a conversion left behind (both NULL) stay history.
A role's typed attributes are kept on its own row, validated by its kind's
plugin; the primary kind's stay in ``customer.attributes``.

Raw DDL, like crmgraph_0010: the same text on both engines."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-06T21:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "customer roles"

COLUMNS = (
    ("attributes", "JSON NOT NULL DEFAULT '{}'"),
    ("added_at", "TIMESTAMPTZ NULL"),
    ("ended_at", "TIMESTAMPTZ NULL"),
)


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="crmgraph", description=DESCRIPTION)

    async def add_columns() -> None:
        engine = engine_finder()
        for name, sql_type in COLUMNS:
            await engine.run_ddl(f"ALTER TABLE customer_role ADD COLUMN {name} {sql_type}")

    async def drop_columns() -> None:
        engine = engine_finder()
        for name, _ in COLUMNS:
            await engine.run_ddl(f"ALTER TABLE customer_role DROP COLUMN {name}")

    manager.add_raw(add_columns)
    manager.add_raw_backwards(drop_columns)
    return manager
