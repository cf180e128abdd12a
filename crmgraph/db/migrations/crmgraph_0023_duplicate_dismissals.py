"""``duplicate_dismissal``: pairs of customers a person reviewed and found to
be two parties (``dismissDuplicate``; ``restoreDuplicate`` deletes the row).
``duplicates`` and ``duplicateCandidates`` leave them out. Kept apart from
``duplicate_pair``, which key refreshes rewrite, so a dismissal outlives them.

Raw DDL, like crmgraph_0020."""

from crmgraph.db.migrate import raw_migration

ID = "2026-11-24T13:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "duplicate dismissals"

TABLE = """CREATE TABLE duplicate_dismissal (
    customer_a INTEGER NOT NULL REFERENCES customer (id) ON DELETE CASCADE,
    customer_b INTEGER NOT NULL REFERENCES customer (id) ON DELETE CASCADE,
    reason TEXT NULL,
    dismissed_by INTEGER NULL REFERENCES crm_user (id) ON DELETE SET NULL,
    dismissed_at TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (customer_a, customer_b),
    CHECK (customer_a < customer_b)
)"""

INDEXES = (
    # a customer's dismissals from its higher side (customer_a has the primary key)
    "CREATE INDEX ix_duplicate_dismissal_customer_b ON duplicate_dismissal (customer_b)",
)


forwards = raw_migration(
    ID, DESCRIPTION, [TABLE, *INDEXES], ["DROP TABLE IF EXISTS duplicate_dismissal"]
)
