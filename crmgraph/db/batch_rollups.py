"""A bulk write of new customers brings the trigger-kept rollups up to date
once, not once per table it writes (PostgreSQL; migration 0055).

A batch of new customers is three COPYs (customer, customer_role,
stage_change), and each fires its statement triggers: ``customer_tally``
recounted the same new customers at the customer COPY (no roles yet) and
again at the role COPY, the cohorts at the customer COPY and again at the
stage_change COPY, and ``stage_flow``'s role insert looked for entries that
were not written yet. Inside the writer's transaction, :func:`defer` sets
``crmgraph.rollups`` to ``'deferred'`` (``SET LOCAL``), which those six
insert triggers read first and return on (crmgraph.db.trigger_sql.
deferrable); :func:`catch_up` clears it and calls ``crmgraph_rollups_of_new``
with the new ids, which does what the triggers would have done in sum, with
the same statements (each module's ``new_customers``, ``customer_counts.
refresh``). Only for customers the batch created: their roles and entries
are all new, so their entries' measures are counted once, with every role
written. Every other trigger (updates, deletes, the folds, the rollups of
the rollups) runs as before, and nothing else of the transaction runs
between the COPYs and :func:`catch_up`: what comes next (an import's
phases) updates the batch's rows and must find them counted.

SQLite keeps its row triggers: nothing is repeated there per table.
"""

from __future__ import annotations

from crmgraph.db import (
    cohort_rollup,
    customer_count_triggers,
    customer_counts,
    delta_fold,
    stage_flow,
)
from crmgraph.db.bulk import COPY_FROM_ROWS
from crmgraph.db.engine import Database
from crmgraph.db.trigger_sql import (
    AS_WRITTEN,
    DEFERRED,
    ROLLUPS,
    block,
    replacing,
    saved_setting,
)

FUNCTION = "crmgraph_rollups_of_new"


def rollups_function(*, folded: bool = True, planned: bool = True) -> str:
    """``FUNCTION(ids bigint[])``: the three rollups of new customers ``ids``.
    Planned for each call's ids (a batch of 50 or 10,000): a generic plan
    guesses an array's length and may hash the whole customer table.
    ``stage_flow``'s rows folded once at the end (``folded``, migration 0056;
    not: as 0055 made it), and planned as written (``planned``, migration
    0058: :data:`~crmgraph.db.trigger_sql.AS_WRITTEN`). The other delta tables
    get few rows of a batch (1,000 new customers at 1,000,000: ~40
    ``customer_tally`` rows, ~170 ``cohort_size``, none of ``cohort_activity``):
    their trigger folds at most once, in 2 ms."""
    ids = "SELECT unnest(ids)"
    body = [
        *customer_counts.refresh(ids, sqlite=False),
        *cohort_rollup.new_customers(ids),
        *stage_flow.new_customers("ids", folded=folded, planned=planned),
    ]
    declared = [f"{stage_flow.DELTAS.since} bigint;\n"] if folded else []
    if planned:
        declared += [f"{saved_setting(name)} text;\n" for name in AS_WRITTEN]
    declare = f"DECLARE {''.join(declared)}" if declared else ""
    return (
        f"CREATE OR REPLACE FUNCTION {FUNCTION}(ids bigint[]) RETURNS void LANGUAGE plpgsql "
        f"SET plan_cache_mode = force_custom_plan AS $$\n{declare}BEGIN\n{block(body)}END $$"
    )


def _insert_functions(*, deferred: bool) -> list[str]:
    made = [
        *customer_count_triggers.insert_functions(deferred=deferred),
        *cohort_rollup.insert_functions(deferred=deferred),
        *stage_flow.insert_functions(deferred=deferred),
    ]
    return [replacing(statement) for statement in made]


def create_statements(engine_type: str) -> list[str]:
    """Migration 0055: the insert triggers' functions that may be deferred,
    and the function that catches up."""
    if engine_type != "postgres":
        return []
    return [*_insert_functions(deferred=True), rollups_function()]


def drop_statements(engine_type: str) -> list[str]:
    if engine_type != "postgres":
        return []
    return [*_insert_functions(deferred=False), f"DROP FUNCTION IF EXISTS {FUNCTION}(bigint[])"]


def batch_folds(engine_type: str) -> list[str]:
    """Migration 0056: ``stage_flow``'s fold trigger skips while the
    function folds the rows it writes once, at its end."""
    if engine_type != "postgres":
        return []
    return [*stage_flow.batch_folds(engine_type), rollups_function()]


def planned_as_written(engine_type: str) -> list[str]:
    """Migration 0058: the function with its ``stage_flow`` INSERT planned as written."""
    return [rollups_function()] if engine_type == "postgres" else []


def planned_by_the_planner(engine_type: str) -> list[str]:
    """0058 reversed: the function as 0056 left it."""
    return [rollups_function(planned=False)] if engine_type == "postgres" else []


def unbatched_folds(engine_type: str) -> list[str]:
    """0056 reversed: both functions as 0055 left them."""
    if engine_type != "postgres":
        return []
    return [
        *stage_flow.unbatched_folds(engine_type),
        rollups_function(folded=False, planned=False),
        delta_fold.drop_fold_since(stage_flow.DELTAS),
    ]


async def defer(db: Database, count: int) -> bool:
    """Before a bulk write of ``count`` new customers: whether their rollups
    wait for :func:`catch_up` (PostgreSQL, in a transaction, a batch that
    goes by COPY; a few customers are written as before)."""
    if db.is_sqlite or not db.in_transaction or count < COPY_FROM_ROWS:
        return False
    await db.flush_writes()  # what the transaction queued is counted by its triggers
    await db.fetch(f"SET LOCAL {ROLLUPS} = '{DEFERRED}'")
    return True


async def catch_up(db: Database, ids: list[int]) -> None:
    """Right after the deferred write: the triggers on again, and the
    rollups of the new customers ``ids`` brought up to date."""
    await db.flush_writes()  # none queued since the COPYs: a SET rides on no WITH
    await db.fetch(f"SET LOCAL {ROLLUPS} = ''")
    await db.fetch(f"SELECT {FUNCTION}({{}}) AS done", ids)
