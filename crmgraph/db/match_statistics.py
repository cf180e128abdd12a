"""The planner's statistics of the match keys, kept fresh by the bulk writers
of :mod:`crmgraph.db.match_keys` (an import batch, a seed, a rebuild) in
their own transaction, which ANALYZE sees: without them a lookup planned on
stale counts reads far more keys than it finds (see :func:`fresh_statistics`).
"""

from __future__ import annotations

from collections.abc import Iterable

from crmgraph.db.engine import Database
from crmgraph.db.match_score import KEY_TYPES


async def fresh_statistics(db: Database, written_types: Iterable[str] = ()) -> None:
    """PostgreSQL: ANALYZE the keys and customers when the keys have more than
    doubled since the planner last counted them. A bulk write (an import, a
    seed) adds them in its own transaction, and a lookup planned on the old
    counts joins every key row with every customer (15 s for 1,000 probes over
    20,000 fresh customers; 0.5 s after ANALYZE, which sees the transaction's
    rows). Counted by the statistics: a COUNT(*) read every key per batch.

    The keys alone, too, when one of the ``written_types`` is not among the
    key types' most common values (a database analyzed before it held any tax
    id): the planner reckons such a type a row or so, and every lookup by it
    read every key of the type and filtered them (16,000 tax-id keys, 47 of a
    pair lookup's 134 ms, 20,000 rows into 100,000 customers), a cost growing
    with the keys the write adds. Only once the table holds enough of them
    that ANALYZE's sample (300 rows per statistics target) meets about ten
    (:data:`RARE_TYPE_SAMPLED`, a bounded read of the key index): of a rarer
    type every read is small, and an ANALYZE would not list it, so each batch
    would run it again."""
    if db.is_sqlite:
        return
    unknown = " OR ".join(map(_unknown_type, sorted(set(written_types)))) or "FALSE"
    rows = await db.fetch(  # what it counted, and this transaction's (autovacuum sees others')
        "WITH t AS (SELECT GREATEST(reltuples, 0) + pg_stat_get_xact_tuples_inserted(oid) "
        "- pg_stat_get_xact_tuples_deleted(oid) AS actual, reltuples AS estimated "
        "FROM pg_class WHERE oid = 'customer_match_key'::regclass), "
        "s AS (SELECT COALESCE((SELECT most_common_vals::text::text[] FROM pg_stats "
        "WHERE schemaname = current_schema() AND tablename = 'customer_match_key' "
        "AND attname = 'key_type'), ARRAY[]::text[]) AS mcv, "
        f"floor({RARE_TYPE_SAMPLED} * (SELECT actual FROM t) "
        "/ (300 * current_setting('default_statistics_target')::int))::bigint AS enough) "
        f"SELECT t.actual, t.estimated, ({unknown}) AS unknown FROM t, s"
    )
    if not rows:
        return
    if rows[0]["actual"] > 2 * max(float(rows[0]["estimated"]), 1000.0):
        await db.fetch("ANALYZE customer_match_key")
        await db.fetch("ANALYZE customer")
    elif rows[0]["unknown"]:
        await db.fetch("ANALYZE customer_match_key")


# how many keys of a type ANALYZE's sample should meet for it to list the type
RARE_TYPE_SAMPLED = 10


def _unknown_type(key_type: str) -> str:
    """Of :func:`fresh_statistics`' statement: the type is not among the most
    common values, and the table holds ``s.enough`` keys of it (a read of the
    key index that stops there)."""
    return (
        f"(NOT {_literal(key_type)} = ANY (s.mcv) AND EXISTS (SELECT 1 FROM customer_match_key b "
        f"WHERE b.key_type = {_literal(key_type)} OFFSET s.enough))"
    )


def _literal(key_type: str) -> str:
    """A key type written into the statement (only one of :data:`KEY_TYPES`)."""
    if key_type not in KEY_TYPES:
        raise ValueError(f"not a match key type: {key_type!r}")
    return f"'{key_type}'"
