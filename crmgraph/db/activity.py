"""Rollups of ``interaction`` kept by database triggers, for the analytics:
``customer_activity``, one row per customer with interactions, the lifetime
totals the analytics facts aggregate (crmgraph.analytics.facts).

(A second one, each customer's active calendar months for cohort retention,
was measured and left out: 22-28x the baseline scan against 25-33x without
it, within the noise, for a trigger on every write.)

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

# What the triggers look at: an update that changes none of these changes no total.
WATCHED = ("customer", "occurred_at", "amount", "satisfaction")


@dataclass(frozen=True)
class Column:
    name: str
    sql_type: str
    aggregate: str  # over the interactions of one group
    merge: str = "sum"  # how stored and new totals combine: sum, earliest, latest


@dataclass(frozen=True)
class Rollup:
    table: str
    keys: tuple[Column, ...]  # their ``aggregate`` is the grouping expression
    values: tuple[Column, ...]

    @property
    def columns(self) -> str:
        return ", ".join(c.name for c in (*self.keys, *self.values))

    def totals_select(self, source: str, where: str = "") -> str:
        """The rollup's rows for the interactions in ``source``, in key order."""
        keys = [k.aggregate for k in self.keys]
        selected = [f"{e} AS {k.name}" for e, k in zip(keys, self.keys, strict=True)]
        selected += [f"{c.aggregate} AS {c.name}" for c in self.values]
        order = ", ".join(str(n + 1) for n in range(len(keys)))
        return (
            f"SELECT {', '.join(selected)} FROM {source} {where} "
            f"GROUP BY {', '.join(keys)} ORDER BY {order}"
        )

    def add(self, source: str) -> str:
        """Adds the interactions in ``source`` to the totals."""
        merged = ", ".join(f"{c.name} = {_merge(self.table, c)}" for c in self.values)
        keys = ", ".join(k.name for k in self.keys)
        return (
            f"INSERT INTO {self.table} ({self.columns}) "
            f"{self.totals_select(source)} "
            f"ON CONFLICT ({keys}) DO UPDATE SET {merged}"
        )

    def recount(self, customers: str) -> list[str]:
        """Counts the customers ``customers`` (a list or a subquery) again."""
        return [
            f"DELETE FROM {self.table} WHERE customer_id IN ({customers})",
            f"INSERT INTO {self.table} ({self.columns}) "
            + self.totals_select("interaction", f"WHERE customer IN ({customers})"),
        ]

    def create_table(self) -> str:
        columns = [f"{c.name} {c.sql_type}" for c in (*self.keys, *self.values)]
        keys = ", ".join(k.name for k in self.keys)
        return f"CREATE TABLE {self.table} ({', '.join(columns)}, PRIMARY KEY ({keys}))"

    def create_statements(self, engine_type: str) -> list[str]:
        """Table and triggers, then the existing history counted once."""
        sqlite = engine_type != "postgres"
        statements = [self.create_table()]
        statements += _sqlite_triggers(self) if sqlite else _postgres_triggers(self)
        backfill = self.totals_select("interaction")
        statements.append(f"INSERT INTO {self.table} ({self.columns}) {backfill}")
        # statistics now, not when autovacuum comes by: the planner's first
        # guess for a table filled in its creating transaction is far off
        return [*statements, f"ANALYZE {self.table}"]

    def drop_statements(self, engine_type: str) -> list[str]:
        if engine_type != "postgres":
            triggers = [f"DROP TRIGGER {self.table}_{e}" for e in ("insert", "delete", "update")]
            return [*triggers, f"DROP TABLE {self.table}"]
        events = ("insert", "delete", "update", "truncate")
        functions = ("add", "deleted", "updated", "clear")
        return [
            *(f"DROP TRIGGER {self.table}_{e} ON interaction" for e in events),
            *(f"DROP FUNCTION {self.table}_{f}()" for f in functions),
            f"DROP TABLE {self.table}",
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


def _changed(side: str) -> str:
    old = ", ".join(f"o.{c}" for c in WATCHED)
    new = ", ".join(f"n.{c}" for c in WATCHED)
    return (
        f"SELECT {side}.customer FROM old_rows o JOIN new_rows n ON n.id = o.id "
        f"WHERE ({old}) IS DISTINCT FROM ({new})"
    )


def _postgres_triggers(rollup: Rollup) -> list[str]:
    t = rollup.table
    changed = f"{_changed('o')} UNION {_changed('n')}"
    return [
        _function(f"{t}_add", [rollup.add("new_rows")]),
        _function(f"{t}_deleted", rollup.recount("SELECT customer FROM old_rows")),
        _function(f"{t}_updated", rollup.recount(changed)),
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
    new_row = "(SELECT " + ", ".join(f"NEW.{c} AS {c}" for c in WATCHED) + ") new_rows"

    def trigger(event: str, body: list[str]) -> str:
        name = event.split()[0].lower()
        return f"CREATE TRIGGER {t}_{name} AFTER {event} ON interaction BEGIN\n{_block(body)}END"

    return [
        trigger("INSERT", [rollup.add(new_row)]),
        trigger("DELETE", rollup.recount("OLD.customer")),
        trigger(f"UPDATE OF {', '.join(WATCHED)}", rollup.recount("OLD.customer, NEW.customer")),
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
)

# Serves the period test (MIN/MAX of occurred_at) and the recent-satisfaction
# windows, which read the latest interactions across all customers.
OCCURRED_INDEX = (
    "CREATE INDEX IF NOT EXISTS ix_interaction_occurred ON interaction "
    "(occurred_at, customer, satisfaction)"
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
