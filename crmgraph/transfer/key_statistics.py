"""The planner's statistics of the match keys during an import (PostgreSQL).

An import's duplicate screening and its new customers' pairs look keys up by
``key_type = 'TAX_ID' AND key_value IN (…)`` (:mod:`crmgraph.dedupe.matching`,
:mod:`crmgraph.db.match_keys`). When the statistics know no key of a type (a
database whose customers had no tax id, or one analyzed before it had any
keys), the planner reckons the type a row or so and reads every key of the
type for each statement, filtering the values: a read that grows with the
keys the import itself writes (16,000 tax-id keys per statement, 47 of the
134 ms of a pair lookup, after 20,000 rows into 100,000 customers; more per
batch the longer the file). :func:`match_keys._fresh_statistics` analyzes
only when the table has doubled, which a big database never does in one
import.

So, once a batch has written keys of a type the statistics do not list among
the column's common values, the import runs ``ANALYZE customer_match_key``
(in its transaction, which it sees): once per import and type, a sample of
the table (about a second at a million customers), after which every lookup
is a range read of the key index.
"""

from __future__ import annotations

from collections.abc import Iterable

from crmgraph.db.engine import Database
from crmgraph.db.match_score import KEY_TYPES, Normal

TABLE = "customer_match_key"


def key_types(normals: Iterable[Normal], wanted: set[str]) -> set[str]:
    """Which of the ``wanted`` key types these normal forms hold (as their
    blocking keys would), reading no further once all are found."""
    found: set[str] = set()
    for normal in normals:
        found.update(key_type for key_type, _ in normal.blocking_keys() if key_type in wanted)
        if found == wanted:
            break
    return found


class KeyStatistics:
    """Keeps the key types' statistics current for one import."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.handled: set[str] = set()  # the types looked at (and analyzed for) already

    async def written(self, normals: Iterable[Normal]) -> bool:
        """After a batch wrote the keys of these normal forms: ANALYZE when
        one of their types is new to the statistics. Whether it ran."""
        unhandled = set(KEY_TYPES) - self.handled
        if self.db.is_sqlite or not unhandled:
            return False
        new = key_types(normals, unhandled)
        if not new:
            return False
        self.handled |= new
        known = await self.known_types()
        if new <= known:
            return False
        await self.db.fetch(f"ANALYZE {TABLE}")
        return True

    async def known_types(self) -> set[str]:
        """The key types among the statistics' most common values."""
        rows = await self.db.fetch(
            "SELECT most_common_vals::text AS mcv FROM pg_stats "
            "WHERE schemaname = current_schema() AND tablename = {} AND attname = 'key_type'",
            TABLE,
        )
        if not rows or rows[0]["mcv"] is None:
            return set()
        return {value.strip('"') for value in rows[0]["mcv"].strip("{}").split(",") if value}
