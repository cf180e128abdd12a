"""``ix_stage_change_kind_at``: the stage history by type and customer, for
cohorts per type (crmgraph.analytics.cohorts, issue 24): a party joins a
type's cohort at its first entry into that type's lifecycle (a client who
becomes a guarantor in March is in March's guarantor cohort), so a cohort
over a period reads that type's entries in the period and leaves out the
parties with an earlier entry of the type, both from this index alone: the
first a walk of the type's part of it, the second a seek per party on
(kind, customer, at). Ordered (kind, at, customer), SQLite answered the
second by walking every earlier entry of the type for each party: the
client cohorts of 90 days over 3,000 demo customers took 8 times what they
took by creation month, and take 2 times with this order.
Raw DDL, as crmgraph_0031; the same text on both engines."""

from crmgraph.db.migrate import analyzed, raw_migration

ID = "2026-12-06T23:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "stage entries by kind"

KIND_AT_INDEX = "CREATE INDEX ix_stage_change_kind_at ON stage_change (kind, customer, at)"


create_statements = analyzed([KIND_AT_INDEX], "stage_change")
forwards = raw_migration(ID, DESCRIPTION, create_statements, ["DROP INDEX ix_stage_change_kind_at"])
