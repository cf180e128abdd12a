"""``ix_customer_role_phase_kind``: role rows by phase and kind, with the
customer. The churn-risk list (crmgraph.analytics.churn) scores every
customer retained or expanding, a quarter of them: its candidates (the
customers whose primary role is in the churn phases, of one kind or all)
are then an index-only scan joined with ``ix_customer_active_id``
(migration 0040), and the customers holding such a role, whose ratings it
reads, one index-only scan; ``customer_role_phase`` (the phase alone) read
each of those role rows from the table (1,183 of 2,366 pages at 100,000
customers). Built without stopping writes on PostgreSQL
(``index_migration``)."""

from crmgraph.db.migrate import Index, index_migration

ID = "2026-12-07T02:15:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "churn candidates by phase and kind"

PHASE_KIND_INDEX = Index("ix_customer_role_phase_kind", "customer_role", "(phase, kind, customer)")
forwards = index_migration(ID, DESCRIPTION, [PHASE_KIND_INDEX])
