"""``interaction_day`` and ``purchase_month`` as delta rows
(crmgraph.db.delta_fold, crmgraph.db.tallies.DeltaRollup): migrations
0042/0043 kept one counter row per key, upserted by the triggers, so
concurrent writers of rated or bought interactions of one day, channel,
outcome and direction (or of one month's first purchases) queued on the
same row lock. Each counter row is copied as a delta row into
``interaction_day_delta`` / ``purchase_month_delta`` (ids, an index by key
that is not unique), the old tables become views of the sums per key under
the same names, and the triggers insert delta rows that a fold every 256th
row sums. Nothing is counted again from ``interaction``: the cost is a copy
of the tallies' rows (their size, not the interactions').

A database made after 0042/0043 changed already has the delta tables (they
make them now), so each tally is converted only where its name is still a
table. Nothing to reverse: 0042/0043's reversal drops the delta tables."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

from crmgraph.db import activity

ID = "2026-12-07T05:03:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "interaction days and purchase months as deltas"

SHAPE = {
    "postgres": "SELECT relkind::text AS kind FROM pg_class WHERE oid = to_regclass('{}')",
    "sqlite": "SELECT type AS kind FROM sqlite_master WHERE name = '{}'",
}
COUNTERS = {"r", "table"}  # a counter table, not yet a view of deltas


async def convert() -> None:
    engine = engine_finder()
    assert engine is not None
    kind = "postgres" if engine.engine_type == "postgres" else "sqlite"
    for rollup in (activity.DAYS, activity.BUYERS):
        found = await engine.run_ddl(SHAPE[kind].format(rollup.view))
        if found and found[0]["kind"] in COUNTERS:
            for statement in rollup.from_counters(engine.engine_type):
                await engine.run_ddl(statement)


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="crmgraph", description=DESCRIPTION)
    manager.add_raw(convert)
    return manager
