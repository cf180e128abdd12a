"""The SQL text of a trigger's body and of a PostgreSQL trigger function,
for every trigger-kept count (crmgraph.db.tallies, activity, customer_counts,
cohort_rollup, stage_flow, churn_basis, delta_fold): one way to write them.

A rollup trigger that a bulk writer may *defer* (:func:`deferrable`) returns
at once while the transaction's ``crmgraph.rollups`` is ``'deferred'``: the
writer brings the rollups up to date itself, once for all its tables
(crmgraph.db.batch_rollups)."""

from __future__ import annotations

from collections.abc import Sequence


def block(body: Sequence[str]) -> str:
    """Statements as the body of a trigger or a plpgsql function."""
    return "".join(f"    {s};\n" for s in body)


def function(name: str, body: Sequence[str], returns: str = "NULL", options: str = "") -> str:
    """A plpgsql trigger function ``name()`` running ``body``, then returning
    ``returns`` (NULL for an AFTER trigger; OLD lets a BEFORE DELETE go on);
    ``options``: settings of the function's own statements (`` SET …``)."""
    return (
        f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql{options} AS $$\n"
        f"BEGIN\n{block(body)}    RETURN {returns};\nEND $$"
    )


# the transaction-local setting of a bulk writer that brings the rollups up
# to date itself (``SET LOCAL``); unset (NULL) or '' elsewhere
ROLLUPS = "crmgraph.rollups"
DEFERRED = "deferred"


def deferrable(body: Sequence[str], deferred: bool = True) -> list[str]:
    """``body`` of an AFTER trigger, skipped while the rollups are deferred
    (``deferred``; not: as before migration 0055)."""
    skip = f"current_setting('{ROLLUPS}', true) = '{DEFERRED}'"
    return [f"IF {skip} THEN RETURN NULL; END IF", *body] if deferred else list(body)


def replacing(statement: str) -> str:
    """A ``function``'s statement as ``CREATE OR REPLACE``, for a migration
    that changes a function its triggers keep calling."""
    return statement.replace("CREATE FUNCTION ", "CREATE OR REPLACE FUNCTION ", 1)


# A statement whose joins run in the order they are written and whose GROUP BY
# is hashed, not sorted: the planner's own choice for a batch's measures
# (crmgraph.db.stage_flow.new_customers) joined every entry to the dozen
# measures before looking up its customer and role (a lookup per entry and
# measure), then sorted the rows on text keys, each compared under the
# database's collation. Scoped to that statement: in the whole function,
# ``enable_sort = off`` made the tally's locking read a nested loop of a
# million key rows by the batch's thousand ids.
AS_WRITTEN = {"join_collapse_limit": "1", "enable_sort": "off"}


def saved_setting(name: str) -> str:
    """The plpgsql variable :func:`planned_with` keeps a setting's value in."""
    return f"saved_{name}"


def planned_with(settings: dict[str, str], statements: Sequence[str]) -> list[str]:
    """PostgreSQL, in a plpgsql function declaring each setting's
    :func:`saved_setting` (text): ``statements`` planned under ``settings``,
    and the values they had set again after them. ``set_config(..., true)``
    is ``SET LOCAL``: without the second, the rest of the transaction (an
    import's next batches) would be planned so too."""
    saved = [f"{saved_setting(name)} := current_setting('{name}')" for name in settings]
    setting = ", ".join(
        f"set_config('{name}', '{value}', true)" for name, value in settings.items()
    )
    restoring = ", ".join(f"set_config('{name}', {saved_setting(name)}, true)" for name in settings)
    return [*saved, f"PERFORM {setting}", *statements, f"PERFORM {restoring}"]
