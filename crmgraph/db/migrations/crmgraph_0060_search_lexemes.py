"""One search index per searched table on PostgreSQL instead of three
(crmgraph.db.search): ``crmgraph_search_lexemes(name_folded, email_folded)``,
the runs of six characters that start at every other character of a row's
folded name and of its folded e-mail (shorter at the end), as a ``tsvector``
whose lexemes are those runs; a GIN index over it per searched table
(customer, contact). It replaces pg_trgm's two indexes (crmgraph_0035) and
the five-character grams' index (crmgraph_0046) of each table.

Why (issue 28): a customer written kept three GIN indexes, 82 entries a row,
and that was most of what an import's PostgreSQL spent on the customer
table: 10,000 customers inserted into a copy of the 1M database (triggers
off) took ~100 us a row with the three and ~21 without any. With this index
alone, 23 entries a row, ~60 us. A needle of three characters or more is found
through it: a substring that starts at an even position starts one of the
row's runs, one that starts at an odd position has its rest start one, so
the rows holding it are among those holding (as lexemes, or as a prefix when
the needle's part is shorter than six) its parts at the even offsets, or
those at the odd ones (crmgraph.db.search.needle_query).

The index's column is analysed with a statistics target of 1,000: the
planner reckons a lexeme it has no statistics for as half as common as the
rarest one it has, and with the default hundred that was 0.1% of the rows,
enough to make a needle matching nothing walk the whole list's order.

SQLite searches through its FTS5 trigram tables (crmgraph_0035): nothing
here. On PostgreSQL the indexes are built and the old ones dropped without
stopping writes (``CONCURRENTLY``); reversed, the old ones are built again.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from crmgraph.db.migrate import (
    Index,
    build_indexes,
    drop_indexes,
    postgres_only,
    raw_steps,
    run_statements,
)
from crmgraph.db.migrations import crmgraph_0046_search_grams as grams

ID = "2026-12-08T12:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "search lexemes"

RUN = 6  # crmgraph.db.search.RUN: a needle's parts are this long
STRIDE = 2  # crmgraph.db.search.STRIDE: a run starts at every other character
FUNCTION = "crmgraph_search_lexemes"
TABLES = ("customer", "contact")
STATISTICS = 1000

# An SQL function without a FROM of its own is not inlined (its ARRAY(...) is
# a sub-select), so the planner matches the index expression as written.
# IMMUTABLE: it reads its arguments only, through built-in functions; a NULL
# or empty text gives no run (array_to_tsvector refuses NULL and empty lexemes).
CREATE_FUNCTION = f"""CREATE OR REPLACE FUNCTION {FUNCTION}(name text, email text)
RETURNS tsvector LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT array_to_tsvector(ARRAY(
    SELECT substr(t, i, {RUN}) FROM unnest(ARRAY[name, email]) t,
      generate_series(1, length(t), {STRIDE}) i
  ))
$$"""


def index_name(table: str) -> str:
    return f"ix_{table}_search_lexemes"


INDEXES = [
    Index(
        index_name(table),
        table,
        f"USING gin ({FUNCTION}(name_folded, email_folded))",
        postgres_only=True,
        statistics=STATISTICS,
    )
    for table in TABLES
]
# crmgraph_0035's pg_trgm indexes and crmgraph_0046's grams, replaced
REPLACED = [
    *(
        Index(f"ix_{table}_{column}_trgm", table, f"USING gin ({column} gin_trgm_ops)", True)
        for table in TABLES
        for column in ("name_folded", "email_folded")
    ),
    *grams.INDEXES,
]


def postgres_statements() -> list[str]:
    """The function and the indexes in one go, analysed (bench.search_scale
    builds them after a bulk seed); the migration builds them one by one."""
    indexes = [
        statement
        for index in INDEXES
        for statement in [
            index.create("postgres").replace(" CONCURRENTLY", ""),
            *index.tuned("postgres"),
        ]
    ]
    return [CREATE_FUNCTION, *indexes, *(f"ANALYZE {table}" for table in TABLES)]


def drop_statements() -> list[str]:
    return [f"DROP INDEX IF EXISTS {i.name}" for i in INDEXES]


async def forward_step() -> None:
    await build_indexes(INDEXES, postgres_only([CREATE_FUNCTION]))
    await drop_indexes(REPLACED)
    await run_statements(grams.drop_function)


async def backward_step() -> None:
    await build_indexes(REPLACED, grams.function_statements)
    await drop_indexes(INDEXES)
    await run_statements(postgres_only([f"DROP FUNCTION IF EXISTS {FUNCTION}(text, text)"]))


async def forwards() -> MigrationManager:
    return raw_steps(ID, DESCRIPTION, forward_step, backward_step)
