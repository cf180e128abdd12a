"""``stage_change``'s phase columns (``crmgraph.db.stays.PHASE_COLUMNS``) and
``stage_phase``, the catalog's stages they were computed with.

Raw DDL, like crmgraph_0010. Nothing is computed here: migrations do not know
the catalog, so ``stage_phase`` starts empty, and the first funnel finds it
different from the running catalog and computes every row
(``crmgraph.analytics.funnel.current_stage_phases``). The partial index finds
the few customers the funnel counts one by one; on PostgreSQL, statistics on
the columns the funnel groups by."""

from crmgraph.db.migrate import raw_migration

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


STAGE_PHASE = (
    "CREATE TABLE stage_phase (kind VARCHAR(64) NOT NULL, stage VARCHAR(64) NOT NULL, "
    "phase_no SMALLINT NOT NULL, phase_rank SMALLINT NOT NULL, "
    "is_exit SMALLINT NOT NULL, derivation SMALLINT NOT NULL, PRIMARY KEY (kind, stage))"
)


def create_statements(engine_type: str) -> list[str]:
    statements = [
        STAGE_PHASE,
        *(f"ALTER TABLE stage_change ADD COLUMN {name} {sql_type}" for name, sql_type in COLUMNS),
        "CREATE INDEX ix_stage_change_irregular ON stage_change (customer) WHERE irregular = 1",
    ]
    if engine_type == "postgres":
        statements += [STATISTICS, "ANALYZE stage_change"]
    return statements


def drop_statements(engine_type: str) -> list[str]:
    postgres = engine_type == "postgres"
    return [
        *(["DROP STATISTICS IF EXISTS stage_change_moves"] if postgres else []),
        "DROP INDEX IF EXISTS ix_stage_change_irregular",
        *(f"ALTER TABLE stage_change DROP COLUMN {name}" for name, _ in COLUMNS),
        "DROP TABLE stage_phase",
    ]


forwards = raw_migration(ID, DESCRIPTION, create_statements, drop_statements)
