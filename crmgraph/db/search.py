"""The one predicate ``search`` and ``contactSearch`` match with: a folded
needle (crmgraph.db.text_keys) found anywhere in a row's folded name or
e-mail, served by a trigram index on each engine (migration crmgraph_0035).

- PostgreSQL, a needle of five characters or more: the rows holding some of
  its five-character grams, found in the GIN index of crmgraph_0046, then
  ``strpos`` rechecks the substring (:func:`gram_condition`). Its grams span
  words, where pg_trgm's trigrams stop at them: a full name made of common
  words read a dozen long trigram posting lists (24 ms at 1,000,000
  customers).
- PostgreSQL, a shorter needle: ``LIKE '%needle%'`` over the folded columns,
  which pg_trgm's GIN indexes serve (a bitmap scan of the rows holding every
  trigram of the needle, then the ``LIKE`` rechecked on them). A needle of one
  or two characters has no trigram: the planner scans, as it did before the
  indexes. The needle is written into the statement (:func:`written_pattern`).
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
# PostgreSQL: a needle this long or longer is found through its grams, the
# runs of GRAM characters crmgraph_0046's function and indexes hold (the
# migration keeps its own copy, as migrations do; tests compare them)
GRAM = 5
GRAMS_FUNCTION = "crmgraph_search_grams"
MOST_GRAMS = 3  # a needle's grams asked of the index (:func:`needle_grams`)


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
    if not sqlite and len(folded) >= GRAM:
        return gram_condition(searched, alias, folded), []
    pattern = f"%{text_keys.escape_like(folded)}%"
    if sqlite:
        likes = [f"{alias}.{column} LIKE {{}} ESCAPE '\\'" for column in searched.columns]
        return f"({' OR '.join(likes)})", [pattern] * len(searched.columns)
    written = written_pattern(pattern)
    likes = [f"{alias}.{column} LIKE {written} ESCAPE '\\'" for column in searched.columns]
    return f"({' OR '.join(likes)})", []


def gram_condition(searched: Searched, alias: str, folded: str) -> str:
    """PostgreSQL, a needle of a gram or more: the rows whose grams include
    the needle's (the GIN index of crmgraph_0046 finds them), then those
    whose folded name or e-mail holds the needle. ``strpos`` is that
    substring test, as ``LIKE '%needle%'`` is, without a pattern pg_trgm's
    indexes would also be read for; it is written first, so a walk of an
    order's index that filters each row computes no row's grams but those
    of the rows that hold the needle."""
    needle = written_pattern(folded)
    holds = " OR ".join(f"strpos({alias}.{column}, {needle}) > 0" for column in searched.columns)
    grams = ", ".join(written_pattern(gram) for gram in needle_grams(folded))
    columns = ", ".join(f"{alias}.{column}" for column in searched.columns)
    return f"(({holds}) AND {GRAMS_FUNCTION}({columns}) @> ARRAY[{grams}]::text[])"


def needle_grams(folded: str) -> list[str]:
    """The grams of ``folded`` the index is asked for: side by side from its
    end (the last gram, the one before it, ...), not overlapping.

    Any of a needle's grams narrows the rows correctly (``strpos`` rechecks
    them), and the planner reckons the rows holding them all as the product
    of each gram's share (the index expression's statistics). Overlapping
    grams of one word ("sergi", "ergio") are held by the same rows, so that
    product took a given name held by 3% of the customers for 0.1% and read
    all of them (300 ms at 1,000,000) where walking the list's order finds a
    page in the first rows (0.5 ms). Grams side by side are nearer to
    independent: one per five characters of a word, and across words the
    ones that join them ("cia l"), which are rare. From the end, so that
    the e-mail search's last characters ("4242@") are asked for. At most
    :data:`MOST_GRAMS`: the index probes each gram's posting list for every
    row the rarest one holds, and a contact's name ("Contact 1 of Ana Pérez
    Martín") began with grams a third of the 2,000,000 contacts hold (9 ms
    of index scan with five grams, 1.3 ms with the last three)."""
    starts = range(len(folded) - GRAM, -1, -GRAM)
    return [folded[i : i + GRAM] for i in starts][:MOST_GRAMS]


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
