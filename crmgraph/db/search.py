"""The one predicate ``search`` and ``contactSearch`` match with: a folded
needle (crmgraph.db.text_keys) found anywhere in a row's folded name or
e-mail, served by a trigram index on each engine (migration crmgraph_0035).

- PostgreSQL: ``LIKE '%needle%'`` over the folded columns, which pg_trgm's GIN
  indexes serve (a bitmap scan of the rows holding every trigram of the
  needle, then the ``LIKE`` rechecked on them). A needle of one or two
  characters has no trigram: the planner scans, as it did before the indexes.
  The pattern is written into the statement (:func:`written_pattern`).
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
from crmgraph.db.engine import Database

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
    if sqlite:
        likes = [f"{alias}.{column} LIKE {{}} ESCAPE '\\'" for column in searched.columns]
        return f"({' OR '.join(likes)})", [pattern] * len(searched.columns)
    written = written_pattern(pattern)
    likes = [f"{alias}.{column} LIKE {written} ESCAPE '\\'" for column in searched.columns]
    return f"({' OR '.join(likes)})", []


def written_pattern(pattern: str) -> str:
    """A ``LIKE`` pattern as a PostgreSQL literal of the statement, not a bound
    value. Bound, the statement gets PostgreSQL's generic plan after five
    runs, which cannot see the needle, reckons a search matches 1% of the
    customers and walks the list's order index, filtering: a needle matching
    nothing read all 100,000 customers (115 ms) where the trigram indexes
    answer in 4 ms (bench/search_scale.py). Written in, every needle is
    planned for itself. An escape string (``E'...'``) with its backslashes
    and quotes doubled reads back as ``pattern`` whatever
    ``standard_conforming_strings`` says; a folded needle holds no NUL. The
    cost: each needle is a statement of its own, prepared (one round trip
    more) and cached by asyncpg in place of another."""
    escaped = pattern.replace("\\", "\\\\").replace("'", "''")
    # braces as escapes: a statement's text holds none but its {} placeholders
    return "E'" + escaped.replace("{", "\\x7b").replace("}", "\\x7d") + "'"


def fts_phrase(folded: str) -> str:
    """``folded`` as one FTS5 phrase: quoted, its quotes doubled, so no
    character of a needle is read as query syntax."""
    return '"' + folded.replace('"', '""') + '"'


async def forget_erased(db: Database) -> None:
    """SQLite: merge each FTS5 trigram table into one segment, in the
    erasure's transaction. A delete in an FTS5 table (an erasure rewrites
    names and e-mails) only writes a tombstone: the erased text's trigrams
    would stay in the file's older segments, where nothing reads them but
    anyone with the file could. PostgreSQL's index entries go with the dead
    row versions, as every index's do, when VACUUM runs."""
    if not db.is_sqlite:
        return
    for searched in (CUSTOMERS, CONTACTS):
        table = searched.fts_table
        await db.fetch(f"INSERT INTO {table}({table}) VALUES ('optimize')")
