"""``transfer_origin`` and ``transfer_ref``: what lets an export import back
without creating anything twice (crmgraph.transfer.references).

``transfer_origin`` holds one row, this database's origin: a random name
made by its first export, which prefixes every ``ref`` the export writes
(``<origin>/<global ID>``). ``transfer_ref`` remembers, per entity type, the
``ref`` each imported record came with, so the rows of another file naming
the same party (``customer.ref``) find it, and a file imported twice adds
nothing, even for a party with no e-mail, phone or tax id. No foreign key:
a ref whose record is gone is read as unknown.

Raw DDL, like crmgraph_0023."""

from crmgraph.db.migrate import raw_migration

ID = "2026-12-06T12:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "transfer refs"

STATEMENTS = (
    """CREATE TABLE transfer_origin (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    origin VARCHAR(64) NOT NULL
)""",
    """CREATE TABLE transfer_ref (
    entity_type VARCHAR(32) NOT NULL,
    ref VARCHAR(400) NOT NULL,
    entity_id INTEGER NOT NULL,
    PRIMARY KEY (entity_type, ref)
)""",
    # the refs a record holds (an import checks a repeat holds none of the row's origin)
    "CREATE INDEX ix_transfer_ref_entity ON transfer_ref (entity_type, entity_id)",
)


forwards = raw_migration(
    ID,
    DESCRIPTION,
    STATEMENTS,
    ["DROP TABLE IF EXISTS transfer_ref", "DROP TABLE IF EXISTS transfer_origin"],
)
