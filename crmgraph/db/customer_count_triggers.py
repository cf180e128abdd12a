"""The triggers that keep ``customer_tally`` (crmgraph.db.customer_counts says
what it holds and why): statement triggers with transition tables on
PostgreSQL, row triggers on SQLite, the same statements on both.

Each trigger names the customers its statement may have changed and brings
them up to date (``customer_counts.refresh``): their stored keys out, their
keys as the tables are now in. Recomputing from the tables as they are, not
from what one statement changed, keeps the tally exact whatever order the
triggers of one statement run in: a data-modifying CTE that inserts a
customer and its role row (createCustomer does) fires both tables' triggers
at its end, each seeing both rows. Only the columns a key reads are
watched: an update of a name or of a stage's entry time changes nothing."""

from __future__ import annotations

from crmgraph.db import delta_fold
from crmgraph.db.customer_counts import (
    DELTAS,
    KEYS,
    TABLE,
    backfill,
    create_tables,
    refresh,
)
from crmgraph.db.trigger_sql import block, deferrable, function

ROLES = "customer_role"
# what a role row's part in a key depends on
ROLE_WATCHED = ("customer", "kind", "stage", "phase", "added_at IS NULL", "ended_at IS NULL")


def _customer_changed(o: str, n: str) -> str:
    return f"{o}.kind <> {n}.kind OR ({o}.deleted_at IS NULL) <> ({n}.deleted_at IS NULL)"


def _role_changed(o: str, n: str, *, sqlite: bool) -> str:
    differs = "IS NOT" if sqlite else "IS DISTINCT FROM"
    return " OR ".join(f"({o}.{c}) {differs} ({n}.{c})" for c in ROLE_WATCHED)


# -- PostgreSQL --------------------------------------------------------------


def _statement_trigger(name: str, event: str, table: str, tables: str) -> str:
    return (
        f"CREATE TRIGGER {name} AFTER {event} ON {table} REFERENCING {tables} "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {name}()"
    )


def _postgres_refreshing(table: str, prefix: str, key: str, changed: str) -> list[str]:
    """Functions and triggers on ``table``: inserted, updated (``changed``
    rows, as a condition on ``o`` and ``n``) and deleted rows' customers
    (column ``key``) refreshed."""
    both = "OLD TABLE AS old_rows NEW TABLE AS new_rows"
    moved = f"FROM old_rows o JOIN new_rows n ON n.id = o.id WHERE {changed}"
    updated = f"SELECT o.{key} {moved} UNION SELECT n.{key} {moved}"
    return [
        _added(prefix, key),
        function(f"{prefix}_changed", refresh(updated, sqlite=False)),
        function(f"{prefix}_gone", refresh(f"SELECT {key} FROM old_rows", sqlite=False)),
        _statement_trigger(f"{prefix}_added", "INSERT", table, "NEW TABLE AS new_rows"),
        _statement_trigger(f"{prefix}_changed", "UPDATE", table, both),
        _statement_trigger(f"{prefix}_gone", "DELETE", table, "OLD TABLE AS old_rows"),
    ]


def _added(prefix: str, key: str, *, deferred: bool = True) -> str:
    """The insert's function, which a bulk writer may defer (``deferred``;
    crmgraph.db.batch_rollups) when it refreshes the new customers itself."""
    body = refresh(f"SELECT {key} FROM new_rows", sqlite=False)
    return function(f"{prefix}_added", deferrable(body, deferred))


def insert_functions(*, deferred: bool = True) -> list[str]:
    """PostgreSQL: the inserts' functions of both tables, skipped while the
    rollups are deferred (or, not ``deferred``, as before migration 0055)."""
    return [
        _added("customer_tally", "id", deferred=deferred),
        _added("customer_role_tally", "customer", deferred=deferred),
    ]


def postgres_triggers() -> list[str]:
    return [
        *_postgres_refreshing("customer", "customer_tally", "id", _customer_changed("o", "n")),
        *_postgres_refreshing(
            ROLES, "customer_role_tally", "customer", _role_changed("o", "n", sqlite=False)
        ),
        function("customer_tally_cleared", [f"DELETE FROM {TABLE}", f"DELETE FROM {KEYS}"]),
        "CREATE TRIGGER customer_tally_cleared AFTER TRUNCATE ON customer "
        "FOR EACH STATEMENT EXECUTE FUNCTION customer_tally_cleared()",
        *delta_fold.postgres_compaction(DELTAS),
    ]


# -- SQLite ------------------------------------------------------------------


def _sqlite_trigger(name: str, event: str, body: list[str], when: str = "") -> str:
    condition = f" WHEN {when}" if when else ""
    return f"CREATE TRIGGER {name} {event}{condition} BEGIN\n{block(body)}END"


def sqlite_triggers() -> list[str]:
    watched = ", ".join(c.split()[0] for c in ROLE_WATCHED)
    return [
        _sqlite_trigger(
            "customer_tally_added", "AFTER INSERT ON customer", refresh("NEW.id", sqlite=True)
        ),
        _sqlite_trigger(
            "customer_tally_changed",
            "AFTER UPDATE OF kind, deleted_at ON customer",
            refresh("NEW.id", sqlite=True),
            _customer_changed("OLD", "NEW"),
        ),
        _sqlite_trigger(
            "customer_tally_gone", "AFTER DELETE ON customer", refresh("OLD.id", sqlite=True)
        ),
        _sqlite_trigger(
            "customer_role_tally_added",
            f"AFTER INSERT ON {ROLES}",
            refresh("NEW.customer", sqlite=True),
        ),
        _sqlite_trigger(
            "customer_role_tally_changed",
            f"AFTER UPDATE OF {watched} ON {ROLES}",
            refresh("OLD.customer, NEW.customer", sqlite=True),
            _role_changed("OLD", "NEW", sqlite=True),
        ),
        _sqlite_trigger(
            "customer_role_tally_gone",
            f"AFTER DELETE ON {ROLES}",
            refresh("OLD.customer", sqlite=True),
        ),
        *delta_fold.sqlite_compaction(DELTAS),
    ]


# -- the migration -------------------------------------------------------------

SQLITE_NAMES = (
    "customer_tally_added",
    "customer_tally_changed",
    "customer_tally_gone",
    "customer_role_tally_added",
    "customer_role_tally_changed",
    "customer_role_tally_gone",
    "customer_tally_compact",
)
POSTGRES_TRIGGERS = (
    *((name, "customer") for name in SQLITE_NAMES[:3]),
    *((name, ROLES) for name in SQLITE_NAMES[3:6]),
    ("customer_tally_cleared", "customer"),
    ("customer_tally_compact", TABLE),
)


def create_statements(engine_type: str) -> list[str]:
    """Tables and triggers, then every customer counted once."""
    sqlite = engine_type != "postgres"
    made = sqlite_triggers() if sqlite else postgres_triggers()
    analyzed = [f"ANALYZE {TABLE}", f"ANALYZE {KEYS}"]
    return [*create_tables(sqlite=sqlite), *made, *backfill(sqlite=sqlite), *analyzed]


def drop_statements(engine_type: str) -> list[str]:
    tables = [f"DROP TABLE {TABLE}", f"DROP TABLE {KEYS}"]
    if engine_type != "postgres":
        return [*(f"DROP TRIGGER {name}" for name in SQLITE_NAMES), *tables]
    triggers = [f"DROP TRIGGER {name} ON {table}" for name, table in POSTGRES_TRIGGERS]
    functions = [f"DROP FUNCTION {name}()" for name, _ in POSTGRES_TRIGGERS]
    return [*triggers, *functions, *tables]
