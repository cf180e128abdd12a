"""The statements of the match-key lookups (:mod:`crmgraph.db.match_keys`,
:mod:`crmgraph.dedupe.matching`): how many values one takes, and how they are
passed (a list of arguments, or on PostgreSQL one array)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from crmgraph.db.engine import Database

# key values per lookup statement, well under both engines' parameter limits
KEYS_PER_STATEMENT = 1000
# PostgreSQL's lookups that pass their values as one array (see one_of) take
# more per statement: an import batch's member lookup is one statement, not
# five, each of which hashed the batch's ids and read its members anew
KEYS_PER_ARRAY = 10 * KEYS_PER_STATEMENT


def keys_per_lookup(db: Database) -> int:
    """How many keys one lookup of :func:`one_of` arrays takes on ``db``."""
    return KEYS_PER_STATEMENT if db.is_sqlite else KEYS_PER_ARRAY


def chunks(values: Sequence[Any], size: int = KEYS_PER_STATEMENT) -> Iterable[Sequence[Any]]:
    return (values[start : start + size] for start in range(0, len(values), size))


def marks(values: Sequence[Any]) -> str:
    return ", ".join("{}" for _ in values)


def one_of(
    column: str, values: Sequence[Any], sqlite: bool, cast: str = "text"
) -> tuple[str, list[Any]]:
    """``column`` is one of ``values``: on PostgreSQL ``= ANY`` of one array
    argument, so a lookup's text is the same for any number of values and its
    prepared statement is planned once (planning a list of a thousand values
    cost as much as running it: 8 to 36 ms of an import batch's member lookups);
    on SQLite, which has no arrays, a list of arguments."""
    if sqlite:
        return f"{column} IN ({marks(values)})", list(values)
    return f"{column} = ANY ({{}}::{cast}[])", [list(values)]
