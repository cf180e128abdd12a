"""Portable SQL building blocks for the analytics: a fragment builder that keeps
bound values in order, and the few expressions SQLite and PostgreSQL spell
differently (timestamps as parameters, day differences, calendar buckets)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from crmgraph.db import activity
from crmgraph.db.engine import Database

# strftime / to_char patterns per calendar bucket (same text on both engines)
BUCKET_FORMATS = {
    "DAY": ("%Y-%m-%d", "YYYY-MM-DD"),
    "MONTH": ("%Y-%m", "YYYY-MM"),
    "YEAR": ("%Y", "YYYY"),
}
# strftime patterns of the first day of each bucket (SQLite; PostgreSQL uses date_trunc)
BUCKET_STARTS = {"DAY": "%Y-%m-%d", "MONTH": "%Y-%m-01", "YEAR": "%Y-01-01"}


# PostgreSQL settings for the analytics statements (measured in docs/benchmarks.md's
# analytics benchmark):
# - a custom plan for every execution: asyncpg prepares each statement, and
#   after five executions PostgreSQL may switch to a generic plan, which cannot
#   see which branch of a gated UNION ALL (the rollup or the interactions)
#   answers, nor how many customers a filter leaves; the churn list's went from
#   0.3 s to 10 s that way;
# - memory for the sorts and hash tables of 100,000 customers' rows;
# - no JIT compilation (it cost up to half a second, never saved as much);
# - random_page_cost for data in memory, so that a small cohort reads its
#   customers' rollup rows by key instead of hashing all of them.
POSTGRES_SETTINGS: tuple[tuple[str, str], ...] = (
    ("plan_cache_mode", "force_custom_plan"),
    ("work_mem", "64MB"),
    ("jit", "off"),
    ("random_page_cost", "1.1"),
)


@dataclass
class Sql:
    """SQL text with piccolo ``{}`` placeholders and their values, appended in order."""

    text: str = ""
    args: list[Any] = field(default_factory=list)

    def add(self, text: str, *args: Any) -> Sql:
        self.text += text
        self.args.extend(args)
        return self

    def extend(self, other: Sql) -> Sql:
        return self.add(other.text, *other.args)

    async def fetch(self, db: Database, *, tuned: bool = True) -> list[dict[str, Any]]:
        """Run the statement; on PostgreSQL with ``POSTGRES_SETTINGS`` unless
        not ``tuned``: a read of a few customers' rows (knowledge) is not worth
        the three statements more that setting them for one statement costs."""
        if db.is_sqlite or not tuned or not POSTGRES_SETTINGS:
            return await db.fetch(self.text, *self.args)
        # for this statement only: set_config(..., true) lasts until the
        # transaction ends (a caller's transaction, when there is one)
        settings = ", ".join(f"set_config('{k}', '{v}', true)" for k, v in POSTGRES_SETTINGS)
        async with db.transaction():
            await db.fetch(f"SELECT {settings}")
            return await db.fetch(self.text, *self.args)


@dataclass(frozen=True)
class Dialect:
    sqlite: bool

    @classmethod
    def of(cls, db: Database) -> Dialect:
        return cls(sqlite=db.is_sqlite)

    @property
    def timestamp(self) -> str:
        """A bound timestamp; PostgreSQL must be told its type where it cannot infer it."""
        return "{}" if self.sqlite else "CAST({} AS TIMESTAMPTZ)"

    @property
    def not_materialized(self) -> str:
        """Written after ``name AS`` of a CTE to have it inlined where it is
        read (PostgreSQL; SQLite decides by itself)."""
        return "" if self.sqlite else "NOT MATERIALIZED "

    @property
    def fence(self) -> str:
        """Ends a subquery that PostgreSQL must plan on its own, not merged
        into the statement reading it (``OFFSET 0``; SQLite decides by itself)."""
        return "" if self.sqlite else " OFFSET 0"

    @property
    def materialized(self) -> str:
        """Written after ``name AS`` of a CTE to have it computed once for
        all its reads (both engines would inline one read once)."""
        return "MATERIALIZED "

    def days_between(self, later: str, earlier: str) -> str:
        if self.sqlite:
            return f"(julianday({later}) - julianday({earlier}))"
        return f"CAST(EXTRACT(EPOCH FROM ({later} - {earlier})) / 86400.0 AS DOUBLE PRECISION)"

    def bucket(self, column: str, unit: str) -> str:
        """The calendar day, month or year of a timestamp, in UTC, as text."""
        sqlite_format, pg_format = BUCKET_FORMATS[unit]
        if self.sqlite:
            return f"strftime('{sqlite_format}', {column})"
        return f"to_char({column} AT TIME ZONE 'UTC', '{pg_format}')"

    def day(self, column: str) -> str:
        """The calendar day (UTC) of a timestamp, cheap to group by: a date on
        PostgreSQL (``to_char`` on every row cost more than the grouping), the
        ``YYYY-MM-DD`` text on SQLite. ``day_bucket`` turns it into a bucket."""
        return activity.utc_day(column, self.sqlite)

    def bucket_start(self, column: str, unit: str) -> str:
        """The first day (UTC) of the calendar bucket of a timestamp, cheap to
        group by (``to_char`` on every row cost more than the grouping);
        ``day_bucket`` turns it into the bucket's text."""
        if self.sqlite:
            return f"strftime('{BUCKET_STARTS[unit]}', {column})"
        return f"date_trunc('{unit.lower()}', {column} AT TIME ZONE 'UTC')"

    def day_bucket(self, day: str, unit: str) -> str:
        """The calendar bucket of a ``day`` value, the same text as ``bucket``
        gives for any timestamp of that day."""
        sqlite_format, pg_format = BUCKET_FORMATS[unit]
        if self.sqlite:
            return f"strftime('{sqlite_format}', {day})"
        return f"to_char(CAST({day} AS TIMESTAMP), '{pg_format}')"

    def month_number(self, column: str) -> str:
        """Months since year 0 (UTC), so month differences are subtractions."""
        return activity.month_number(column, self.sqlite)

    def medians(self, source: str, group: str, value: str) -> str:
        """``SELECT group, median FROM source GROUP BY group``: the median of
        ``value`` per group (the mean of the two middle values of an even count).
        PostgreSQL collects each group's values in a hash aggregate and sorts
        them with its ordered-set aggregate, group by group: grouping with the
        aggregate itself would first sort every row by the group's text keys,
        which took three times as long (207,000 stays: 0.13 s against 0.52 s).
        SQLite has no ordered-set aggregate, so rows are numbered within their
        group."""
        if not self.sqlite:
            return (
                f"SELECT {group}, (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY v) "
                f"FROM unnest(vs) v) AS median "
                f"FROM (SELECT {group}, array_agg({value}) AS vs FROM {source} "
                f"GROUP BY {group}) groups"
            )
        return (
            f"SELECT {group}, AVG(v) AS median FROM (SELECT {group}, {value} AS v, "
            f"ROW_NUMBER() OVER (PARTITION BY {group} ORDER BY {value}) AS n, "
            f"COUNT(*) OVER (PARTITION BY {group}) AS total FROM {source}) "
            f"WHERE n IN ((total + 1) / 2, (total + 2) / 2) GROUP BY {group}"
        )

    def as_float(self, expression: str) -> str:
        return f"CAST({expression} AS {'REAL' if self.sqlite else 'DOUBLE PRECISION'})"


def literal(value: str) -> str:
    """A SQL string literal for a name declared in code (stage keys, kinds)."""
    return "'" + value.replace("'", "''") + "'"


def rounded(value: Any, places: int = 4) -> float | None:
    """Both engines' floats and decimals to one comparable value."""
    return None if value is None else round(float(value), places)
