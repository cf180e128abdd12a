"""Cohort counts kept by database triggers, for cohort retention
(crmgraph.analytics.cohorts): at 1,000,000 customers the report joined every
customer with its ~6.5 active months (``customer_month``) on each request,
3.9 s; these tables hold the answer's counts.

- ``customer_cohort``: per active (not deleted) customer, the cohort it joins
  per way of joining: ``kind = ''`` by its creation, and for each type in its
  stage history by its first entry into that type (issue 24), with the
  instant (``acquired_at``) and its month (``cohort``);
- ``cohort_size``: customers per (kind, cohort);
- ``cohort_activity``: customers per (kind, cohort, month) active in the month
  (a row of ``customer_month``).

Exact in the writing transaction, on both engines, as crmgraph.db.activity's
rollups: ``customer_cohort`` is recomputed for the customers a write to
``customer`` (created, deleted, restored, removed) or ``stage_change`` touches,
and each insert or delete of it adds or takes its customers' months (as
``customer_month`` holds them then) to or from the counts; each write to
``interaction`` adds or takes the (customer, month) pairs it made active or
idle, for the cohorts the customer is in then. So ``cohort_activity`` stays
the join of the two whichever changes first (a customer removed with its
interactions, in either order). PostgreSQL uses statement triggers with
transition tables for inserts and deletes and row triggers for the few
updates that change a count (``UPDATED``); SQLite row triggers.

``cohort_size`` and ``cohort_activity`` are delta tables
(crmgraph.db.delta_fold, migration 0048): a key's count is the sum of its
rows. Every createCustomer and deleteCustomer of a month changes the same
keys; counter rows upserted in place made concurrent writers queue on them
and deadlock on PostgreSQL (a delete's -1 against a create's +1). Writers
now only insert signed rows, and a fold every 256 rows sums them.
"""

from __future__ import annotations

from crmgraph.db import delta_fold
from crmgraph.db.activity import month_number
from crmgraph.db.trigger_sql import block, deferrable, function

MEMBERS = "customer_cohort"
SIZES = "cohort_size"
ACTIVE = "cohort_activity"
# delta tables (crmgraph.db.delta_fold): any number of rows per key, summed
DELTAS = (
    delta_fold.DeltaTable(SIZES, ("kind", "cohort"), "customers", 2812045),
    delta_fold.DeltaTable(ACTIVE, ("kind", "cohort", "month"), "customers", 2812046),
)
MEMBERS_TABLE = (
    f"CREATE TABLE {MEMBERS} (customer_id INTEGER NOT NULL, kind VARCHAR(64) NOT NULL, "
    "acquired_at TIMESTAMPTZ NOT NULL, cohort INTEGER NOT NULL, PRIMARY KEY (customer_id, kind))",
    f"CREATE INDEX ix_{MEMBERS}_acquired ON {MEMBERS} (kind, acquired_at)",
)
COLUMNS = {
    SIZES: "kind VARCHAR(64) NOT NULL, cohort INTEGER NOT NULL, customers BIGINT NOT NULL",
    ACTIVE: "kind VARCHAR(64) NOT NULL, cohort INTEGER NOT NULL, month INTEGER NOT NULL, "
    "customers BIGINT NOT NULL",
}


def _table(t: delta_fold.DeltaTable, name: str, *, sqlite: bool) -> str:
    pk = "INTEGER PRIMARY KEY" if sqlite else "BIGSERIAL PRIMARY KEY"
    return f"CREATE TABLE {name} (id {pk}, {COLUMNS[t.table]})"


def _index(t: delta_fold.DeltaTable) -> str:
    """By key, not unique: an insert checks no other writer's row."""
    return f"CREATE INDEX ix_{t.table}_key ON {t.table} ({t.key_list})"


def members_select(ids: str | None, sqlite: bool, *, created: bool = True) -> str:
    """``customer_cohort``'s rows of the customers ``ids`` (a list or a
    subquery; None: every customer): by creation (unless not ``created``)
    and by first entry into each type of their history."""
    only = f" AND c.id IN ({ids})" if ids is not None else ""
    first = "MIN(sc.at)"
    by_type = (
        f"SELECT sc.customer, sc.kind, {first}, {month_number(first, sqlite)} "
        "FROM stage_change sc JOIN customer c ON c.id = sc.customer "
        f"WHERE c.deleted_at IS NULL{only} GROUP BY sc.customer, sc.kind"
    )
    if not created:
        return by_type
    return (
        f"SELECT c.id, '', c.created_at, {month_number('c.created_at', sqlite)} "
        f"FROM customer c WHERE c.deleted_at IS NULL{only} UNION ALL {by_type}"
    )


def recompute(ids: str, sqlite: bool, *, created: bool = True) -> list[str]:
    """The customers ``ids``' cohorts again (the counts follow by trigger)."""
    kinds = "" if created else " AND kind <> ''"
    return [
        f"DELETE FROM {MEMBERS} WHERE customer_id IN ({ids}){kinds}",
        f"INSERT INTO {MEMBERS} (customer_id, kind, acquired_at, cohort) "
        f"{members_select(ids, sqlite, created=created)}",
    ]


def _add(table: str, keys: str, select: str) -> str:
    """Delta rows only: no writer waits on another's counter row."""
    return f"INSERT INTO {table} ({keys}, customers) {select}"


def members_changed(rows: str, sign: int) -> list[str]:
    """``rows`` of ``customer_cohort`` added (``sign`` 1) or removed (-1)."""
    return [
        _add(
            SIZES,
            "kind, cohort",
            f"SELECT kind, cohort, {sign} * COUNT(*) FROM {rows} GROUP BY kind, cohort",
        ),
        _add(
            ACTIVE,
            "kind, cohort, month",
            f"SELECT r.kind, r.cohort, m.month, {sign} * COUNT(*) FROM {rows} "
            "JOIN customer_month m ON m.customer_id = r.customer_id "
            "GROUP BY r.kind, r.cohort, m.month",
        ),
    ]


def months_changed(now: str, then: str, sqlite: bool) -> list[str]:
    """Interactions written: ``now`` the changed rows as they are (id,
    customer, occurred_at), ``then`` as they were. Each (customer, month)
    they touch becomes active (+1) or idle (-1) where it has interactions
    now and had none before, or the reverse; "before" is the interactions
    now less the changed rows, plus the changed rows as they were. Read
    from ``interaction`` itself (``customer_month`` is another rollup, made
    again by later migrations, whose triggers may run before or after these)."""

    def month(column: str) -> str:
        return month_number(column, sqlite)

    def held(where: str) -> str:
        return (
            f"EXISTS (SELECT 1 FROM interaction i WHERE i.customer = p.customer "
            f"AND {month('i.occurred_at')} = p.month{where})"
        )

    before = (
        f"CASE WHEN {held(f' AND i.id NOT IN (SELECT id FROM {now} n0)')} OR EXISTS "
        f"(SELECT 1 FROM {then} o WHERE o.customer = p.customer "
        f"AND {month('o.occurred_at')} = p.month) THEN 1 ELSE 0 END"
    )
    pairs = " UNION ".join(
        f"SELECT customer, {month('occurred_at')} AS month FROM {rows} x WHERE customer IS NOT NULL"
        for rows in (now, then)
    )
    delta = f"(CASE WHEN {held('')} THEN 1 ELSE 0 END) - {before}"
    return [
        _add(
            ACTIVE,
            "kind, cohort, month",
            f"SELECT r.kind, r.cohort, p.month, SUM(p.delta) FROM (SELECT customer, month, "
            f"{delta} AS delta FROM ({pairs}) p) p "
            f"JOIN {MEMBERS} r ON r.customer_id = p.customer WHERE p.delta <> 0 "
            "GROUP BY r.kind, r.cohort, p.month HAVING SUM(p.delta) <> 0",
        )
    ]


def backfill(sqlite: bool) -> list[str]:
    """Every count from scratch, for whatever wrote rows with the triggers
    off (the benchmark seeds)."""
    sizes = f"SELECT kind, cohort, COUNT(*) FROM {MEMBERS} GROUP BY kind, cohort"
    active = (
        f"SELECT r.kind, r.cohort, m.month, COUNT(*) FROM {MEMBERS} r "
        "JOIN customer_month m ON m.customer_id = r.customer_id GROUP BY r.kind, r.cohort, m.month"
    )
    return [
        *(f"DELETE FROM {t}" for t in (MEMBERS, SIZES, ACTIVE)),
        f"INSERT INTO {MEMBERS} (customer_id, kind, acquired_at, cohort) "
        f"{members_select(None, sqlite)}",
        f"INSERT INTO {SIZES} (kind, cohort, customers) {sizes}",
        f"INSERT INTO {ACTIVE} (kind, cohort, month, customers) {active}",
    ]


# no rows, in the columns of the interactions ``months_changed`` reads; not
# read from ``interaction``: PostgreSQL planned that as a parallel scan of it,
# and starting its workers took 35-110 ms of every logInteraction at 10M rows
NOTHING = (
    "(SELECT CAST(NULL AS INTEGER) AS id, CAST(NULL AS INTEGER) AS customer, "
    "CAST(NULL AS TIMESTAMPTZ) AS occurred_at WHERE 1 = 0)"
)


# What an UPDATE must change to change a count, per table: the other updates
# (a name, a stay's end, the funnel's phase columns) fire no trigger, where a
# statement trigger's transition tables cost 4 s on rewriting 212,000 entries.
UPDATED = {
    "interaction": ("customer", "occurred_at"),
    "customer": ("created_at", "deleted_at"),
    "stage_change": ("customer", "kind", "at"),
}


def _update_bodies(sqlite: bool) -> dict[str, list[str]]:
    """Per table, the statements of its row trigger on UPDATE (``OLD``, ``NEW``)."""
    written = ("id", "customer", "occurred_at")
    return {
        "interaction": months_changed(_row("NEW", written), _row("OLD", written), sqlite),
        "customer": recompute("NEW.id", sqlite),
        "stage_change": recompute("OLD.customer, NEW.customer", sqlite, created=False),
    }


def _postgres_update_triggers() -> list[str]:
    statements = []
    for table, body in _update_bodies(False).items():
        name, columns = f"cohorts_{table}_update", UPDATED[table]
        old = ", ".join(f"OLD.{c}" for c in columns)
        new = ", ".join(f"NEW.{c}" for c in columns)
        statements += [
            function(name, body),
            f"CREATE TRIGGER {name} AFTER UPDATE OF {', '.join(columns)} ON {table} "
            f"FOR EACH ROW WHEN (({old}) IS DISTINCT FROM ({new})) EXECUTE FUNCTION {name}()",
        ]
    return statements


def _postgres_bodies() -> dict[tuple[str, str], list[str]]:
    """(table, event) -> the statements of its statement trigger, over
    ``new_rows`` / ``old_rows``; updates have row triggers (``_update_bodies``)."""
    return {
        (MEMBERS, "insert"): members_changed("new_rows r", 1),
        (MEMBERS, "delete"): members_changed("old_rows r", -1),
        ("interaction", "insert"): months_changed("new_rows", NOTHING, False),
        ("interaction", "delete"): months_changed(NOTHING, "old_rows", False),
        ("interaction", "truncate"): [f"DELETE FROM {ACTIVE}"],
        ("customer", "insert"): recompute("SELECT id FROM new_rows", False),
        ("customer", "delete"): [
            f"DELETE FROM {MEMBERS} WHERE customer_id IN (SELECT id FROM old_rows)"
        ],
        ("stage_change", "insert"): recompute(
            "SELECT customer FROM new_rows", False, created=False
        ),
        ("stage_change", "delete"): recompute(
            "SELECT customer FROM old_rows", False, created=False
        ),
        # emptied: no history, then no customers (TRUNCATE fires no row triggers)
        ("stage_change", "truncate"): [f"DELETE FROM {MEMBERS} WHERE kind <> ''"],
        ("customer", "truncate"): [
            f"TRUNCATE {MEMBERS}",
            f"DELETE FROM {SIZES}",
            f"DELETE FROM {ACTIVE}",
        ],
    }


# the statement triggers a bulk writer of new customers may defer
# (crmgraph.db.batch_rollups: ``new_customers`` once instead)
DEFERRABLE = (("customer", "insert"), ("stage_change", "insert"))


def _function(table: str, event: str, body: list[str], *, deferred: bool = True) -> str:
    skips = deferred and (table, event) in DEFERRABLE
    return function(f"cohorts_{table}_{event}", deferrable(body, skips))


def insert_functions(*, deferred: bool = True) -> list[str]:
    """PostgreSQL: the functions of ``DEFERRABLE``, skipped while the rollups
    are deferred (or, not ``deferred``, as before migration 0055)."""
    bodies = _postgres_bodies()
    return [_function(*key, bodies[key], deferred=deferred) for key in DEFERRABLE]


def new_customers(ids: str) -> list[str]:
    """PostgreSQL: the cohorts of new customers ``ids`` (a subquery), their
    stage histories written: what both deferred triggers do, once."""
    return recompute(ids, False)


def _postgres_triggers() -> list[str]:
    statements = []
    for (table, event), body in _postgres_bodies().items():
        name = f"cohorts_{table}_{event}"
        statements.append(_function(table, event, body))
        tables = {"insert": "NEW TABLE AS new_rows", "delete": "OLD TABLE AS old_rows"}
        referencing = f"REFERENCING {tables[event]} " if event in tables else ""
        statements.append(
            f"CREATE TRIGGER {name} AFTER {event.upper()} ON {table} {referencing}"
            f"FOR EACH STATEMENT EXECUTE FUNCTION {name}()"
        )
    return [*statements, *_postgres_update_triggers()]


def _row(side: str, columns: tuple[str, ...], alias: str = "") -> str:
    return "(SELECT " + ", ".join(f"{side}.{c} AS {c}" for c in columns) + f"){alias}"


def _sqlite_bodies() -> dict[tuple[str, str], list[str]]:
    member, written = ("customer_id", "kind", "cohort"), ("id", "customer", "occurred_at")
    return {
        (MEMBERS, "INSERT"): members_changed(_row("NEW", member, " r"), 1),
        (MEMBERS, "DELETE"): members_changed(_row("OLD", member, " r"), -1),
        ("interaction", "INSERT"): months_changed(_row("NEW", written), NOTHING, True),
        ("interaction", "DELETE"): months_changed(NOTHING, _row("OLD", written), True),
        ("customer", "INSERT"): recompute("NEW.id", True),
        ("customer", "DELETE"): [f"DELETE FROM {MEMBERS} WHERE customer_id = OLD.id"],
        ("stage_change", "INSERT"): recompute("NEW.customer", True, created=False),
        ("stage_change", "DELETE"): recompute("OLD.customer", True, created=False),
        **{
            (table, f"UPDATE OF {', '.join(UPDATED[table])}"): body
            for table, body in _update_bodies(True).items()
        },
    }


def _sqlite_name(table: str, event: str) -> str:
    return f"cohorts_{table}_{event.split()[0].lower()}"


def _sqlite_triggers() -> list[str]:
    return [
        f"CREATE TRIGGER {_sqlite_name(table, event)} AFTER {event} ON {table} BEGIN\n"
        f"{block(body)}END"
        for (table, event), body in _sqlite_bodies().items()
    ]


def _triggers(sqlite: bool) -> list[str]:
    made = _sqlite_triggers() if sqlite else _postgres_triggers()
    compaction = delta_fold.sqlite_compaction if sqlite else delta_fold.postgres_compaction
    return [*made, *(s for t in DELTAS for s in compaction(t))]


def _analyze(sqlite: bool) -> list[str]:
    return [] if sqlite else [f"ANALYZE {t}" for t in (MEMBERS, SIZES, ACTIVE)]


def create_statements(engine_type: str) -> list[str]:
    """Tables, triggers, then every customer's cohorts once (the counts by
    trigger), then planner statistics."""
    sqlite = engine_type != "postgres"
    fill = (
        f"INSERT INTO {MEMBERS} (customer_id, kind, acquired_at, cohort) "
        f"{members_select(None, sqlite)}"
    )
    tables = [s for t in DELTAS for s in (_table(t, t.table, sqlite=sqlite), _index(t))]
    return [*MEMBERS_TABLE, *tables, *_triggers(sqlite), fill, *_analyze(sqlite)]


def _drop_triggers(sqlite: bool) -> list[str]:
    if sqlite:
        names = [_sqlite_name(table, event) for table, event in _sqlite_bodies()]
        dropped = [f"DROP TRIGGER IF EXISTS {n}" for n in names]
    else:
        dropped = []
        events = [*_postgres_bodies(), *((t, "update") for t in UPDATED)]
        for table, event in events:
            name = f"cohorts_{table}_{event}"
            dropped += [
                f"DROP TRIGGER IF EXISTS {name} ON {table}",
                f"DROP FUNCTION IF EXISTS {name}()",
            ]
    return [*dropped, *(s for t in DELTAS for s in delta_fold.drop_compaction(t, sqlite=sqlite))]


def drop_statements(engine_type: str) -> list[str]:
    dropped = _drop_triggers(engine_type != "postgres")
    return [*dropped, *(f"DROP TABLE {t}" for t in (ACTIVE, SIZES, MEMBERS))]


def _rebuilt(t: delta_fold.DeltaTable, sqlite: bool) -> list[str]:
    """``t`` made again as a delta table from its rows as they are (counter
    rows, one per key, or delta rows already: each a valid delta), summed."""
    new = f"{t.table}_new"
    made = [
        _table(t, new, sqlite=sqlite),
        f"INSERT INTO {new} ({t.key_list}, {t.value}) SELECT {t.key_list}, SUM({t.value}) "
        f"FROM {t.table} GROUP BY {t.key_list} HAVING SUM({t.value}) <> 0",
        f"DROP TABLE {t.table}",
        f"ALTER TABLE {new} RENAME TO {t.table}",
        _index(t),
    ]
    if not sqlite:
        made += [
            f"ALTER SEQUENCE {new}_id_seq RENAME TO {t.table}_id_seq",
            f"ALTER INDEX {new}_pkey RENAME TO {t.table}_pkey",
        ]
    return made


def to_deltas(engine_type: str) -> list[str]:
    """Migration 0048: the counter tables of 0038 (a primary key on the
    counted columns, upserted) as delta tables, and their triggers again."""
    sqlite = engine_type != "postgres"
    rebuilt = [s for t in DELTAS for s in _rebuilt(t, sqlite)]
    return [*_drop_triggers(sqlite), *rebuilt, *_triggers(sqlite), *_analyze(sqlite)]
