"""Merging customers (crmgraph.dedupe.merge): ``customer.merged_into`` points a
merged customer at the one that absorbed it, so its global ID keeps resolving;
``customer_merge`` records each merge with everything its undo needs: both
customers' before-images, the ids of the rows moved per table, what plugins
asked to keep, and the survivor's version right after the merge.

Raw DDL, like crmgraph_0012: the same statements on SQLite and PostgreSQL but
the auto-increment primary key."""

from crmgraph.db.migrate import raw_migration

ID = "2026-11-23T20:10:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "customer merges"

# {pk}: the engine's auto-increment primary key
TABLE = """CREATE TABLE customer_merge (
    id {pk},
    survivor INTEGER NOT NULL REFERENCES customer (id) ON DELETE CASCADE,
    merged INTEGER NOT NULL REFERENCES customer (id) ON DELETE CASCADE,
    merged_by INTEGER NULL REFERENCES crm_user (id) ON DELETE SET NULL,
    merged_at TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP,
    reason TEXT NULL,
    field_choices TEXT NOT NULL DEFAULT '{{}}',
    survivor_before TEXT NOT NULL DEFAULT '{{}}',
    merged_before TEXT NOT NULL DEFAULT '{{}}',
    moved TEXT NOT NULL DEFAULT '{{}}',
    moved_counts TEXT NOT NULL DEFAULT '{{}}',
    plugin_state TEXT NOT NULL DEFAULT '{{}}',
    survivor_version INTEGER NOT NULL,
    audit_mark INTEGER NOT NULL DEFAULT 0,
    undone_at TIMESTAMPTZ NULL,
    undone_by INTEGER NULL REFERENCES crm_user (id) ON DELETE SET NULL
)"""

STATEMENTS = (
    # a plain integer: SQLite cannot drop a column a foreign key names (backwards)
    "ALTER TABLE customer ADD COLUMN merged_into INTEGER NULL",
    # Customer.merges and the merges a survivor is part of, newest first
    "CREATE INDEX ix_customer_merge_survivor ON customer_merge (survivor, id)",
    "CREATE INDEX ix_customer_merge_merged ON customer_merge (merged, id)",
)

PRIMARY_KEYS = {"sqlite": "INTEGER PRIMARY KEY NOT NULL", "postgres": "SERIAL PRIMARY KEY"}


def create_statements(engine_type: str) -> list[str]:
    return [TABLE.format(pk=PRIMARY_KEYS[engine_type]), *STATEMENTS]


forwards = raw_migration(
    ID,
    DESCRIPTION,
    create_statements,
    ["DROP TABLE IF EXISTS customer_merge", "ALTER TABLE customer DROP COLUMN merged_into"],
)
