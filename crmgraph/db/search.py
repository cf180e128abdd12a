"""The one predicate ``search`` and ``contactSearch`` match with: a folded
needle (crmgraph.db.text_keys) found anywhere in a row's folded name or
e-mail, served by an index on each engine (migrations crmgraph_0035 and
crmgraph_0060).

- PostgreSQL, a needle of three characters or more: the rows whose runs
  (crmgraph_0060: six characters from every other position of the folded
  name and e-mail, a ``tsvector`` with a GIN index) hold the needle's parts
  (:func:`needle_query`), then ``strpos`` rechecks the substring
  (:func:`lexeme_condition`). One index per table, where pg_trgm's two and
  a five-character grams' one cost an import three (82 entries a row
  against 23). Runs span words, where pg_trgm's trigrams stop at them: a
  full name made of common words is found through its rare runs ("a garc").
  The price of runs at every other character: a needle of three characters
  starting at an odd position is asked of the index by its last two ("qan"
  by ``'qan':* | 'an':*``), so one that few rows hold but whose last two
  characters many do is a walk of the list's order (~0.5 s at 1,000,000
  customers, where pg_trgm's trigram took 1 ms). Covering the odd positions
  too (three- or two-character runs there, or four-character runs at every
  position) cost writes 19-31 us a customer more (docs/benchmarks.md).
- PostgreSQL, a needle of one or two characters: ``LIKE '%needle%'`` over
  the folded columns, a scan (no index serves it). The needle is written
  into the statement (:func:`written_pattern`).
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

# the trigram tokenizer matches nothing shorter than one trigram; on
# PostgreSQL a needle this long or longer is found through its runs
TRIGRAM = 3
# PostgreSQL: crmgraph_0060's runs, RUN characters from every STRIDE-th one
# (the migration keeps its own copy, as migrations do; tests compare them)
RUN = 6
STRIDE = 2
LEXEMES_FUNCTION = "crmgraph_search_lexemes"
MOST_PARTS = 3  # a needle's runs asked of the index per offset (:func:`needle_query`)
SPACING = 4  # between the starts of two runs asked for: they share two characters


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
    if not sqlite and len(folded) >= TRIGRAM:
        return lexeme_condition(searched, alias, folded), []
    pattern = f"%{text_keys.escape_like(folded)}%"
    if sqlite:
        likes = [f"{alias}.{column} LIKE {{}} ESCAPE '\\'" for column in searched.columns]
        return f"({' OR '.join(likes)})", [pattern] * len(searched.columns)
    written = written_pattern(pattern)
    likes = [f"{alias}.{column} LIKE {written} ESCAPE '\\'" for column in searched.columns]
    return f"({' OR '.join(likes)})", []


def lexeme_condition(searched: Searched, alias: str, folded: str) -> str:
    """PostgreSQL, a needle of three characters or more: the rows whose runs
    hold the needle's parts (the GIN index of crmgraph_0060 finds them), then
    those whose folded name or e-mail holds the needle. ``strpos`` is that
    substring test, as ``LIKE '%needle%'`` is; it is written first, so a walk
    of an order's index that filters each row computes no row's runs but
    those of the rows that hold the needle."""
    needle = written_pattern(folded)
    holds = " OR ".join(f"strpos({alias}.{column}, {needle}) > 0" for column in searched.columns)
    columns = ", ".join(f"{alias}.{column}" for column in searched.columns)
    query = written_pattern(needle_query(folded))
    return f"(({holds}) AND {LEXEMES_FUNCTION}({columns}) @@ {query}::tsquery)"


def needle_query(folded: str) -> str:
    """The ``tsquery`` a row's runs match when its text may hold ``folded``.

    A row's runs start at every :data:`STRIDE`-th character. Where the needle
    starts at one of them, the row's runs there and every STRIDE characters
    on are the needle's parts at offsets 0, 2, ... (each run equal to its
    part, or beginning with it when the part is shorter than a run); where it
    starts between two, the parts at offsets 1, 3, ... So the query is the
    parts of one offset, or those of the other: any of them narrows the rows
    correctly, and ``strpos`` rechecks the substring.

    Of each offset's parts, whole runs from the needle's end, :data:`SPACING`
    characters apart, at most :data:`MOST_PARTS` (the index probes each
    part's posting list for every row the rarest holds). Two characters in
    common at most: the planner reckons the rows holding them all as the
    product of each part's share, and parts overlapping more are held by the
    same rows (five-character grams one apart took a given name held by 3% of
    the customers for 0.1%, and read them all where walking the list's order
    finds a page in its first rows); parts side by side, with no character in
    common, are fewer, and at 1,000,000 customers a full name's (``n nune``,
    ``a mari``) were held by 478 customers where its 19 holders are, against
    48 with these. An offset with no whole run asks for the prefix of its
    rest."""
    alternatives = []
    for offset in range(STRIDE):
        whole = range(offset, len(folded) - RUN + 1, STRIDE)
        chosen: list[int] = []
        for start in reversed(whole):
            if not chosen or start + SPACING <= chosen[-1]:
                chosen.append(start)
        parts = [lexeme(folded[i : i + RUN]) for i in chosen[:MOST_PARTS]]
        alternatives.append(" & ".join(parts) or lexeme(folded[offset:]) + ":*")
    return " | ".join(f"({a})" for a in alternatives)


def lexeme(text: str) -> str:
    """``text`` as one quoted ``tsquery`` lexeme: no character read as syntax."""
    return "'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


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
