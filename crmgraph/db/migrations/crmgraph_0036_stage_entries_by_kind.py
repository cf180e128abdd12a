"""``ix_stage_change_kind_at``: the stage history by type and time, for
cohorts per type (crmgraph.analytics.cohorts, issue 24): a party joins a
type's cohort at its first entry into that type's lifecycle (a client who
becomes a guarantor in March is in March's guarantor cohort), so a cohort
over a period reads that type's entries in the period and, to leave out the
parties that had entered the type before, the type's earlier entries, both
from this index alone (``customer`` is in it). Without it both were scans of
the whole history. Raw DDL, as crmgraph_0031; the same text on both engines."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-06T23:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "stage entries by kind"

KIND_AT_INDEX = "CREATE INDEX ix_stage_change_kind_at ON stage_change (kind, at, customer)"


def create_statements(engine_type: str) -> list[str]:
    if engine_type != "postgres":
        return [KIND_AT_INDEX]
    return [KIND_AT_INDEX, "ANALYZE stage_change"]


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="crmgraph", description=DESCRIPTION)

    async def create() -> None:
        engine = engine_finder()
        for statement in create_statements(engine.engine_type):
            await engine.run_ddl(statement)

    async def drop() -> None:
        await engine_finder().run_ddl("DROP INDEX ix_stage_change_kind_at")

    manager.add_raw(create)
    manager.add_raw_backwards(drop)
    return manager
