"""The SQL text of a trigger's body and of a PostgreSQL trigger function,
for every trigger-kept count (crmgraph.db.tallies, activity, customer_counts,
cohort_rollup, stage_flow, churn_basis, delta_fold): one way to write them."""

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
