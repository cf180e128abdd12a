"""Portable SQL building blocks for the analytics: a fragment builder that keeps
bound values in order, and the few expressions SQLite and PostgreSQL spell
differently (timestamps as parameters, day differences, calendar buckets)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from crmgraph.db.engine import Database

# strftime / to_char patterns per calendar bucket (same text on both engines)
BUCKET_FORMATS = {
    "DAY": ("%Y-%m-%d", "YYYY-MM-DD"),
    "MONTH": ("%Y-%m", "YYYY-MM"),
    "YEAR": ("%Y", "YYYY"),
}


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

    async def fetch(self, db: Database) -> list[dict[str, Any]]:
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

    def month_number(self, column: str) -> str:
        """Months since year 0 (UTC), so month differences are subtractions."""
        if self.sqlite:
            return (
                f"(CAST(strftime('%Y', {column}) AS INTEGER) * 12 "
                f"+ CAST(strftime('%m', {column}) AS INTEGER) - 1)"
            )
        # date_part (double precision) rather than EXTRACT (numeric since
        # PostgreSQL 14): the same whole numbers, about 1.4 times faster
        return (
            f"(CAST(date_part('year', {column} AT TIME ZONE 'UTC') AS INTEGER) * 12 "
            f"+ CAST(date_part('month', {column} AT TIME ZONE 'UTC') AS INTEGER) - 1)"
        )

    def medians(self, source: str, group: str, value: str) -> str:
        """``SELECT group, median FROM source GROUP BY group``: the median of
        ``value`` per group (the mean of the two middle values of an even count).
        PostgreSQL's ordered-set aggregate sorts each group on its own; SQLite
        has none, so rows are numbered within their group."""
        if not self.sqlite:
            return (
                f"SELECT {group}, percentile_cont(0.5) WITHIN GROUP (ORDER BY {value}) "
                f"AS median FROM {source} GROUP BY {group}"
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
