"""The one predicate ``search`` and ``contactSearch`` match with: a folded
needle (crmgraph.db.text_keys) found anywhere in a row's folded name or
e-mail, served by a trigram index on each engine (migration crmgraph_0035).

- PostgreSQL: ``LIKE '%needle%'`` over the folded columns, which pg_trgm's GIN
  indexes serve (a bitmap scan of the rows holding every trigram of the
  needle, then the ``LIKE`` rechecked on them). A needle of one or two
  characters has no trigram: the planner scans, as it did before the indexes.
- SQLite: ``LIKE`` scans the table whatever the index (SQLite uses an index
  for ``LIKE`` only on a prefix), so a needle of three characters or more is
  looked up in the table's FTS5 trigram table instead, kept by triggers in
  the transaction of each write. Its phrase query is an exact substring match
  of the folded text (case-sensitive tokenizer over text already folded), so
  the answers are those of ``LIKE``; shorter needles, which the trigram
  tokenizer cannot match, keep ``LIKE``.

Both narrow the rows of the searched table (``alias.id``): a customers list's
keyset order and cursors are untouched. The resolvers (crmgraph.db.queries)
and the compiled reads reach this through ``queries.customer_where``.
"""

from __future__ import annotations

from dataclasses import dataclass

from crmgraph.db import text_keys

# the trigram tokenizer matches nothing shorter than one trigram
TRIGRAM = 3


@dataclass(frozen=True)
class Searched:
    """A table whose folded columns a search matches, and its SQLite index."""

    table: str
    fts_table: str
    columns: tuple[str, ...] = ("name_folded", "email_folded")


CUSTOMERS = Searched("customer", "customer_search")
CONTACTS = Searched("contact", "contact_search")


def condition(
    searched: Searched, alias: str, needle: str, sqlite: bool
) -> tuple[str, list[str]] | None:
    """``alias``'s rows of ``searched.table`` whose folded name or e-mail holds
    ``needle``, as SQL with its bound values; None when nothing searchable is
    left of the needle (only spaces or control characters): no condition."""
    folded = text_keys.fold(needle)
    if not folded:
        return None
    if sqlite and len(folded) >= TRIGRAM:
        return (
            f"{alias}.id IN (SELECT rowid FROM {searched.fts_table} "
            f"WHERE {searched.fts_table} MATCH {{}})",
            [fts_phrase(folded)],
        )
    pattern = f"%{text_keys.escape_like(folded)}%"
    likes = " OR ".join(f"{alias}.{column} LIKE {{}} ESCAPE '\\'" for column in searched.columns)
    return f"({likes})", [pattern] * len(searched.columns)


def fts_phrase(folded: str) -> str:
    """``folded`` as one FTS5 phrase: quoted, its quotes doubled, so no
    character of a needle is read as query syntax."""
    return '"' + folded.replace('"', '""') + '"'
