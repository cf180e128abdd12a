"""A plugin whose run-time hooks raise: on creating a customer named
``boom…`` and on moving a customer named ``late boom`` anywhere."""

from __future__ import annotations

from typing import Any

from crmgraph import TransitionContext
from crmgraph.extension_points import CustomerWrite
from crmgraph.hookspecs import hookimpl


@hookimpl
def crmgraph_validate_customer(write: CustomerWrite) -> list[Any] | None:
    if str(write.values.get("name", "")).startswith("boom"):
        raise RuntimeError("validator exploded")
    return None


@hookimpl
async def crmgraph_after_transition(ctx: TransitionContext) -> None:
    if ctx.customer.name == "late boom":
        raise ZeroDivisionError("after-transition exploded")
