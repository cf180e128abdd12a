"""``duplicate_pair.kind_a`` / ``kind_b``: the kinds of the pair's two
customers, so that ``duplicates(kind:)`` reads a page by an index in the
list's order instead of joining every stored pair to its two customers.
Written with the pairs (crmgraph.dedupe.matching); a conversion to another
type refreshes the customer's pairs like any write that changes its scoring.

Raw DDL, like crmgraph_0020: the columns are added, filled from ``customer``,
then indexed. SQLite adds a NOT NULL column only with a default."""

from crmgraph.db.migrate import analyzed, raw_migration

ID = "2026-11-24T14:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "duplicate pair kinds"

SIDES = ("a", "b")

INDEXES = tuple(
    # a kind's pairs on one side, in the list's order (read backwards, as the score index)
    f"CREATE INDEX ix_duplicate_pair_kind_{side} "
    f"ON duplicate_pair (kind_{side}, score, customer_a, customer_b)"
    for side in SIDES
)


ADD_COLUMNS = tuple(
    f"ALTER TABLE duplicate_pair ADD COLUMN kind_{side} VARCHAR(64) NOT NULL DEFAULT ''"
    for side in SIDES
)

FILL = (
    "UPDATE duplicate_pair SET "
    "kind_a = (SELECT c.kind FROM customer c WHERE c.id = duplicate_pair.customer_a), "
    "kind_b = (SELECT c.kind FROM customer c WHERE c.id = duplicate_pair.customer_b)"
)

DROP = tuple(
    statement
    for side in SIDES
    for statement in (
        f"DROP INDEX IF EXISTS ix_duplicate_pair_kind_{side}",
        f"ALTER TABLE duplicate_pair DROP COLUMN kind_{side}",
    )
)

forwards = raw_migration(
    ID, DESCRIPTION, analyzed([*ADD_COLUMNS, FILL, *INDEXES], "duplicate_pair"), DROP
)
