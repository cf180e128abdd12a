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
