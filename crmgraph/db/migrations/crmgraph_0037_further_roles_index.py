"""``ix_customer_role_further``: the further roles a party holds (added, not
ended; crmgraph.operations.roles), by kind. A customers list's ``kinds``
matches a party holding any of them (crmgraph.db.queries.kinds_in): its
primary kind, or its id among those of the further roles of those kinds,
read once per statement from this index (an index-only scan of a few rows)
instead of a scan of every role row. Measured on PostgreSQL 15, 100,000
customers with 1,700 further roles (p50 of 9, a loaded 2-core machine): a
page of 20 holders of a common kind 0.25 ms with it against 33 ms without,
of a rare kind 1-19 ms against 41-68 ms; a count of holders 74-96 ms against
80-172 ms. Raw DDL, as crmgraph_0031; a partial index on both engines."""

from crmgraph.db.migrate import raw_migration

ID = "2026-12-06T23:40:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "further roles by kind"

FURTHER_ROLES_INDEX = (
    "CREATE INDEX ix_customer_role_further ON customer_role (kind, customer) "
    "WHERE added_at IS NOT NULL AND ended_at IS NULL"
)


forwards = raw_migration(
    ID, DESCRIPTION, [FURTHER_ROLES_INDEX], ["DROP INDEX ix_customer_role_further"]
)
