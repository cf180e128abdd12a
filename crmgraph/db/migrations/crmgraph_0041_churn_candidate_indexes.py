"""Two indexes for the churn-risk list (crmgraph.analytics.churn), which
scores every customer retained or expanding, a quarter of them:

- ``ix_customer_role_phase_kind``: role rows by phase and kind, with the
  customer, so the candidates (the customers whose primary role is in the
  churn phases, of one kind or all) are an index-only scan joined with
  ``ix_customer_active_id`` (migration 0040); ``customer_role_phase`` (the
  phase alone) read each role row from the table.
- ``ix_interaction_rated_customer``: the rated interactions by customer and
  time, with the rating: each candidate's ratings of the last two
  satisfaction windows are one probe of a narrow index (a third of the
  interactions, three columns) instead of ``ix_interaction_customer_analytics``
  (every interaction, seven columns: 747 MB at ten million interactions).

Raw DDL, as crmgraph_0031; the second is a partial index on both engines."""

from crmgraph.db.migrate import analyzed, raw_migration

ID = "2026-12-07T02:15:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "churn candidates and ratings by customer"

INDEXES = [
    "CREATE INDEX ix_customer_role_phase_kind ON customer_role (phase, kind, customer)",
    "CREATE INDEX ix_interaction_rated_customer ON interaction (customer, occurred_at) "
    "INCLUDE (satisfaction) WHERE satisfaction IS NOT NULL",
]
DROPS = ["DROP INDEX ix_interaction_rated_customer", "DROP INDEX ix_customer_role_phase_kind"]


def create_statements(engine_type: str) -> list[str]:
    """SQLite has no INCLUDE: its index holds the rating as a third column."""
    if engine_type == "postgres":
        return analyzed(INDEXES, "customer_role", "interaction")(engine_type)
    sqlite_rated = INDEXES[1].replace(") INCLUDE (satisfaction)", ", satisfaction)")
    return [INDEXES[0], sqlite_rated]


forwards = raw_migration(ID, DESCRIPTION, create_statements, DROPS)
