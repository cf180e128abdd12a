"""``stage_change``'s phase columns (``crmgraph.db.stays.PHASE_COLUMNS``) and
``stage_phase``, the catalog's stages they were computed with.

Raw DDL, like crmgraph_0010. Nothing is computed here: migrations do not know
the catalog, so ``stage_phase`` starts empty, and the first funnel finds it
different from the running catalog and computes every row
(``crmgraph.analytics.funnel.current_stage_phases``). The partial index finds
the few customers the funnel counts one by one; on PostgreSQL, statistics on
the columns the funnel groups by."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-25T10:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "stage phases"

COLUMNS = (
    ("phase_prev_at", "TIMESTAMPTZ NULL"),
    ("advanced_at", "TIMESTAMPTZ NULL"),
    ("exited_at", "TIMESTAMPTZ NULL"),
    ("irregular", "SMALLINT NOT NULL DEFAULT 0"),
)

# how many (type, stage, next stage) there are: the funnel groups the history
# by them, and PostgreSQL multiplies the columns' counts without it (about
# 40 x 40 x 10), then sorts rather than hashes
STATISTICS = (
    "CREATE STATISTICS stage_change_moves (ndistinct) ON kind, to_stage, next_stage "
    "FROM stage_change"
)


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="crmgraph", description=DESCRIPTION)

    async def add() -> None:
        engine = engine_finder()
        await engine.run_ddl(
            "CREATE TABLE stage_phase (kind VARCHAR(64) NOT NULL, stage VARCHAR(64) NOT NULL, "
            "phase_no SMALLINT NOT NULL, phase_rank SMALLINT NOT NULL, "
            "is_exit SMALLINT NOT NULL, derivation SMALLINT NOT NULL, PRIMARY KEY (kind, stage))"
        )
        for name, sql_type in COLUMNS:
            await engine.run_ddl(f"ALTER TABLE stage_change ADD COLUMN {name} {sql_type}")
        await engine.run_ddl(
            "CREATE INDEX ix_stage_change_irregular ON stage_change (customer) WHERE irregular = 1"
        )
        if engine.engine_type == "postgres":
            await engine.run_ddl(STATISTICS)
            await engine.run_ddl("ANALYZE stage_change")

    async def drop() -> None:
        engine = engine_finder()
        if engine.engine_type == "postgres":
            await engine.run_ddl("DROP STATISTICS IF EXISTS stage_change_moves")
        await engine.run_ddl("DROP INDEX IF EXISTS ix_stage_change_irregular")
        for name, _ in COLUMNS:
            await engine.run_ddl(f"ALTER TABLE stage_change DROP COLUMN {name}")
        await engine.run_ddl("DROP TABLE stage_phase")

    manager.add_raw(add)
    manager.add_raw_backwards(drop)
    return manager
