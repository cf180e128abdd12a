"""Drop the indexes no query needs, which every write of a customer, its role
and its stage changes kept up to date (issue 28: the CSV import writes each
of them per row). Each is either the leading columns of another index of its
table, which serves every query it served, or read by no query:

- ``customer_created_at`` / ``customer_updated_at``: (created_at) and
  (updated_at), the first column of ``ix_customer_created_at_id`` and
  ``ix_customer_updated_at_id`` (migration 0002), which list pages walk.
- ``customer_role_customer``: (customer), the first column of the unique
  ``ux_customer_role_customer_kind``, which the role join probes.
- ``customer_role_phase``: (phase), the first column of
  ``ix_customer_role_phase_kind`` (migration 0041).
- ``stage_change_customer``: (customer), the first column of
  ``ix_stage_change_customer_at``.
- ``ix_customer_active_kind`` (migration 0031): (kind) of the customers not
  deleted, the first column of ``ix_customer_active_id`` (migration 0040),
  the same rows. It counted a kind's customers for a list's ``totalCount``,
  which the maintained counts answer now (migration 0044).
- ``customer_name``, ``customer_email``: no statement filters or orders
  customers by ``name`` (the name order is ``name_sort``, migration 0030) or
  by ``email`` (a duplicate is found through ``customer_match_key``).
- ``event_type``: the outbox is read by id, delivery and claim state
  (partial indexes); no statement asks for an event type.

``customer_kind`` stays: SQLite's planner (no statistics) reads it for a
list of one kind with deleted customers, or with further roles; without it
those walked the order's index (50,000 customers: 12 against 34 ms for the
deleted customers of a kind, 7 against 80 ms for a kind nobody holds).

Measured on PostgreSQL: EXPLAIN ANALYZE of every customers list order by
each filter on the benchmark's 10,000 customers and a 100,000 copy, and of
the analytics reports: every plan that read a dropped index reads the wider
one in its place, at the same cost; only at 10,000 did two pages (deleted
customers, and one stage, by creation) turn from a walk of the order's
index (0.6-1 ms) to a hash join (8-11 ms), the planner pricing a two-column
index's heap order lower (as it already did for those filters' other
orders). Writing customers 1,000 to a transaction costs the backend 7% less
CPU (bench/index_writes.py: 0.1715 against 0.1845 ms a row, the customer
table's indexes alone, triggers off); the whole import (issue 28's profile,
20,000 rows into the benchmark's 10,000 customers, runs alternating) 0.776
against 0.788 ms a row, within its noise. The GIN indexes stay: pg_trgm's
serve the needles of three and four characters, which have no
five-character gram (crmgraph.db.search); a larger GIN pending list for
the import's transactions (``SET LOCAL gin_pending_list_limit`` 16 or 64
MB) wrote no cheaper once the list it leaves is merged (bench/index_writes).

The same indexes on both engines (piccolo's ``index=True`` on SQLite too);
dropped ``CONCURRENTLY`` on PostgreSQL, outside a transaction, so a running
server's writes do not wait. The piccolo columns' ``index`` is recorded
false (``alter_column``), as crmgraph.db.tables says, so piccolo's own
migrations see no difference; reversed, the indexes are built again.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from crmgraph.db.migrate import Index, dropping_indexes

ID = "2026-12-07T08:20:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "drop redundant indexes"

# (piccolo table class, its table, column): the indexes piccolo made for
# ``index=True``, named table_column
PICCOLO_INDEXED = (
    ("Customer", "customer", "created_at"),
    ("Customer", "customer", "updated_at"),
    ("Customer", "customer", "name"),
    ("Customer", "customer", "email"),
    ("CustomerRole", "customer_role", "customer"),
    ("CustomerRole", "customer_role", "phase"),
    ("StageChange", "stage_change", "customer"),
    ("Event", "event", "type"),
)
DROPPED = [
    *(Index(f"{table}_{column}", table, f"({column})") for _, table, column in PICCOLO_INDEXED),
    Index("ix_customer_active_kind", "customer", "(kind) WHERE deleted_at IS NULL"),
]


async def forwards() -> MigrationManager:
    return dropping_indexes(ID, DESCRIPTION, DROPPED, PICCOLO_INDEXED)
