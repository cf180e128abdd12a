"""Folded copies of customers' and contacts' names and e-mails, stored beside
them, so that search and ordering by name give the same answers on SQLite and
PostgreSQL in every script.

Why stored columns: SQLite's ``LOWER`` and ``LIKE`` fold ASCII letters only
(``"Петров"`` never matched ``"петров"``) and it has no collation that sets
accents aside, while PostgreSQL's answer depends on the database's locale.
Folding here, in Python, once per write, gives both engines the same bytes to
compare: a search is ``LIKE`` over the folded column with the folded needle,
and an order by name is a plain binary order over :func:`sort_key` (SQLite's
BINARY, PostgreSQL's ``COLLATE "C"``, both code point order, as Python's).

- :func:`fold`: what a person means by a text, case and accents set aside
  (``"Asesoría ÁLVAREZ"`` is ``"asesoria alvarez"``, ``"ПЕТРОВ"`` is
  ``"петров"``, ``"Straße"`` is ``"strasse"``, half-width kana are full-width),
  Latin letters without a decomposition read as their base letters
  (``"Łódź"`` is ``"lodz"``, ``"Ørsted"`` is ``"orsted"``), white space
  collapsed, control and format characters left out. Other scripts keep
  their letters (Cyrillic names sort after Latin ones, as in ICU's root order).
- :func:`sort_key`: the folded name, then the name itself (so ``Ana`` and
  ``ana`` still have a fixed order), joined by :data:`SEPARATOR`, which sorts
  below every character a folded name keeps: ``"Ana"`` comes before
  ``"Ana María"``. The customer id breaks the remaining ties.

Every write of a name or e-mail goes through :func:`with_text_keys`
(``crmgraph.db.writes`` and ``crmgraph.db.bulk`` call it for the customer and
contact tables); a write made with raw SQL calls :func:`refresh_text_keys`
for the rows it touched, as migration crmgraph_0030 does for every row.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from anyascii import anyascii

from crmgraph.db.engine import Database

SEPARATOR = "\x1f"  # the unit separator; below every character fold() keeps
# Control (Cc), format (Cf: soft hyphens, zero-width joiners, direction marks)
# and surrogate (Cs) characters carry no letter a person would search for.
_DROPPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs"})
_SPACES = re.compile(r"\s+")


# ASCII's control characters (Cc), dropped by fold
_ASCII_CONTROLS = dict.fromkeys([*range(0x20), 0x7F])


def fold(text: str) -> str:
    """``text`` with case, accents and compatibility forms set aside. ASCII
    text (most names and e-mails) has none of them: it is only spaced,
    lowered and rid of control characters, as :func:`fold_unicode` does
    to it without walking it character by character (a tenth of an import's
    Python time)."""
    if text.isascii():
        return _SPACES.sub(" ", text).strip().lower().translate(_ASCII_CONTROLS)
    return fold_unicode(text)


def fold_unicode(text: str) -> str:
    """:func:`fold` of any text, character by character."""
    spaced = _SPACES.sub(" ", unicodedata.normalize("NFKD", text)).strip()
    decomposed = unicodedata.normalize("NFKD", spaced.casefold())
    kept = "".join(
        _base_latin(ch)
        for ch in decomposed
        if not unicodedata.combining(ch) and unicodedata.category(ch) not in _DROPPED_CATEGORIES
    )
    # recompose what is left (Hangul syllables were split into their letters)
    return unicodedata.normalize("NFC", kept)


def _base_latin(ch: str) -> str:
    """A Latin letter Unicode does not decompose (ł, ø, đ, æ, þ …) as the
    letters people read it as (l, o, d, ae, th), so "Łódź" sorts with the
    L's and is found by "lodz"; any other character as it is."""
    code = ord(ch)
    if code < 0x80 or not ch.isalpha():
        return ch
    if code < 0x250 or 0x1E00 <= code < 0x1F00:  # Latin-1 to Latin Extended-B, Additional
        return anyascii(ch).lower() or ch
    return ch


def sort_key(name: str) -> str:
    """The order names are read in: folded first, then as written."""
    return f"{fold(name)}{SEPARATOR}{name}"


def folded_or_none(text: str | None) -> str | None:
    return None if text is None else fold(text)


# table -> written column -> the stored columns derived from it
DERIVED: dict[str, dict[str, tuple[tuple[str, Callable[[Any], Any]], ...]]] = {
    "customer": {
        "name": (("name_sort", sort_key), ("name_folded", fold)),
        "email": (("email_folded", folded_or_none),),
    },
    "contact": {
        "name": (("name_folded", fold),),
        "email": (("email_folded", folded_or_none),),
    },
}


def derived_values(table: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """The folded columns of each name or e-mail ``values`` write to ``table``."""
    found: dict[str, Any] = {}
    for source, columns in DERIVED.get(table, {}).items():
        if source in values:
            for column, derive in columns:
                found[column] = derive(values[source])
    return found


def with_text_keys(table: str, values: dict[str, Any]) -> dict[str, Any]:
    """``values`` and, for each name or e-mail they write, its folded columns
    (``values`` itself when there are none: most writes are of other tables)."""
    derived = derived_values(table, values)
    return {**values, **derived} if derived else values


def search_pattern(needle: str) -> str | None:
    """A ``LIKE ... ESCAPE '\\'`` pattern finding the folded ``needle``
    anywhere in a folded column; None when nothing searchable is left."""
    folded = fold(needle)
    if not folded:
        return None
    return f"%{escape_like(folded)}%"


def escape_like(text: str) -> str:
    """``text`` matched literally by ``LIKE ... ESCAPE '\\'``: its ``\\``, ``%``
    and ``_`` escaped."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# rows rewritten per statement: 3 derived columns x 2 values + the id list
ROWS_PER_UPDATE = 500


async def refresh_text_keys(db: Database, table: str, ids: Sequence[int] | None = None) -> int:
    """Recompute the folded columns of ``table``'s rows (``ids``, or all of
    them) from their names and e-mails, a batch of rows per statement; how
    many rows were rewritten."""
    sources = tuple(DERIVED[table])
    where, args = "", list(ids or ())
    if ids is not None:
        if not ids:
            return 0
        where = f" WHERE id IN ({', '.join('{}' for _ in ids)})"
    rows = await db.fetch(f"SELECT id, {', '.join(sources)} FROM {table}{where}", *args)
    for start in range(0, len(rows), ROWS_PER_UPDATE):
        await _rewrite(db, table, rows[start : start + ROWS_PER_UPDATE])
    if ids is None and rows and db.engine.engine_type == "postgres":
        # Every row changed: statistics taken before describe the folded columns
        # as they were (empty), and PostgreSQL then reckons a search's LIKE
        # matches no row and sorts every customer of the kind instead of
        # walking the order's index (2.4 ms against 0.16 ms on the benchmark's
        # 10,000 customers, whose seed folds names after its VACUUM ANALYZE).
        await db.fetch(f"ANALYZE {table}")
    return len(rows)


async def _rewrite(db: Database, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
    derived = [derived_values(table, row) for row in rows]
    assignments, args = [], []
    for column in derived[0]:
        cases = " ".join("WHEN {} THEN {}" for _ in rows)
        assignments.append(f"{column} = CASE id {cases} END")
        for row, values in zip(rows, derived, strict=True):
            args += [row["id"], values[column]]
    marks = ", ".join("{}" for _ in rows)
    await db.fetch(
        f"UPDATE {table} SET {', '.join(assignments)} WHERE id IN ({marks})",
        *args,
        *(row["id"] for row in rows),
    )
