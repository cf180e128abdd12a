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

from dataclasses import dataclass

from crmgraph.db.tallies import (
    Column,
    Holders,
    Tally,
    drop_statements,
    statement_triggers,
)
from crmgraph.db.trigger_sql import block, function


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
        return drop_statements(self.table, engine_type)


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
        function(f"{t}_add", [rollup.add("new_rows", sqlite=False)]),
        function(f"{t}_deleted", rollup.recount("SELECT customer FROM old_rows", sqlite=False)),
        function(f"{t}_updated", rollup.recount(changed, sqlite=False)),
        *statement_triggers(t),
    ]


def _sqlite_triggers(rollup: Rollup) -> list[str]:
    t = rollup.table
    new_row = "(SELECT " + ", ".join(f"NEW.{c} AS {c}" for c in rollup.watched) + ") new_rows"

    def trigger(event: str, body: list[str]) -> str:
        name = event.split()[0].lower()
        return f"CREATE TRIGGER {t}_{name} AFTER {event} ON interaction BEGIN\n{block(body)}END"

    return [
        trigger("INSERT", [rollup.add(new_row, sqlite=True)]),
        trigger("DELETE", rollup.recount("OLD.customer", sqlite=True)),
        trigger(
            f"UPDATE OF {', '.join(rollup.watched)}",
            rollup.recount("OLD.customer, NEW.customer", sqlite=True),
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
    values=(
        Column("interactions", "BIGINT NOT NULL", "COUNT(*)"),
        Column("purchases", "BIGINT NOT NULL", "COUNT(amount)"),
    ),
    watched=("customer", "occurred_at", "amount"),
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

# How many customers bought in each month (UTC): the months' distinct buyers,
# which no sum of days or of other months gives (crmgraph.analytics.revenue).
BUYERS = Holders(
    "purchase_month", MONTHS.table, MONTHS.keys[1], "purchases", "amount IS NOT NULL", "customers"
)

# Every rollup of ``interaction``, for whatever writes rows with the triggers
# off, in the order they are counted (a holders count reads its rollup).
ROLLUPS: tuple[Rollup | Tally | Holders, ...] = (ACTIVITY, MONTHS, DAYS, BUYERS)

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
