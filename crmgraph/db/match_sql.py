"""The statements of the match-key lookups (:mod:`crmgraph.db.match_keys`,
:mod:`crmgraph.dedupe.matching`): how many values one takes, and how they are
passed (a list of arguments, or on PostgreSQL one array)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from crmgraph.db.engine import Database
from crmgraph.db.match_score import KEY_TYPES

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


def written(key_type: str) -> str:
    """A key type as a literal of the statement, not a bound value: a plan
    made once for ``key_type = $1`` (PostgreSQL's generic plan, used after
    five runs) reckons any type a few rows and read every name key to find
    the two asked for (1.3 ms of a create's 2.6 of lookups); with the type
    written in it walks the (key_type, key_value) index to them."""
    if key_type not in KEY_TYPES:
        raise ValueError(f"not a match key type: {key_type!r}")
    return f"'{key_type}'"


def values_table(values: Sequence[str], sqlite: bool) -> tuple[str, list[Any]]:
    """``values`` as a table ``n (column1)`` to select from, with its arguments:
    a VALUES list on SQLite, one array unnested on PostgreSQL."""
    if sqlite:
        return f"(VALUES {', '.join('({})' for _ in values)}) AS n", list(values)
    return "unnest({}::text[]) AS n(column1)", [list(values)]


def keys_table(keys: Sequence[tuple[str, str]], sqlite: bool) -> tuple[str, list[Any]]:
    """``keys`` as a table ``n (column1: key type, column2: key value)``, with
    its arguments, as :func:`values_table` makes one of values."""
    if sqlite:
        return (
            f"(VALUES {', '.join('({}, {})' for _ in keys)}) AS n",
            [part for key in keys for part in key],
        )
    return "unnest({}::text[], {}::text[]) AS n(column1, column2)", [
        [key_type for key_type, _ in keys],
        [value for _, value in keys],
    ]
