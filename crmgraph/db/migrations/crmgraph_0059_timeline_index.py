"""Drop ``interaction_customer`` (customer): the first column of
``ix_interaction_customer_occurred`` (customer, occurred_at, id, migration
0002), which serves every query it served, in the order a timeline reads.

Why (issue 28's scale benchmark): with both, PostgreSQL read a customer's
timeline (its newest interactions, ``ORDER BY occurred_at DESC, id DESC
LIMIT 21`` in the compiled read's statement) through the narrower
index and sorted: it reckons a customer to have the table's average of ten
interactions, so it read every one of them, 210 for the benchmark's customer
at 10,000 customers and 985 at 1,000,000. The statement took 1.5 and 2.1 ms;
through the wider index, backwards, it reads 20 rows and takes 0.4 and 0.3
ms at both sizes. Every interaction written also keeps one index fewer.

Dropped ``CONCURRENTLY`` on PostgreSQL, outside a transaction, as migration
0054 drops its indexes; the piccolo column's ``index`` is recorded false, as
crmgraph.db.tables says; reversed, the index is built again.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from crmgraph.db.migrate import Index, dropping_indexes

ID = "2026-12-08T11:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "timeline index"

DROPPED = [Index("interaction_customer", "interaction", "(customer)")]


async def forwards() -> MigrationManager:
    return dropping_indexes(
        ID, DESCRIPTION, DROPPED, [("Interaction", "interaction", "customer")]
    )
