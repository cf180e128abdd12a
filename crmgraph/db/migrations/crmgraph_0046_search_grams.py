"""Five-character grams for ``search`` and ``contactSearch`` on PostgreSQL
(crmgraph.db.search): ``crmgraph_search_grams(name_folded, email_folded)``,
every run of five characters of a row's folded name and of its folded e-mail,
and a GIN index over it per searched table (customer, contact).

Why: pg_trgm's trigrams (crmgraph_0035) stop at word boundaries, and with a
name made of common words every trigram of it is common: at 1,000,000
customers a full name ("Ana García López") is the meeting of ~14 trigrams
each held by 2-30% of the rows, and reading their posting lists took 24 ms
p50. A five-character gram keeps the space between words ("a gar", "cia l"),
so a full name's grams include rare ones, and the rows holding them all are
the few that hold the name. A needle shorter than five characters has no
gram: it keeps the trigram indexes.

SQLite searches through its FTS5 trigram tables (crmgraph_0035), whose
phrase queries span words already: nothing here. On PostgreSQL the indexes
build without stopping writes (``index_migration``); at 1,000,000 customers
the customer table's takes minutes.
"""

from crmgraph.db.migrate import Index, index_migration

ID = "2026-12-07T02:40:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "search grams"

GRAM = 5  # the grams' length (crmgraph_0060 replaced them)
FUNCTION = "crmgraph_search_grams"
TABLES = ("customer", "contact")

# An SQL function without a FROM of its own is not inlined (its ARRAY(...) is
# a sub-select), so the planner matches the index expression as written.
# IMMUTABLE: it reads its arguments only, through built-in functions.
CREATE_FUNCTION = f"""CREATE OR REPLACE FUNCTION {FUNCTION}(name text, email text)
RETURNS text[] LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT ARRAY(
    SELECT substr(t, i, {GRAM}) FROM unnest(ARRAY[name, email]) t,
      generate_series(1, length(t) - {GRAM - 1}) i
  )
$$"""


def index_name(table: str) -> str:
    return f"ix_{table}_search_grams"


INDEXES = [
    Index(index_name(table), table, f"USING gin ({FUNCTION}(name_folded, email_folded))", True)
    for table in TABLES
]


def postgres_statements() -> list[str]:
    """The function and the indexes in one go (bench.search_scale builds
    them after a bulk seed); the migration builds the indexes one by one."""
    indexes = [i.create("postgres").replace(" CONCURRENTLY", "") for i in INDEXES]
    # the index expression's statistics (its most common grams) are what the
    # planner weighs a search's selectivity with
    return [CREATE_FUNCTION, *indexes, *(f"ANALYZE {table}" for table in TABLES)]


def drop_statements(engine_type: str) -> list[str]:
    if engine_type != "postgres":
        return []
    return [f"DROP INDEX IF EXISTS {index_name(table)}" for table in TABLES]


def function_statements(engine_type: str) -> list[str]:
    return [CREATE_FUNCTION] if engine_type == "postgres" else []


def drop_function(engine_type: str) -> list[str]:
    if engine_type != "postgres":
        return []
    return [f"DROP FUNCTION IF EXISTS {FUNCTION}(text, text)"]


forwards = index_migration(ID, DESCRIPTION, INDEXES, function_statements, drop_function)
