"""Rollups of ``interaction`` kept by database triggers, for the analytics:
``customer_activity``, one row per customer with interactions, the lifetime
totals the analytics facts aggregate (crmgraph.analytics.facts); and
``customer_month``, one row per customer and calendar month (UTC) with
interactions, the months in which each customer was active, which cohort
retention counts (crmgraph.analytics.cohorts): about 650,000 rows for a
million interactions, read by an integer key instead of computing the month
of every interaction.

Kept exact by triggers in the writing transaction, on both engines: an insert
adds the new rows to the totals; a delete or an update (which may move rows
between customers, as a merge does) counts the touched customers again from
their interactions. PostgreSQL uses statement triggers with transition
tables, so a bulk insert of a million rows updates each row of a rollup once,
in key order (a fixed lock order for concurrent bulk writers); SQLite has only
row triggers. Triggers rather than application code because interactions are
written by many paths (mutations, merges, imports, the demo and bench seeds,
plugins with their own SQL), and a rollup one of them forgets is silently
wrong.

Amounts are summed in cents, as integers: exact on both engines, where
SQLite's floating-point sums would depend on the order rows were added in.

The activity totals are lifetime totals, so they answer a question only when
its period holds every interaction; ``covers_every_interaction`` is that test,
for the query to pick the rollup or the interactions themselves.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass


def utc_day(column: str, sqlite: bool) -> str:
    """The calendar day (UTC) of a timestamp (the analytics' ``Dialect.day``);
    the PostgreSQL spelling is also the expression of the planner statistics
    that migration 0027 declares, which must match it to tell the planner how
    many groups."""
    if sqlite:
        return f"date({column})"
    return f"CAST({column} AT TIME ZONE 'UTC' AS DATE)"


def month_number(column: str, sqlite: bool) -> str:
    """Months since year 0 of a timestamp, in UTC, so month differences are
    subtractions (the same whole numbers on both engines)."""
    if sqlite:
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


@dataclass(frozen=True)
class Column:
    name: str
    sql_type: str
    aggregate: str  # over the interactions of one group
    merge: str = "sum"  # how stored and new totals combine: sum, earliest, latest
    sqlite_aggregate: str = ""  # where SQLite spells it differently

    def expression(self, sqlite: bool) -> str:
        return self.sqlite_aggregate if sqlite and self.sqlite_aggregate else self.aggregate


@dataclass(frozen=True)
class Rollup:
    table: str
    keys: tuple[Column, ...]  # their ``aggregate`` is the grouping expression
    values: tuple[Column, ...]
    # What the triggers look at: an update that changes none of these changes no total.
    watched: tuple[str, ...]

    @property
    def columns(self) -> str:
        return ", ".join(c.name for c in (*self.keys, *self.values))

    def totals_select(self, source: str, where: str = "", *, sqlite: bool) -> str:
        """The rollup's rows for the interactions in ``source``, in key order."""
        keys = [k.expression(sqlite) for k in self.keys]
        selected = [f"{e} AS {k.name}" for e, k in zip(keys, self.keys, strict=True)]
        selected += [f"{c.expression(sqlite)} AS {c.name}" for c in self.values]
        order = ", ".join(str(n + 1) for n in range(len(keys)))
        return (
            f"SELECT {', '.join(selected)} FROM {source} {where} "
            f"GROUP BY {', '.join(keys)} ORDER BY {order}"
        )

    def add(self, source: str, *, sqlite: bool) -> str:
        """Adds the interactions in ``source`` to the totals."""
        merged = ", ".join(f"{c.name} = {_merge(self.table, c)}" for c in self.values)
        keys = ", ".join(k.name for k in self.keys)
        return (
            f"INSERT INTO {self.table} ({self.columns}) "
            f"{self.totals_select(source, sqlite=sqlite)} "
            f"ON CONFLICT ({keys}) DO UPDATE SET {merged}"
        )

    def recount(self, customers: str, *, sqlite: bool) -> list[str]:
        """Counts the customers ``customers`` (a list or a subquery) again."""
        totals = self.totals_select(
            "interaction", f"WHERE customer IN ({customers})", sqlite=sqlite
        )
        return [
            f"DELETE FROM {self.table} WHERE customer_id IN ({customers})",
            f"INSERT INTO {self.table} ({self.columns}) {totals}",
        ]

    def backfill(self, *, sqlite: bool) -> str:
        """Counts every interaction into the (empty) rollup."""
        totals = self.totals_select("interaction", sqlite=sqlite)
        return f"INSERT INTO {self.table} ({self.columns}) {totals}"

    def create_table(self) -> str:
        columns = [f"{c.name} {c.sql_type}" for c in (*self.keys, *self.values)]
        keys = ", ".join(k.name for k in self.keys)
        return f"CREATE TABLE {self.table} ({', '.join(columns)}, PRIMARY KEY ({keys}))"

    def create_statements(self, engine_type: str) -> list[str]:
        """Table and triggers, then the existing history counted once."""
        sqlite = engine_type != "postgres"
        statements = [self.create_table()]
        statements += _sqlite_triggers(self) if sqlite else _postgres_triggers(self)
        statements.append(self.backfill(sqlite=sqlite))
        # statistics now, not when autovacuum comes by: the planner's first
        # guess for a table filled in its creating transaction is far off
        return [*statements, f"ANALYZE {self.table}"]

    def drop_statements(self, engine_type: str) -> list[str]:
        return _drop_statements(self.table, engine_type)


def _drop_statements(table: str, engine_type: str) -> list[str]:
    """The table and the triggers ``_postgres_triggers`` / ``_sqlite_triggers``
    (or a tally's) created for it."""
    if engine_type != "postgres":
        triggers = [f"DROP TRIGGER {table}_{e}" for e in ("insert", "delete", "update")]
        return [*triggers, f"DROP TABLE {table}"]
    events = ("insert", "delete", "update", "truncate")
    functions = ("add", "deleted", "updated", "clear")
    return [
        *(f"DROP TRIGGER {table}_{e} ON interaction" for e in events),
        *(f"DROP FUNCTION {table}_{f}()" for f in functions),
        f"DROP TABLE {table}",
    ]


def _merge(table: str, column: Column) -> str:
    """The stored total ``table.x`` combined with the new one ``EXCLUDED.x``;
    earliest and latest keep the other side where one is NULL (SQLite's
    two-argument MIN and MAX would be NULL; PostgreSQL's LEAST and GREATEST
    are not on SQLite)."""
    stored, new = f"{table}.{column.name}", f"EXCLUDED.{column.name}"
    if column.merge == "sum":
        return f"{stored} + {new}"
    keep = "<=" if column.merge == "earliest" else ">="
    return f"CASE WHEN {new} IS NULL OR {stored} {keep} {new} THEN {stored} ELSE {new} END"


def _block(body: list[str]) -> str:
    """Statements as the body of a trigger or a plpgsql function."""
    return "".join(f"    {s};\n" for s in body)


def _function(name: str, body: list[str]) -> str:
    return (
        f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
        f"BEGIN\n{_block(body)}    RETURN NULL;\nEND $$"
    )


def _changed(rollup: Rollup, side: str) -> str:
    old = ", ".join(f"o.{c}" for c in rollup.watched)
    new = ", ".join(f"n.{c}" for c in rollup.watched)
    return (
        f"SELECT {side}.customer FROM old_rows o JOIN new_rows n ON n.id = o.id "
        f"WHERE ({old}) IS DISTINCT FROM ({new})"
    )


def _postgres_triggers(rollup: Rollup) -> list[str]:
    t = rollup.table
    changed = f"{_changed(rollup, 'o')} UNION {_changed(rollup, 'n')}"
    return [
        _function(f"{t}_add", [rollup.add("new_rows", sqlite=False)]),
        _function(f"{t}_deleted", rollup.recount("SELECT customer FROM old_rows", sqlite=False)),
        _function(f"{t}_updated", rollup.recount(changed, sqlite=False)),
        *_postgres_statement_triggers(t),
    ]


def _postgres_statement_triggers(t: str) -> list[str]:
    """The truncate function and the four statement triggers calling
    ``{t}_add``, ``{t}_deleted``, ``{t}_updated`` and ``{t}_clear``."""
    return [
        _function(f"{t}_clear", [f"TRUNCATE {t}"]),
        f"CREATE TRIGGER {t}_insert AFTER INSERT ON interaction REFERENCING NEW TABLE AS "
        f"new_rows FOR EACH STATEMENT EXECUTE FUNCTION {t}_add()",
        f"CREATE TRIGGER {t}_delete AFTER DELETE ON interaction REFERENCING OLD TABLE AS "
        f"old_rows FOR EACH STATEMENT EXECUTE FUNCTION {t}_deleted()",
        f"CREATE TRIGGER {t}_update AFTER UPDATE ON interaction REFERENCING OLD TABLE AS "
        f"old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION {t}_updated()",
        f"CREATE TRIGGER {t}_truncate AFTER TRUNCATE ON interaction "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {t}_clear()",
    ]


def _sqlite_triggers(rollup: Rollup) -> list[str]:
    t = rollup.table
    new_row = "(SELECT " + ", ".join(f"NEW.{c} AS {c}" for c in rollup.watched) + ") new_rows"

    def trigger(event: str, body: list[str]) -> str:
        name = event.split()[0].lower()
        return f"CREATE TRIGGER {t}_{name} AFTER {event} ON interaction BEGIN\n{_block(body)}END"

    return [
        trigger("INSERT", [rollup.add(new_row, sqlite=True)]),
        trigger("DELETE", rollup.recount("OLD.customer", sqlite=True)),
        trigger(
            f"UPDATE OF {', '.join(rollup.watched)}",
            rollup.recount("OLD.customer, NEW.customer", sqlite=True),
        ),
    ]


@dataclass(frozen=True)
class Tally:
    """A rollup of every customer's interactions together, by keys that are
    not the customer (a day, a channel...): the per-customer rollups do not
    shrink the data at ten interactions a customer, this one does (a few
    hundred rows a day however many customers). The reports of every active
    customer read it and subtract the few left out (``AnalyticsScope.left_out``).

    Its values are sums only, so a write changes them by its rows' shares:
    ``+`` each new row's, ``-`` each old row's (a delete, both sides of an
    update), grouped by key and added in key order; a key left with no rows
    is deleted, so the tally is always what ``totals_select`` counts again.
    Only the interactions ``counted`` are written to it: others cost a write
    nothing more. Keys must not be NULL (a primary key): a nullable column is
    two keys, its value or '' and whether it is stated."""

    table: str
    keys: tuple[Column, ...]  # ``aggregate``: the key of one interaction
    # ``aggregate``: one interaction's share, never NULL; the first counts rows
    values: tuple[Column, ...]
    watched: tuple[str, ...]
    counted: str

    @property
    def columns(self) -> str:
        return ", ".join(c.name for c in (*self.keys, *self.values))

    def _keys(self, sqlite: bool) -> list[str]:
        return [k.expression(sqlite) for k in self.keys]

    def totals_select(self, source: str, where: str = "", *, sqlite: bool) -> str:
        """The tally's rows for the interactions in ``source``, in key order."""
        keys = self._keys(sqlite)
        selected = [f"{e} AS {k.name}" for e, k in zip(keys, self.keys, strict=True)]
        selected += [f"SUM({c.expression(sqlite)}) AS {c.name}" for c in self.values]
        order = ", ".join(str(n + 1) for n in range(len(keys)))
        condition = f"{self.counted} AND {where}" if where else self.counted
        return (
            f"SELECT {', '.join(selected)} FROM {source} WHERE {condition} "
            f"GROUP BY {', '.join(keys)} ORDER BY {order}"
        )

    def change(self, sources: list[tuple[str, int]], *, sqlite: bool) -> str:
        """Adds ``sign`` times the shares of the rows of each ``(source, sign)``."""
        names = [k.name for k in self.keys]
        parts = []
        for source, sign in sources:
            keys = [f"{e} AS {n}" for e, n in zip(self._keys(sqlite), names, strict=True)]
            shares = [f"{sign} * ({c.expression(sqlite)}) AS {c.name}" for c in self.values]
            parts.append(f"SELECT {', '.join(keys + shares)} FROM {source} WHERE {self.counted}")
        sums = ", ".join(f"SUM({c.name})" for c in self.values)
        nonzero = " OR ".join(f"SUM({c.name}) <> 0" for c in self.values)
        merged = ", ".join(
            f"{c.name} = {self.table}.{c.name} + EXCLUDED.{c.name}" for c in self.values
        )
        order = ", ".join(str(n + 1) for n in range(len(names)))
        return (
            f"INSERT INTO {self.table} ({self.columns}) SELECT {', '.join(names)}, {sums} "
            f"FROM ({' UNION ALL '.join(parts)}) d GROUP BY {', '.join(names)} "
            f"HAVING {nonzero} ORDER BY {order} "
            f"ON CONFLICT ({', '.join(names)}) DO UPDATE SET {merged}"
        )

    def clear_empty(self, source: str, *, sqlite: bool) -> str:
        """Deletes the keys of ``source``'s rows left with no rows."""
        names = ", ".join(k.name for k in self.keys)
        return (
            f"DELETE FROM {self.table} WHERE {self.values[0].name} = 0 AND ({names}) IN "
            f"(SELECT {', '.join(self._keys(sqlite))} FROM {source} WHERE {self.counted})"
        )

    def backfill(self, *, sqlite: bool) -> str:
        totals = self.totals_select("interaction", sqlite=sqlite)
        return f"INSERT INTO {self.table} ({self.columns}) {totals}"

    def create_statements(self, engine_type: str) -> list[str]:
        sqlite = engine_type != "postgres"
        columns = [f"{c.name} {c.sql_type}" for c in (*self.keys, *self.values)]
        names = ", ".join(k.name for k in self.keys)
        table = f"CREATE TABLE {self.table} ({', '.join(columns)}, PRIMARY KEY ({names}))"
        triggers = _sqlite_tally_triggers(self) if sqlite else _postgres_tally_triggers(self)
        return [table, *triggers, self.backfill(sqlite=sqlite), f"ANALYZE {self.table}"]

    def drop_statements(self, engine_type: str) -> list[str]:
        return _drop_statements(self.table, engine_type)


def _postgres_tally_triggers(tally: Tally) -> list[str]:
    t = tally.table
    old, new = ("old_rows", -1), ("new_rows", 1)
    removed = [tally.change([old], sqlite=False), tally.clear_empty("old_rows", sqlite=False)]
    changed = [tally.change([new, old], sqlite=False), tally.clear_empty("old_rows", sqlite=False)]
    return [
        _function(f"{t}_add", [tally.change([new], sqlite=False)]),
        _function(f"{t}_deleted", removed),
        _function(f"{t}_updated", changed),
        *_postgres_statement_triggers(t),
    ]


def _sqlite_tally_triggers(tally: Tally) -> list[str]:
    t = tally.table

    def row(side: str) -> str:
        columns = ", ".join(f"{side}.{c} AS {c}" for c in tally.watched)
        return f"(SELECT {columns}) {side.lower()}_rows"

    def trigger(event: str, body: list[str]) -> str:
        name = event.split()[0].lower()
        return f"CREATE TRIGGER {t}_{name} AFTER {event} ON interaction BEGIN\n{_block(body)}END"

    old, new = (row("OLD"), -1), (row("NEW"), 1)
    return [
        trigger("INSERT", [tally.change([new], sqlite=True)]),
        trigger(
            "DELETE",
            [tally.change([old], sqlite=True), tally.clear_empty(row("OLD"), sqlite=True)],
        ),
        trigger(
            f"UPDATE OF {', '.join(tally.watched)}",
            [tally.change([new, old], sqlite=True), tally.clear_empty(row("OLD"), sqlite=True)],
        ),
    ]


ACTIVITY = Rollup(
    "customer_activity",
    keys=(Column("customer_id", "INTEGER NOT NULL", "customer"),),
    values=(
        Column("interactions", "BIGINT NOT NULL", "COUNT(*)"),
        Column("first_contact_at", "TIMESTAMPTZ NOT NULL", "MIN(occurred_at)", "earliest"),
        Column("last_contact_at", "TIMESTAMPTZ NOT NULL", "MAX(occurred_at)", "latest"),
        Column("purchases", "BIGINT NOT NULL", "COUNT(amount)"),
        Column(
            "purchase_cents",
            "BIGINT NOT NULL",
            "COALESCE(SUM(CAST(ROUND(amount * 100) AS BIGINT)), 0)",
        ),
        Column(
            "last_purchase_at",
            "TIMESTAMPTZ NULL",
            "MAX(CASE WHEN amount IS NOT NULL THEN occurred_at END)",
            "latest",
        ),
        Column("rated", "BIGINT NOT NULL", "COUNT(satisfaction)"),
        Column("rating_sum", "BIGINT NOT NULL", "COALESCE(SUM(satisfaction), 0)"),
    ),
    watched=("customer", "occurred_at", "amount", "satisfaction"),
)

MONTHS = Rollup(
    "customer_month",
    keys=(
        Column("customer_id", "INTEGER NOT NULL", "customer"),
        Column(
            "month",
            "INTEGER NOT NULL",
            month_number("occurred_at", sqlite=False),
            sqlite_aggregate=month_number("occurred_at", sqlite=True),
        ),
    ),
    values=(Column("interactions", "BIGINT NOT NULL", "COUNT(*)"),),
    watched=("customer", "occurred_at"),
)

RATED_OR_BOUGHT = "customer IS NOT NULL AND (satisfaction IS NOT NULL OR amount IS NOT NULL)"

# The rated interactions and the purchases of every customer by UTC day,
# channel, outcome and direction (crmgraph.analytics.satisfaction, revenue).
DAYS = Tally(
    "interaction_day",
    keys=(
        Column(
            "day",
            "DATE NOT NULL",
            utc_day("occurred_at", False),
            sqlite_aggregate=utc_day("occurred_at", True),
        ),
        Column("channel", "VARCHAR(32) NOT NULL", "channel"),
        Column("outcome", "VARCHAR(64) NOT NULL", "COALESCE(outcome, '')"),
        Column("outcome_stated", "INTEGER NOT NULL", "CASE WHEN outcome IS NULL THEN 0 ELSE 1 END"),
        Column("direction", "VARCHAR(16) NOT NULL", "direction"),
    ),
    values=(
        Column("entries", "BIGINT NOT NULL", "1"),
        Column("rated", "BIGINT NOT NULL", "CASE WHEN satisfaction IS NULL THEN 0 ELSE 1 END"),
        Column("rating_sum", "BIGINT NOT NULL", "COALESCE(satisfaction, 0)"),
        Column("satisfied", "BIGINT NOT NULL", "CASE WHEN satisfaction >= 4 THEN 1 ELSE 0 END"),
        Column("purchases", "BIGINT NOT NULL", "CASE WHEN amount IS NULL THEN 0 ELSE 1 END"),
        Column(
            "purchase_cents", "BIGINT NOT NULL", "COALESCE(CAST(ROUND(amount * 100) AS BIGINT), 0)"
        ),
    ),
    watched=(
        "customer",
        "occurred_at",
        "channel",
        "outcome",
        "direction",
        "satisfaction",
        "amount",
    ),
    counted=RATED_OR_BOUGHT,
)

# Every rollup of ``interaction``, for whatever writes rows with the triggers off.
ROLLUPS: tuple[Rollup | Tally, ...] = (ACTIVITY, MONTHS, DAYS)

# Serves the period test (MIN/MAX of occurred_at) and the recent-satisfaction
# windows, which read the latest interactions across all customers.
OCCURRED_INDEX = (
    "CREATE INDEX IF NOT EXISTS ix_interaction_occurred ON interaction "
    "(occurred_at, customer, satisfaction)"
)


# Open needs (the need statuses still to be met), and an index over them alone:
# the facts count each customer's open and overdue needs from it (an index-only
# scan of about half the needs, where ``need_status`` read every open row).
OPEN_NEED = "status IN ('OPEN', 'IN_PROGRESS')"
OPEN_NEEDS_INDEX = (
    f"CREATE INDEX IF NOT EXISTS ix_need_open ON need (customer, due_date) WHERE {OPEN_NEED}"
)


def covers_every_interaction(ts: str) -> str:
    """A condition with two placeholders (the period's start and end, as ``ts``
    casts): true when the period holds every interaction, so lifetime totals
    are the period's totals. MIN and MAX read one end of
    ``ix_interaction_occurred`` each."""
    return (
        f"(SELECT MIN(occurred_at) FROM interaction) >= {ts} "
        f"AND (SELECT MAX(occurred_at) FROM interaction) < {ts}"
    )


@dataclass(frozen=True)
class DaySplit:
    """A period ``[starts, ends)`` as the whole UTC days a tally by day answers
    (``days``: first day, day after the last; None when there are none) and
    the rest, at most two spans of less than a day each at its ends, which
    only the interactions themselves answer."""

    days: tuple[datetime.date, datetime.date] | None
    edges: tuple[tuple[datetime.datetime, datetime.datetime], ...]

    @classmethod
    def of(cls, starts: datetime.datetime, ends: datetime.datetime) -> DaySplit:
        starts, ends = starts.astimezone(datetime.UTC), ends.astimezone(datetime.UTC)
        first = starts.date() + datetime.timedelta(days=0 if _midnight(starts) == starts else 1)
        last = ends.date()
        if first >= last:
            return cls(None, ((starts, ends),) if starts < ends else ())
        spans = ((starts, _midnight_of(first)), (_midnight_of(last), ends))
        return cls((first, last), tuple((a, b) for a, b in spans if a < b))


def _midnight(moment: datetime.datetime) -> datetime.datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def _midnight_of(day: datetime.date) -> datetime.datetime:
    return datetime.datetime(day.year, day.month, day.day, tzinfo=datetime.UTC)


def day_value(day: datetime.date, sqlite: bool) -> tuple[str, object]:
    """A bound day compared with a tally's ``day`` (a DATE on PostgreSQL, the
    ``YYYY-MM-DD`` text of ``date()`` on SQLite): placeholder and value."""
    return ("{}", day.isoformat()) if sqlite else ("CAST({} AS DATE)", day)
