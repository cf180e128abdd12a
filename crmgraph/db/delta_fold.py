"""Folding a table of signed delta rows, for the counts kept by triggers
whose writers must never wait on one another (``customer_tally``,
crmgraph.db.customer_counts; ``cohort_size`` and ``cohort_activity``,
crmgraph.db.cohort_rollup; the tallies of every customer's interactions,
``interaction_day`` and ``purchase_month``, crmgraph.db.tallies).

A counter row updated in place (``ON CONFLICT DO UPDATE``) is a hot row:
concurrent writers of the same key queue on its lock and, holding other
locks, deadlock. A delta table has no unique key on the counted columns:
writers only insert (key, +n or -n) rows, readers ``SUM`` them per key.
Every ``every``-th row (by its ``id``) folds the rows up to it into one row
per key, in the inserting transaction. On PostgreSQL under
``pg_try_advisory_xact_lock(lock)``: a writer that finds a fold running
skips its own, so no fold waits on another; the fold deletes the rows its
statement sees and inserts their sums in one statement, so rows of
transactions not yet committed are neither counted twice nor lost. SQLite
has one writer.

A writer of many rows at once (crmgraph.db.batch_rollups: ``stage_flow``'s
rows of an import batch, ~1,600 per 1,000 customers) folds them itself,
once, after its INSERT (:func:`batch_folded`; migration 0056): its rows set
off a fold every ``every`` rows, each looking at the last ``window`` rows,
so every row was looked at four times and the folds' own rows set off more
(at 1,000,000 customers ~12 folds, ~230 ms of a batch's ~370). A table
whose writer does so (``batched``) has a fold trigger that returns at once
while the transaction's ``crmgraph.folding`` is ``'batch'``."""

from __future__ import annotations

from dataclasses import dataclass

from crmgraph.db.trigger_sql import block, function

# the transaction-local setting of a writer that folds its own rows once
# (``set_config(..., true)``); unset (NULL) or '' elsewhere
FOLDING = "crmgraph.folding"
BATCH = "batch"


@dataclass(frozen=True)
class DeltaTable:
    """A delta table: its name, the key columns, the summed column (the
    first, with ``more`` after it), the advisory lock of its folds, how many
    rows apart they run, how far back a fold looks for keys (``window``
    ids; 0: the whole table, see ``compact``), and whether a batch writer
    folds its own rows (``batched``: the trigger skips while it writes)."""

    table: str
    keys: tuple[str, ...]
    value: str
    lock: int
    every: int = 256
    more: tuple[str, ...] = ()
    window: int = 0
    batched: bool = False

    @property
    def key_list(self) -> str:
        return ", ".join(self.keys)

    @property
    def values(self) -> tuple[str, ...]:
        return (self.value, *self.more)

    @property
    def value_list(self) -> str:
        return ", ".join(self.values)

    @property
    def trigger(self) -> str:
        return f"{self.table}_compact"

    @property
    def since(self) -> str:
        """The plpgsql variable of a batch writer: the last id before its rows."""
        return f"{self.table}_since"


def fold(t: DeltaTable, source: str) -> str:
    """One row per key of ``source``'s rows (deltas, or the table itself),
    unless every sum is 0 (some rows of a key may be folded without the
    others: a fold keeps whatever its rows do not cancel)."""
    sums = ", ".join(f"SUM({v})" for v in t.values)
    kept = " OR ".join(f"SUM({v}) <> 0" for v in t.values)
    return (
        f"INSERT INTO {t.table} ({t.key_list}, {t.value_list}) "
        f"SELECT {t.key_list}, {sums} FROM {source} GROUP BY {t.key_list} HAVING {kept}"
    )


def compact(t: DeltaTable, *, upto: str, sqlite: bool) -> list[str]:
    """Fold the rows up to id ``upto`` of the keys that have more than one
    into one row per key. Keys already folded are left alone: a fold writes
    no more rows than it removes, so it stays small however many keys the
    table holds, and the rows it inserts (ids past ``upto``, possibly a
    multiple of ``every``) set off a fold only of what is left to fold.
    On PostgreSQL one statement: its DELETE and the sums read the same
    rows, whichever other transactions commit meanwhile.

    Finding those keys groups the whole table: cheap for small tables, but
    260-480 ms at ``interaction_day``'s 80,000 rows (100,000 customers),
    paid by every 256th writer. With a ``window``, only the keys of the
    last ``window`` rows are looked at, each by the index on the keys
    (``_recent``): a few ms however large the table. Rows a skipped or
    overlapped fold left behind are folded when their key is written again
    (meanwhile they are valid deltas, summed by readers like any other)."""
    shared = (
        f"({t.key_list}) IN ({_recent(t, upto)})"
        if t.window
        else f"({t.key_list}) IN (SELECT {t.key_list} FROM {t.table} WHERE id <= {upto} "
        f"GROUP BY {t.key_list} HAVING COUNT(*) > 1)"
    )
    if sqlite:
        folded = f"(SELECT * FROM {t.table} WHERE id <= {upto} AND {shared}) d"
        return [fold(t, folded), f"DELETE FROM {t.table} WHERE id <= {upto} AND {shared}"]
    gone = (
        f"DELETE FROM {t.table} WHERE id <= {upto} AND {shared} "
        f"RETURNING {t.key_list}, {t.value_list}"
    )
    return [f"WITH gone AS ({gone}) {fold(t, 'gone')}"]


def _recent(t: DeltaTable, upto: str) -> str:
    """The keys of the last ``t.window`` rows up to ``upto`` that have
    another row up to it."""
    return _keys_held_again(
        t, f"r.id > {upto} - {t.window} AND r.id <= {upto}", f"o.id <= {upto} AND "
    )


def _keys_held_again(t: DeltaTable, rows: str, others: str = "") -> str:
    """The keys of ``t``'s ``rows`` (a condition on ``r``) that another row
    (``others``, a condition on ``o`` ending in AND) holds too, found by the
    index on the keys."""
    keys = ", ".join(f"r.{k}" for k in t.keys)
    same = " AND ".join(f"o.{k} = r.{k}" for k in t.keys)
    return (
        f"SELECT {keys} FROM {t.table} r WHERE {rows} "
        f"AND EXISTS (SELECT 1 FROM {t.table} o WHERE {same} AND {others}o.id <> r.id)"
    )


def sums_view(t: DeltaTable, name: str) -> str:
    """A view ``name`` of one row per key, its sums: the counter rows the
    delta rows stand for, for readers that filter or join them as rows. A
    key whose first sum (its rows) is 0 has none. Filters on the keys reach
    the table (both planners push them into the grouped query)."""
    sums = ", ".join(f"CAST(SUM({v}) AS BIGINT) AS {v}" for v in t.values)
    return (
        f"CREATE VIEW {name} AS SELECT {t.key_list}, {sums} FROM {t.table} "
        f"GROUP BY {t.key_list} HAVING SUM({t.value}) <> 0"
    )


def _locked(t: DeltaTable, folded: str) -> str:
    # a writer that finds another folding skips: none waits on another
    return f"IF pg_try_advisory_xact_lock({t.lock}) THEN {folded}; END IF"


def _probes(t: DeltaTable) -> str:
    # a window's few keys by the index on the keys: the planner, guessing
    # from the table's size, hashed all of it (40 ms at 80,000 rows, not 3;
    # a batch's 1,600 keys at 304,000 rows: its DELETE 115 ms, not 28)
    return " SET enable_hashjoin = off SET enable_mergejoin = off" if t.window else ""


def fold_since(t: DeltaTable, since: str) -> str:
    """PostgreSQL: fold the keys of the rows past id ``since`` that have
    another row, in one statement as ``compact`` (its DELETE and the sums
    read the same rows), under the folds' lock: when another transaction
    folds, the rows stay valid deltas that a later fold of their key takes.
    A key's other row is looked for as ``_recent`` does (a key new to the
    table is not written again)."""
    shared = f"({t.key_list}) IN ({_keys_held_again(t, f'r.id > {since}')})"
    gone = f"DELETE FROM {t.table} WHERE {shared} RETURNING {t.key_list}, {t.value_list}"
    return _locked(t, f"WITH gone AS ({gone}) {fold(t, 'gone')}")


def _fold_function(t: DeltaTable) -> str:
    return f"{t.table}_fold_since"


def fold_since_function(t: DeltaTable) -> str:
    """``<table>_fold_since(since bigint)``: ``fold_since``, planned for each
    call's ``since`` and by the index on the keys, as the trigger's fold
    (settings of its own statements only, which a caller's are not)."""
    return (
        f"CREATE OR REPLACE FUNCTION {_fold_function(t)}(since bigint) RETURNS void "
        f"LANGUAGE plpgsql SET plan_cache_mode = force_custom_plan{_probes(t)} AS $$\n"
        f"BEGIN\n{block([fold_since(t, 'since')])}END $$"
    )


def batch_folded(t: DeltaTable, written: list[str]) -> list[str]:
    """PostgreSQL, in a plpgsql function declaring ``t.since`` (bigint):
    ``written`` (statements inserting into ``t``) with the fold trigger
    skipping, then one fold of exactly the keys they wrote
    (``fold_since_function``), whose rows set off no fold either.
    ``MAX(id)`` reads the primary key's last entry."""
    return [
        f"SELECT COALESCE(MAX(id), 0) INTO {t.since} FROM {t.table}",
        f"PERFORM set_config('{FOLDING}', '{BATCH}', true)",
        *written,
        f"PERFORM {_fold_function(t)}({t.since})",
        f"PERFORM set_config('{FOLDING}', '', true)",
    ]


def compaction_function(t: DeltaTable) -> str:
    """The function of ``t``'s fold trigger (``postgres_compaction``)."""
    (folded,) = compact(t, upto="NEW.id", sqlite=False)
    body = [_locked(t, folded)]
    if t.batched:  # the writer folds its rows once (``batch_folded``)
        skip = f"current_setting('{FOLDING}', true) = '{BATCH}'"
        body.insert(0, f"IF {skip} THEN RETURN NULL; END IF")
    return function(t.trigger, body, options=_probes(t))


def postgres_compaction(t: DeltaTable) -> list[str]:
    """The function and row trigger that fold ``t`` every ``t.every`` rows
    (and, ``batched``, the batch writer's fold)."""
    return [
        compaction_function(t),
        f"CREATE TRIGGER {t.trigger} AFTER INSERT ON {t.table} FOR EACH ROW "
        f"WHEN (NEW.id % {t.every} = 0) EXECUTE FUNCTION {t.trigger}()",
        *([fold_since_function(t)] if t.batched else []),
    ]


def drop_fold_since(t: DeltaTable) -> str:
    return f"DROP FUNCTION IF EXISTS {_fold_function(t)}(bigint)"


def sqlite_compaction(t: DeltaTable) -> list[str]:
    """The row trigger that folds ``t`` every ``t.every`` rows."""
    body = block(compact(t, upto="NEW.id", sqlite=True))
    return [
        f"CREATE TRIGGER {t.trigger} AFTER INSERT ON {t.table} "
        f"WHEN NEW.id % {t.every} = 0 BEGIN\n{body}END"
    ]


def drop_compaction(t: DeltaTable, *, sqlite: bool) -> list[str]:
    if sqlite:
        return [f"DROP TRIGGER IF EXISTS {t.trigger}"]
    return [
        f"DROP TRIGGER IF EXISTS {t.trigger} ON {t.table}",
        f"DROP FUNCTION IF EXISTS {t.trigger}()",
        *([drop_fold_since(t)] if t.batched else []),
    ]
