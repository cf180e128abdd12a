"""``customer_role.attributes``, ``added_at`` and ``ended_at``: a party's
further roles (crmgraph.operations.roles). A row of another kind than the
customer's primary one is a held role while ``added_at`` is set and
``ended_at`` is not; rows a conversion left behind (both NULL) stay history.
A role's typed attributes are kept on its own row, validated by its kind's
plugin; the primary kind's stay in ``customer.attributes``.

Raw DDL, like crmgraph_0010: the same text on both engines."""

from crmgraph.db.migrate import raw_migration

ID = "2026-12-06T21:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "customer roles"

COLUMNS = (
    ("attributes", "JSON NOT NULL DEFAULT '{}'"),
    ("added_at", "TIMESTAMPTZ NULL"),
    ("ended_at", "TIMESTAMPTZ NULL"),
)


forwards = raw_migration(
    ID,
    DESCRIPTION,
    [f"ALTER TABLE customer_role ADD COLUMN {name} {sql_type}" for name, sql_type in COLUMNS],
    [f"ALTER TABLE customer_role DROP COLUMN {name}" for name, _ in COLUMNS],
)
