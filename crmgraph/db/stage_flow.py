"""The lifecycle funnel's counts kept by database triggers: ``stage_flow``
(crmgraph.analytics.funnel_rollup reads it; issue 28). At 1,000,000
customers the funnel read every one of ~3,000,000 ``stage_change`` rows per
request (4.3 s); this table holds their sums per day.

Per (``kind``, ``stage``, ``went``, ``day``, ``measure``), ``n`` is the sum
over the stage entries of the active (not deleted) customers of:

- ``n``: 1 per entry, at the day of its ``at``, ``went`` its ``next_stage``
  ('' while open): the funnel's entries and moves;
- ``s``: 1 per stay that ended (``left_at`` set), for the medians' counts;
- ``f``, ``a``, ``x``: the phase counts' ``first * regular`` (times
  ``advanced``, times ``exited * (1 - advanced)``; crmgraph.db.stays'
  ``PHASE_COLUMNS``), +1 at the day of ``at`` and -1 at the day of
  ``phase_prev_at``: an entry is its type's first into the phase in a period
  starting at ``S`` when ``at >= S`` and ``phase_prev_at`` is older, so the
  sum over the days from ``S`` on is exactly that count (``phase_prev_at`` is
  earlier than ``at``);
- ``c``: open stays in the ``current`` count (day 0): not those of a further
  role the party ended (crmgraph.analytics.funnel.role_closed);
- ``o``: open stays of a regular entry the party holds (day 0): of its
  primary kind or of a further role not ended (``own * open * regular``);
- ``l``: 1 per stay that ended, at the whole days of its length
  (``length_day``) in ``day``: the lengths' histogram, from which the
  funnel finds the stays in the middle of a stage's (crmgraph.analytics.
  funnel_rollup.medians) and reads their exact lengths by the index
  ``ix_stage_change_stay`` (only the middle day's stays);
- ``m``: the same per month of ``at`` (``month_number`` in ``day``, the
  length day as text in ``went``): a later period's histogram is the
  months it covers whole plus its first partial month's stays from the
  history.

Each of ``n``, ``s``, ``f``, ``a``, ``x`` also has its sum over every day
at ``day`` -1 (``WHOLE``): a period starting before the first entry reads
those few rows instead of one per day.

So the measures read a customer's ``kind`` and ``deleted_at`` and its
roles' ``added_at`` and ``ended_at``, all as of now: the funnel uses this
table only for periods ending after every one of those instants and every
entry (``left_at``, ``phase_prev_at`` and the rest are instants of
entries but a merge's ``left_at``, checked too), and otherwise reads the
history.

Kept exact in the writing transaction on both engines as
crmgraph.db.customer_counts keeps its tally: each write to ``stage_change``,
to a customer's kind or deletion, or to a role's ``added_at``/``ended_at``
subtracts the affected entries' measures computed with the rows as they
were and adds them computed as they are (the other tables as they are now).
A customer removed is subtracted by a BEFORE trigger; the entries and roles
its foreign keys then delete find no customer and change nothing.
PostgreSQL uses statement triggers with transition tables for
``stage_change`` (the funnel's recomputation of every entry's phase columns
is one grouped insert) and for role inserts and deletes; row triggers with
``WHEN`` for the updates of customers and roles (most change nothing
counted); SQLite row triggers. ``stage_flow`` is a delta table
(crmgraph.db.delta_fold): writers only insert signed rows, folded every
256 rows, each fold looking only at the keys of the last 1,024 rows (a fold
of the whole table grouped all of it: 314 ms at 3,000 customers' 29,559
rows on SQLite, every few soft deletes; bench/sqlite_trigger_writes.py).

SQLite (migration 0053): the measures are written once, in the view
``stage_flow_entry`` (every entry's measures as the tables are now), and
each write is a pair of small row triggers, BEFORE (its entries' measures
subtracted, the rows still as they were) and AFTER (added, as they are),
each reading only the entries it names through the view (by ``stage_change``'s
primary key, ``stage_change_customer``). The triggers used to spell the
whole measures query out, twice in most: 39 KB of the schema's 103, which
SQLite parses again on every connection it opens, and piccolo opens one per
statement outside a transaction: a new connection's first statement took
46 ms, 27 ms without those triggers, 29 ms now (bench/sqlite_trigger_writes.py,
load 7-8 on 2 cores).
"""

from __future__ import annotations

import dataclasses

from crmgraph.db import delta_fold
from crmgraph.db.trigger_sql import AS_WRITTEN, block, deferrable, function, planned_with, replacing

TABLE = "stage_flow"
# folds look at the keys of the last 1,024 rows, by the index on the keys;
# a batch of new customers folds its rows once (``new_customers``)
DELTAS = delta_fold.DeltaTable(
    TABLE, ("kind", "stage", "went", "day", "measure"), "n", 2812149, window=1024, batched=True
)
VIEW = f"{TABLE}_entry"  # SQLite: every entry's measures (``entry_view``)
# the measures, and whether each has a row at ``phase_prev_at``'s day (-1)
MEASURES = (("n", 0), ("s", 0), ("f", 0), ("f", 1), ("a", 0), ("a", 1), ("x", 0), ("x", 1))
MEASURES += (("c", 0), ("o", 0), ("l", 0), ("m", 0))
PERIOD_MEASURES = ("n", "s", "f", "a", "x")
WHOLE = -1  # the ``day`` of a period measure's sum over every day
# a stay's length in seconds (PostgreSQL): ``ix_stage_change_stay``'s key
STAY_SECONDS = "date_part('epoch', left_at - at)"
INDEXES = (
    # the funnel's checks that a period ends after every instant, and the
    # entries of a period's first (partial) day
    "CREATE INDEX ix_stage_change_at ON stage_change (at)",
    # a merge ends stays at its own instant, not an entry's
    "CREATE INDEX ix_stage_change_left_at ON stage_change (left_at) WHERE left_at IS NOT NULL",
    "CREATE INDEX ix_customer_role_added_at ON customer_role (added_at) WHERE added_at IS NOT NULL",
    "CREATE INDEX ix_customer_role_ended_at ON customer_role (ended_at) WHERE ended_at IS NOT NULL",
    # the middle day's stays of a stage (``l``), by length
    f"CREATE INDEX ix_stage_change_stay ON stage_change (kind, to_stage, {STAY_SECONDS}) "
    "WHERE left_at IS NOT NULL",
    # what the funnel sums, by measure and day: read alone (index-only)
    f"CREATE INDEX ix_{TABLE}_measure ON {TABLE} (measure, day, kind, stage, went, n)",
)
SQLITE_INDEXES = (*INDEXES[:4], INDEXES[5])
DROP_INDEXES = (
    "ix_stage_change_at",
    "ix_stage_change_left_at",
    "ix_customer_role_added_at",
    "ix_customer_role_ended_at",
    "ix_stage_change_stay",
)
CUSTOMER_COLUMNS = ("id", "kind", "deleted_at")
# what the measures read of an entry
ENTRY_COLUMNS = ("customer", "kind", "to_stage", "next_stage", "at", "left_at")
ENTRY_COLUMNS += ("phase_prev_at", "advanced_at", "exited_at", "irregular")
ROLE_COLUMNS = ("id", "customer", "kind", "added_at", "ended_at")


def stay_days(sqlite: bool, alias: str = "sc") -> str:
    """A stay's length in days, as the funnel's medians read it (a double)."""
    if sqlite:
        return f"(julianday({alias}.left_at) - julianday({alias}.at))"
    return f"(date_part('epoch', {alias}.left_at - {alias}.at) / 86400.0)"


def length_day(sqlite: bool, alias: str = "sc") -> str:
    """The ``l`` histogram's day of a stay: its length in whole days, rising
    with ``stay_days`` (so the n-th stay by length is in the day the counts
    of the shorter days point to)."""
    if sqlite:
        return f"CAST({stay_days(True, alias)} AS INTEGER)"
    return f"CAST(floor(date_part('epoch', {alias}.left_at - {alias}.at) / 86400) AS INTEGER)"


def month_number(column: str, sqlite: bool) -> str:
    """Months since January 1970 of a timestamp, in UTC."""
    if sqlite:
        year, month = (f"CAST(strftime('{f}', {column}) AS INTEGER)" for f in ("%Y", "%m"))
    else:
        year, month = (
            f"CAST(EXTRACT({f} FROM {column} AT TIME ZONE 'UTC') AS INTEGER)"
            for f in ("YEAR", "MONTH")
        )
    return f"(({year} - 1970) * 12 + {month} - 1)"


def day_number(column: str, sqlite: bool) -> str:
    """Days since 1970-01-01 of a timestamp, in UTC."""
    if sqlite:
        return f"CAST(julianday(date({column})) - 2440587.5 AS INTEGER)"
    return f"(CAST({column} AT TIME ZONE 'UTC' AS DATE) - DATE '1970-01-01')"


def _measures() -> str:
    return (
        "("
        + " UNION ALL ".join(f"SELECT '{m}' AS measure, {late} AS late" for m, late in MEASURES)
        + ")"
    )


def _value() -> str:
    """Each measure of an entry ``sc`` of customer ``c`` (role row ``r``)."""
    reg = "(1 - sc.irregular)"
    adv = "(CASE WHEN sc.advanced_at IS NULL THEN 0 ELSE 1 END)"
    ex = "(CASE WHEN sc.exited_at IS NULL THEN 0 ELSE 1 END)"
    is_open = "(CASE WHEN sc.left_at IS NULL THEN 1 ELSE 0 END)"
    ended = (
        "(CASE WHEN sc.kind <> c.kind AND r.added_at IS NOT NULL AND r.ended_at IS NOT NULL "
        "THEN 1 ELSE 0 END)"
    )
    own = (
        "(CASE WHEN sc.kind = c.kind THEN 1 WHEN r.added_at IS NOT NULL AND r.ended_at IS NULL "
        "THEN 1 ELSE 0 END)"
    )
    return (
        "(CASE m.measure WHEN 'n' THEN 1 "
        f"WHEN 's' THEN 1 - {is_open} WHEN 'l' THEN 1 - {is_open} WHEN 'm' THEN 1 - {is_open} "
        f"WHEN 'f' THEN {reg} WHEN 'a' THEN {reg} * {adv} "
        f"WHEN 'x' THEN {reg} * {ex} * (1 - {adv}) WHEN 'c' THEN {is_open} * (1 - {ended}) "
        f"ELSE {is_open} * {reg} * {own} END) * (1 - 2 * m.late)"
    )


def measures_select(
    rows: str, customers: str, roles: str, sign: int, sqlite: bool, extra: str = ""
) -> str:
    """The measures of the entries ``rows`` (a table or subquery of
    ``stage_change`` rows) with ``customers`` and ``roles`` as the state of
    the customers and roles (a table or subquery of ``CUSTOMER_COLUMNS``,
    ``ROLE_COLUMNS``), times ``sign``: (kind, stage, went, day, measure, n),
    after the columns ``extra`` (of ``sc``, each followed by a comma)."""
    day = (
        "CASE WHEN m.measure IN ('c', 'o') THEN 0 "
        f"WHEN m.measure = 'l' THEN COALESCE({length_day(sqlite)}, 0) "
        f"WHEN m.measure = 'm' THEN {month_number('sc.at', sqlite)} "
        f"WHEN m.late = 1 THEN {day_number('sc.phase_prev_at', sqlite)} "
        f"ELSE {day_number('sc.at', sqlite)} END"
    )
    text = "TEXT" if sqlite else "VARCHAR"
    went = (
        "CASE WHEN m.measure = 'n' THEN COALESCE(sc.next_stage, '') "
        f"WHEN m.measure = 'm' THEN COALESCE(CAST({length_day(sqlite)} AS {text}), '') "
        "ELSE '' END"
    )
    return (
        f"SELECT {extra}sc.kind, sc.to_stage AS stage, {went} AS went, {day} AS day, m.measure, "
        f"{sign} * {_value()} AS n FROM {rows} sc "
        f"JOIN {customers} c ON c.id = sc.customer AND c.deleted_at IS NULL "
        f"LEFT JOIN {roles} r ON r.customer = sc.customer AND r.kind = sc.kind "
        f"JOIN {_measures()} m ON (m.late = 0 OR sc.phase_prev_at IS NOT NULL) "
        "AND (m.measure NOT IN ('l', 'm') OR sc.left_at IS NOT NULL)"
    )


def changed(parts: list[tuple[str, str, str, int]], sqlite: bool) -> str:
    """One INSERT of the sums of ``parts`` (``measures_select``'s arguments):
    the rows as they were subtracted, as they are added, each period
    measure's also at ``WHOLE``; keys that cancel out write nothing."""
    union = " UNION ALL ".join(measures_select(*p, sqlite) for p in parts)
    keys = DELTAS.key_list
    return (
        f"INSERT INTO {TABLE} ({keys}, n) SELECT d.kind, d.stage, d.went, {_DAY} AS day, "
        f"d.measure, SUM(d.n) FROM ({union}) d {_WHOLE_ROWS} "
        f"GROUP BY d.kind, d.stage, d.went, {_DAY}, d.measure HAVING SUM(d.n) <> 0"
    )


# each measure of ``d`` at its day and, for a period measure, at ``WHOLE``
_DAY = f"CASE WHEN w.whole = 1 THEN {WHOLE} ELSE d.day END"
_WHOLE_ROWS = (
    "JOIN (SELECT 0 AS whole UNION ALL SELECT 1) w ON w.whole = 0 OR d.measure IN ("
    + ", ".join(f"'{m}'" for m in PERIOD_MEASURES)
    + ")"
)


def entry_view() -> str:
    """SQLite: the view of every entry's measures (``changed``'s rows, not
    summed) as the tables are now, with the entry's id, customer and
    ``left_at``, which the triggers' conditions name: SQLite pushes them
    into the view, down to ``stage_change``'s indexes."""
    entry = "sc.id AS entry, sc.customer AS customer, sc.left_at AS left_at, "
    rows = measures_select("stage_change", "customer", "customer_role", 1, True, extra=entry)
    return (
        f"CREATE VIEW {VIEW} AS SELECT d.entry, d.customer, d.left_at, d.kind, d.stage, "
        f"d.went, {_DAY} AS day, d.measure, d.n FROM ({rows}) d {_WHOLE_ROWS}"
    )


def counted(where: str, sign: int) -> str:
    """SQLite: the measures of the entries ``where`` (a condition on
    ``VIEW``'s columns) as the tables are now, times ``sign``, summed by key."""
    keys = DELTAS.key_list
    return (
        f"INSERT INTO {TABLE} ({keys}, n) SELECT {keys}, {sign} * SUM(n) FROM {VIEW} "
        f"WHERE {where} GROUP BY {keys} HAVING SUM(n) <> 0"
    )


def _cols(source: str, columns: tuple[str, ...]) -> str:
    return ", ".join(f"{source}.{c}" for c in columns)


def _one(side: str, columns: tuple[str, ...]) -> str:
    return "(SELECT " + ", ".join(f"{side}.{c} AS {c}" for c in columns) + ")"


CUSTOMERS = f"(SELECT {', '.join(CUSTOMER_COLUMNS)} FROM customer)"
ROLES = f"(SELECT {', '.join(ROLE_COLUMNS)} FROM customer_role)"


def _roles_without(ids: str, extra: str | None) -> str:
    """The roles as they are, less the rows ``ids``, plus ``extra``."""
    kept = f"SELECT {', '.join(ROLE_COLUMNS)} FROM customer_role WHERE id NOT IN ({ids})"
    return f"({kept}{f' UNION ALL SELECT * FROM {extra} e' if extra else ''})"


def _open_of(customers: str, kinds: str | None = None) -> str:
    """The open stays of the customers ``customers`` (of ``kinds``' pairs)."""
    if kinds is None:
        return f"(SELECT * FROM stage_change WHERE left_at IS NULL AND customer IN ({customers}))"
    return f"(SELECT * FROM stage_change WHERE left_at IS NULL AND (customer, kind) IN ({kinds}))"


def _bodies() -> dict[str, list[str]]:
    """PostgreSQL's trigger name -> statements: statement triggers read
    ``new_rows``/``old_rows``, row triggers ``NEW``/``OLD`` (SQLite:
    ``_sqlite_triggers``)."""
    sqlite = False
    new_sc, old_sc = "new_rows", "old_rows"
    old_role = f"(SELECT {', '.join(ROLE_COLUMNS)} FROM old_rows)"
    role_pairs_new = "SELECT customer, kind FROM new_rows"
    role_pairs_old = "SELECT customer, kind FROM old_rows"
    new_role_ids, old_role_ids = "SELECT id FROM new_rows", "SELECT id FROM old_rows"
    bodies = {
        "stage_change_insert": [changed([(new_sc, CUSTOMERS, ROLES, 1)], sqlite)],
        "stage_change_delete": [changed([(old_sc, CUSTOMERS, ROLES, -1)], sqlite)],
        "stage_change_update": [
            changed([(old_sc, CUSTOMERS, ROLES, -1), (new_sc, CUSTOMERS, ROLES, 1)], sqlite)
        ],
        "role_insert": [
            changed(
                [
                    (
                        _open_of("", role_pairs_new),
                        CUSTOMERS,
                        _roles_without(new_role_ids, None),
                        -1,
                    ),
                    (_open_of("", role_pairs_new), CUSTOMERS, ROLES, 1),
                ],
                sqlite,
            )
        ],
        "role_delete": [
            changed(
                [
                    (
                        _open_of("", role_pairs_old),
                        CUSTOMERS,
                        _roles_without(old_role_ids, old_role),
                        -1,
                    ),
                    (_open_of("", role_pairs_old), CUSTOMERS, ROLES, 1),
                ],
                sqlite,
            )
        ],
    }
    # row triggers: a role's dates, a customer's kind or deletion
    pairs = "SELECT OLD.customer, OLD.kind UNION SELECT NEW.customer, NEW.kind"
    bodies["role_update"] = [
        changed(
            [
                (
                    _open_of("", pairs),
                    CUSTOMERS,
                    _roles_without("NEW.id", _one("OLD", ROLE_COLUMNS)),
                    -1,
                ),
                (_open_of("", pairs), CUSTOMERS, ROLES, 1),
            ],
            sqlite,
        )
    ]
    rows = "(SELECT * FROM stage_change WHERE customer = NEW.id)"
    bodies["customer_update"] = [
        changed(
            [
                (rows, _one("OLD", CUSTOMER_COLUMNS), ROLES, -1),
                (rows, _one("NEW", CUSTOMER_COLUMNS), ROLES, 1),
            ],
            sqlite,
        )
    ]
    gone = "(SELECT * FROM stage_change WHERE customer = OLD.id)"
    bodies["customer_delete"] = [
        changed([(gone, _one("OLD", CUSTOMER_COLUMNS), ROLES, -1)], sqlite)
    ]
    return bodies


# the statement triggers a bulk writer of new customers may defer
# (crmgraph.db.batch_rollups: ``new_customers`` once instead)
DEFERRABLE = ("stage_change_insert", "role_insert")


def _function(name: str, body: list[str], returned: str, *, deferred: bool = True) -> str:
    skips = deferred and name in DEFERRABLE
    return function(f"{TABLE}_{name}", deferrable(body, skips), returned)


def insert_functions(*, deferred: bool = True) -> list[str]:
    """PostgreSQL: the functions of ``DEFERRABLE``, skipped while the rollups
    are deferred (or, not ``deferred``, as before migration 0055)."""
    bodies = _bodies()
    return [_function(name, bodies[name], "NULL", deferred=deferred) for name in DEFERRABLE]


def new_customers(ids: str, *, folded: bool = True, planned: bool = True) -> list[str]:
    """PostgreSQL: the measures of the entries of new customers (``ids``, a
    bigint array), their roles and entries written: what the deferred
    triggers add. A new customer's role insert finds none of its entries
    written yet (roles go first), so it counts nothing; its entries' insert
    counts them all, as this does. Its rows are folded once, after it
    (``folded``, migration 0056; in a function declaring ``DELTAS.since``),
    not by the fold trigger every 256 of them; ``planned``: AS_WRITTEN (0058)."""
    entries = f"(SELECT * FROM stage_change WHERE customer = ANY({ids}))"
    written = [changed([(entries, CUSTOMERS, ROLES, 1)], False)]
    if planned:
        written = planned_with(AS_WRITTEN, written)
    return delta_fold.batch_folded(DELTAS, written) if folded else written


def batch_folds(engine_type: str) -> list[str]:
    """Migration 0056: the fold trigger's function, skipping while a batch
    writer folds its own rows, and that writer's fold."""
    if engine_type != "postgres":
        return []
    return [
        replacing(delta_fold.compaction_function(DELTAS)),
        delta_fold.fold_since_function(DELTAS),
    ]


def unbatched_folds(engine_type: str) -> list[str]:
    """0056 reversed: the fold trigger's function as before (the batch
    writer's fold is dropped once no function calls it)."""
    if engine_type != "postgres":
        return []
    unbatched = dataclasses.replace(DELTAS, batched=False)
    return [replacing(delta_fold.compaction_function(unbatched))]


def _postgres_trigger(name: str, body: list[str], timing: str) -> list[str]:
    returned = "OLD" if timing.startswith("BEFORE") else "NULL"
    return [
        _function(name, body, returned),
        f"CREATE TRIGGER {TABLE}_{name} {timing} EXECUTE FUNCTION {TABLE}_{name}()",
    ]


ROLE_DATES = ("customer", "kind", "added_at", "ended_at")
CUSTOMER_WATCHED = ("kind", "deleted_at")


def _timings() -> dict[str, str]:
    """PostgreSQL: trigger name -> when it runs (``_bodies``)."""

    def distinct(columns: tuple[str, ...]) -> str:
        old = ", ".join(f"OLD.{c}" for c in columns)
        new = ", ".join(f"NEW.{c}" for c in columns)
        return f"({old}) IS DISTINCT FROM ({new})"

    statement = "FOR EACH STATEMENT"
    return {
        "stage_change_insert": f"AFTER INSERT ON stage_change REFERENCING NEW TABLE AS new_rows "
        f"{statement}",
        "stage_change_delete": f"AFTER DELETE ON stage_change REFERENCING OLD TABLE AS old_rows "
        f"{statement}",
        "stage_change_update": "AFTER UPDATE ON stage_change REFERENCING OLD TABLE AS old_rows "
        f"NEW TABLE AS new_rows {statement}",
        "role_insert": f"AFTER INSERT ON customer_role REFERENCING NEW TABLE AS new_rows "
        f"{statement}",
        "role_delete": f"AFTER DELETE ON customer_role REFERENCING OLD TABLE AS old_rows "
        f"{statement}",
        "role_update": f"AFTER UPDATE OF {', '.join(ROLE_DATES)} ON customer_role FOR EACH ROW "
        f"WHEN ({distinct(ROLE_DATES)})",
        "customer_update": f"AFTER UPDATE OF {', '.join(CUSTOMER_WATCHED)} ON customer "
        f"FOR EACH ROW WHEN ({distinct(CUSTOMER_WATCHED)})",
        "customer_delete": "BEFORE DELETE ON customer FOR EACH ROW",
    }


def sqlite_counts() -> dict[str, tuple[str, str, int]]:
    """SQLite: trigger name -> (when it runs, which entries' measures, sign).
    A write's entries are subtracted BEFORE it (the rows as they were) and
    added AFTER it (as they are): the pair is the old triggers' one INSERT
    of "as they were" less "as they are". An update changing nothing
    counted fires neither (``WHEN``). A customer removed is subtracted
    before, and the entries and roles its foreign keys then delete find no
    customer in the view."""

    def changes(columns: tuple[str, ...]) -> str:
        return " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in columns)

    def open_stays(side: str) -> str:
        return f"customer = {side}.customer AND kind = {side}.kind AND left_at IS NULL"

    entry, roles = ", ".join(ENTRY_COLUMNS), ", ".join(ROLE_DATES)
    entry_update = f"UPDATE OF {entry} ON stage_change WHEN {changes(ENTRY_COLUMNS)}"
    role_update = f"UPDATE OF {roles} ON customer_role WHEN {changes(ROLE_DATES)}"
    customer_update = (
        f"UPDATE OF {', '.join(CUSTOMER_WATCHED)} ON customer WHEN {changes(CUSTOMER_WATCHED)}"
    )
    both = f"({open_stays('OLD')}) OR ({open_stays('NEW')})"
    return {
        "stage_change_insert": ("AFTER INSERT ON stage_change", "entry = NEW.id", 1),
        "stage_change_delete": ("BEFORE DELETE ON stage_change", "entry = OLD.id", -1),
        "stage_change_update_before": (f"BEFORE {entry_update}", "entry = OLD.id", -1),
        "stage_change_update": (f"AFTER {entry_update}", "entry = NEW.id", 1),
        "role_insert_before": ("BEFORE INSERT ON customer_role", open_stays("NEW"), -1),
        "role_insert": ("AFTER INSERT ON customer_role", open_stays("NEW"), 1),
        "role_delete_before": ("BEFORE DELETE ON customer_role", open_stays("OLD"), -1),
        "role_delete": ("AFTER DELETE ON customer_role", open_stays("OLD"), 1),
        "role_update_before": (f"BEFORE {role_update}", both, -1),
        "role_update": (f"AFTER {role_update}", both, 1),
        "customer_update_before": (f"BEFORE {customer_update}", "customer = OLD.id", -1),
        "customer_update": (f"AFTER {customer_update}", "customer = NEW.id", 1),
        "customer_delete": ("BEFORE DELETE ON customer", "customer = OLD.id", -1),
    }


def _sqlite_triggers() -> list[str]:
    return [
        f"CREATE TRIGGER {TABLE}_{name} {timing} BEGIN\n{block([counted(where, sign)])}END"
        for name, (timing, where, sign) in sqlite_counts().items()
    ]


def backfill(sqlite: bool) -> list[str]:
    """Every measure from scratch: for the migration, and whatever wrote rows
    with the triggers off (the benchmark seeds)."""
    return [f"DELETE FROM {TABLE}", changed([("stage_change", CUSTOMERS, ROLES, 1)], sqlite)]


def _truncates() -> list[str]:
    """PostgreSQL: TRUNCATE fires no row or statement trigger of the other kinds."""
    statements = []
    for table, body in (
        ("stage_change", f"DELETE FROM {TABLE}"),
        ("customer", f"DELETE FROM {TABLE}"),
        ("customer_role", "; ".join(backfill(False))),
    ):
        name = f"{TABLE}_{table}_truncate"
        statements += [
            function(name, [body]),
            f"CREATE TRIGGER {name} AFTER TRUNCATE ON {table} FOR EACH STATEMENT "
            f"EXECUTE FUNCTION {name}()",
        ]
    return statements


def triggers(sqlite: bool) -> list[str]:
    """The triggers (SQLite: and the view they read), and the folds'."""
    if sqlite:
        return [entry_view(), *_sqlite_triggers(), *delta_fold.sqlite_compaction(DELTAS)]
    timings = _timings()
    made = [
        s for name, body in _bodies().items() for s in _postgres_trigger(name, body, timings[name])
    ]
    return [*made, *_truncates(), *delta_fold.postgres_compaction(DELTAS)]


def create_statements(engine_type: str) -> list[str]:
    """Migration 0049: the table, its indexes and triggers, every measure once."""
    sqlite = engine_type != "postgres"
    pk = "INTEGER PRIMARY KEY" if sqlite else "BIGSERIAL PRIMARY KEY"
    table = (
        f"CREATE TABLE {TABLE} (id {pk}, kind VARCHAR(64) NOT NULL, stage VARCHAR(64) NOT NULL, "
        "went VARCHAR(64) NOT NULL, day INTEGER NOT NULL, measure VARCHAR(1) NOT NULL, "
        "n BIGINT NOT NULL)"
    )
    index = f"CREATE INDEX ix_{TABLE}_key ON {TABLE} ({DELTAS.key_list})"
    analyze = (
        [] if sqlite else [f"ANALYZE {TABLE}", "ANALYZE stage_change", "ANALYZE customer_role"]
    )
    indexes = SQLITE_INDEXES if sqlite else INDEXES
    return [table, index, *indexes, *backfill(sqlite), *triggers(sqlite), *analyze]


def _drop_triggers(sqlite: bool) -> list[str]:
    """Every trigger, function and view ``triggers`` makes, and those
    migration 0049 made before 0053 (SQLite's one trigger per write)."""
    if sqlite:
        names = dict.fromkeys([*_bodies(), *sqlite_counts()])
        dropped = [f"DROP TRIGGER IF EXISTS {TABLE}_{n}" for n in names]
        return [
            *dropped,
            f"DROP VIEW IF EXISTS {VIEW}",
            *delta_fold.drop_compaction(DELTAS, sqlite=True),
        ]
    ons = {n: t.split(" ON ")[1].split()[0] for n, t in _timings().items()}
    dropped = []
    for n, on in ons.items():
        dropped += [
            f"DROP TRIGGER IF EXISTS {TABLE}_{n} ON {on}",
            f"DROP FUNCTION IF EXISTS {TABLE}_{n}()",
        ]
    for table in ("stage_change", "customer", "customer_role"):
        dropped += [
            f"DROP TRIGGER IF EXISTS {TABLE}_{table}_truncate ON {table}",
            f"DROP FUNCTION IF EXISTS {TABLE}_{table}_truncate()",
        ]
    return [*dropped, *delta_fold.drop_compaction(DELTAS, sqlite=False)]


def drop_statements(engine_type: str) -> list[str]:
    indexes = [f"DROP INDEX IF EXISTS {i}" for i in DROP_INDEXES]
    dropped = _drop_triggers(engine_type != "postgres")
    return [*dropped, f"DROP TABLE IF EXISTS {TABLE}", *indexes]


def rewritten(engine_type: str) -> list[str]:
    """Migration 0053: the triggers made again (the counts are the same):
    SQLite's as the view and its BEFORE/AFTER pairs, both engines' folds
    with a window. On PostgreSQL only the fold's function and trigger."""
    sqlite = engine_type != "postgres"
    if not sqlite:
        return [
            *delta_fold.drop_compaction(DELTAS, sqlite=False),
            *delta_fold.postgres_compaction(DELTAS),
        ]
    return [*_drop_triggers(True), *triggers(True)]
