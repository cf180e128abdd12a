"""How many customers a list holds, without counting them: ``customer_tally``,
the number of customers per *tally key*, kept by database triggers on
``customer`` and ``customer_role`` in the writing transaction, on both engines.

A customers list's ``totalCount`` was ``COUNT(*)`` over the matching
customers: at a million customers the 448,405 clients took 124-136 ms, the
whole of the list page's time (issue 28). The filters most lists carry
(deleted or not, kinds with or without further roles, the primary role's
stage and phase) are functions of a few columns of a customer and its role
rows; the tally key holds exactly those:

- ``deleted``: 0 for a live customer, 1 for a deleted or merged one;
- ``kind``: the primary kind; ``stage``, ``phase``: its role row's ('' while
  it has none);
- ``further``: the kinds of the further roles it holds (added, not ended,
  not its primary kind), as ``,A,B,`` ('' for none).

A count of such a filter is then a sum over a few hundred rows, exact for
any set of kinds (a party holding two of them is one row, counted once).
Every other filter, and a caller who sees only some customers (a row
scope), is counted with ``COUNT(*)`` as before (:func:`answers`).

No hot row: writers only *insert* delta rows (key, +n or -n), one per key a
statement changes, never update a shared counter, so concurrent
``createCustomer`` calls do not queue on a counter's row lock. Every
``COMPACT_EVERY``-th delta row (by id) folds the table into one row per key
(crmgraph.db.delta_fold, shared with the cohort counts),
in the transaction that inserted it: on PostgreSQL under a transaction-level
advisory lock taken with ``pg_try_advisory_xact_lock`` (a writer that finds
it held skips, so compactions never wait on one another), deleting the rows
its statement sees and inserting their sums in one statement. Rows inserted
by transactions that have not committed are not seen, so nothing is counted
twice or lost. SQLite has one writer.

Triggers rather than code for the reasons of crmgraph.db.activity: customers
and roles are written by many paths (mutations, merges, conversions, imports,
erasure, seeds, plugins' SQL). PostgreSQL uses statement triggers with
transition tables (a bulk import or the funnel's recomputation of every
role's phase is one grouped insert); SQLite row triggers. A statement writes
one of the two tables, so the state before it is the other table as it is
now, with this table's changed rows replaced by their old versions: each
trigger subtracts the affected customers' keys computed that way and adds
their keys computed from the tables as they are. A customer's deletion is
counted by a BEFORE row trigger, while its role rows (deleted after it by the
foreign key's cascade) are still there; a role trigger ignores customers that
no longer exist.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol

from crmgraph.customer_types import KEY_PATTERN
from crmgraph.db import delta_fold, text_keys


class CustomerQuery(Protocol):
    """What this module reads of crmgraph.db.queries.CustomerQuery (a
    dataclass; queries imports this module, so not the other way)."""

    kinds: tuple[str, ...]
    any_role: bool
    stages: tuple[str, ...]
    phases: tuple[str, ...]
    deleted: str
    scope: Any


Condition = tuple[str, list[Any]]

TABLE = "customer_tally"
KEYS = "customer_tally_key"  # each customer's key as last counted
KEY = ("deleted", "kind", "stage", "phase", "further")
KEY_COLUMNS = ", ".join(KEY)
COMPACT_EVERY = 256
# pg_try_advisory_xact_lock's key for compactions: any fixed number
COMPACT_LOCK = 2812044
DELTAS = delta_fold.DeltaTable(TABLE, KEY, "n", COMPACT_LOCK, COMPACT_EVERY)

# The filters the tally answers; any other field away from its default falls
# back to COUNT(*) (a filter added later is counted until the tally learns it).
ANSWERED = frozenset({"kinds", "any_role", "stages", "phases", "deleted"})


def answers(q: CustomerQuery) -> bool:
    """Whether the tally counts ``q`` exactly: every customer is visible (no
    row scope) and ``q`` filters by nothing but what the key holds."""
    if q.scope is not None:
        return False
    return all(
        getattr(q, f.name) == f.default
        for f in dataclasses.fields(q)  # type: ignore[arg-type]
        if f.name not in ANSWERED
    )


def _kinds(column: str, kinds: tuple[str, ...]) -> Condition:
    """Kinds written in, as crmgraph.db.queries.kind_list does, else bound."""
    if all(KEY_PATTERN.fullmatch(kind) for kind in kinds):
        written = ", ".join(f"'{kind}'" for kind in kinds)
        return f"{column} IN ({written})", []
    return f"{column} IN ({', '.join('{}' for _ in kinds)})", list(kinds)


def conditions(q: CustomerQuery) -> list[Condition]:
    """``q`` as conditions over ``customer_tally t`` (``answers(q)`` holds),
    with ``{}`` placeholders and their values."""
    found: list[Condition] = []
    if q.deleted == "ACTIVE":
        found.append(("t.deleted = 0", []))
    elif q.deleted == "DELETED":
        found.append(("t.deleted = 1", []))
    if q.kinds:
        primary, args = _kinds("t.kind", q.kinds)
        if q.any_role:
            held = [f"%,{text_keys.escape_like(kind)},%" for kind in q.kinds]
            likes = " OR ".join("t.further LIKE {} ESCAPE '\\'" for _ in held)
            found.append((f"({primary} OR {likes})", [*args, *held]))
        else:
            found.append((primary, args))
    for column, wanted in (("t.stage", q.stages), ("t.phase", q.phases)):
        if wanted:
            found.append((f"{column} IN ({', '.join('{}' for _ in wanted)})", list(wanted)))
    return found


def count_select(condition: str) -> str:
    """The number of customers in the tally's rows matching ``condition``."""
    return f"SELECT CAST(COALESCE(SUM(t.n), 0) AS BIGINT) AS n FROM {TABLE} t WHERE {condition}"


# -- what the triggers write -------------------------------------------------


def key_select(customers: str, *, sqlite: bool) -> str:
    """Each customer of ``customers`` (rows with id, kind, deleted_at) with
    its key, from its role rows as they are. A join and a GROUP BY, not a
    subquery per customer: a trigger's statement may hold a million customers
    (an import, the funnel's recomputation of every phase)."""
    held = "r.kind <> c.kind AND r.added_at IS NOT NULL AND r.ended_at IS NULL"
    kinds = f"CASE WHEN {held} THEN r.kind END"
    # the order of the kinds in ``further`` only decides how rows fold: a
    # filter reads it with LIKE, so SQLite's unordered group_concat is exact
    joined = (
        f"group_concat({kinds}, ',')" if sqlite else f"string_agg({kinds}, ',' ORDER BY r.kind)"
    )
    own = "CASE WHEN r.kind = c.kind THEN r.{} END"
    return (
        "SELECT c.id AS customer, CASE WHEN c.deleted_at IS NULL THEN 0 ELSE 1 END AS deleted, "
        f"c.kind AS kind, COALESCE(MAX({own.format('stage')}), '') AS stage, "
        f"COALESCE(MAX({own.format('phase')}), '') AS phase, "
        f"COALESCE(',' || {joined} || ',', '') AS further "
        f"FROM {customers} c LEFT JOIN customer_role r ON r.customer = c.id "
        "GROUP BY c.id, c.kind, c.deleted_at"
    )


def customers_of(ids: str) -> str:
    return f"(SELECT id, kind, deleted_at FROM customer WHERE id IN ({ids}))"


def refresh(ids: str, *, sqlite: bool) -> list[str]:
    """The statements that bring the customers ``ids`` (a list or a
    subquery) up to date: their stored keys subtracted, their keys now added
    and stored (updated in place, so a later writer's lock finds the row),
    the stored keys of customers no longer there dropped. On PostgreSQL the
    stored keys are locked first, in id order, by a statement of its own: the
    next one's snapshot then holds what a concurrent writer of the same
    customer committed; and the rest is one statement (data-modifying CTEs)."""
    now = key_select(customers_of(ids), sqlite=sqlite)
    stored = f"SELECT {KEY_COLUMNS}, -1 AS n FROM {KEYS} WHERE customer IN ({ids})"
    changed = ", ".join(f"{k} = EXCLUDED.{k}" for k in KEY)
    distinct = "IS NOT" if sqlite else "IS DISTINCT FROM"
    differs = " OR ".join(f"{KEYS}.{k} {distinct} EXCLUDED.{k}" for k in KEY)
    upsert = (
        f"INSERT INTO {KEYS} (customer, {KEY_COLUMNS}) SELECT * FROM ({{now}}) k WHERE true "
        f"ON CONFLICT (customer) DO UPDATE SET {changed} WHERE {differs}"
    )
    vanished = (
        f"DELETE FROM {KEYS} WHERE customer IN ({ids}) "
        f"AND NOT EXISTS (SELECT 1 FROM customer c WHERE c.id = {KEYS}.customer)"
    )
    if sqlite:
        counted = f"SELECT {KEY_COLUMNS}, 1 AS n FROM ({now}) k"
        return [fold(f"({stored} UNION ALL {counted}) d"), upsert.format(now=now), vanished]
    lock = lock_keys(ids)
    counted = f"SELECT {KEY_COLUMNS}, 1 AS n FROM now"
    written = (
        f"WITH now AS MATERIALIZED ({now}), "
        f"put AS ({upsert.format(now='SELECT * FROM now')} RETURNING 1), "
        f"gone AS ({vanished} RETURNING 1) "
        f"{fold(f'({stored} UNION ALL {counted}) d')}"
    )
    return [lock, written]


def lock_keys(ids: str) -> str:
    """PostgreSQL: lock the stored keys of the customers ``ids`` (a subquery)
    in customer order, so that two transactions recounting the same
    customer (this tally, crmgraph.db.churn_basis) queue instead of both
    counting from the keys as they were."""
    return f"PERFORM 1 FROM {KEYS} WHERE customer IN ({ids}) ORDER BY customer FOR UPDATE"


def fold(source: str) -> str:
    """One row per key of ``source``'s rows (deltas, or the tally itself)."""
    return delta_fold.fold(DELTAS, source)


def backfill(*, sqlite: bool) -> list[str]:
    """Every customer's key stored and counted into the (empty) tally."""
    return [
        f"INSERT INTO {KEYS} (customer, {KEY_COLUMNS}) {key_select('customer', sqlite=sqlite)}",
        fold(f"(SELECT {KEY_COLUMNS}, 1 AS n FROM {KEYS}) d"),
    ]


def rebuild(*, sqlite: bool) -> list[str]:
    """The tally counted again from the tables (after a load with the
    triggers off, as the benchmark's seed does)."""
    return [f"DELETE FROM {TABLE}", f"DELETE FROM {KEYS}", *backfill(sqlite=sqlite)]


def create_tables(*, sqlite: bool) -> list[str]:
    pk = "INTEGER PRIMARY KEY" if sqlite else "BIGSERIAL PRIMARY KEY"
    key = (
        "deleted INTEGER NOT NULL, kind TEXT NOT NULL, stage TEXT NOT NULL, "
        "phase TEXT NOT NULL, further TEXT NOT NULL"
    )
    return [
        f"CREATE TABLE {TABLE} (id {pk}, {key}, n BIGINT NOT NULL)",
        f"CREATE TABLE {KEYS} (customer BIGINT PRIMARY KEY, {key})",
    ]


def compact(*, upto: str, sqlite: bool) -> list[str]:
    """Fold the tally's rows up to id ``upto`` into one row per key."""
    return delta_fold.compact(DELTAS, upto=upto, sqlite=sqlite)
