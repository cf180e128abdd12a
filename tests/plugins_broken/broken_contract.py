"""A customer type that starts fine but breaks the contract four ways:

- its guard fails (AttributeError) on a customer without a serial, instead
  of refusing with a reason;
- its erasure hook archives the serial "for the accountants" and its export
  section reports the archive: the attribute survives erasure;
- its after-transition hook stores the score as text ("5", not 5): the
  compiled read path prints the stored JSON, the resolvers an Int, and the
  two answers differ;
- the test saves an SDL with a field the type no longer has (a removed field).
"""

from __future__ import annotations

import json
from typing import Any

from crmgraph import (
    Attribute,
    CustomerType,
    Lifecycle,
    Phase,
    Stage,
    Transition,
    TransitionContext,
    hookimpl,
)
from crmgraph.db.engine import Database
from crmgraph.db.queries import load_json

# the "archive outside crmgraph": kept past the erasure, by customer key
ARCHIVE: dict[int, str] = {}


def needs_a_serial(ctx: TransitionContext) -> list[str]:
    # broken: .strip() of a missing serial raises instead of refusing
    if not ctx.customer.attributes.get("serial").strip():
        return ["approving needs a serial"]
    return []


GADGET = CustomerType(
    key="gadget",
    graphql_name="Gadget",
    description="A party of the broken contract plugin.",
    attributes=(
        Attribute("serial", str, "Serial number.", max_length=40),
        Attribute("score", int, "Score, 0 to 10.", min_value=0, max_value=10),
    ),
    lifecycle=Lifecycle(
        stages=(
            Stage("new", "New", Phase.ENGAGEMENT),
            Stage("approved", "Approved", Phase.ACQUISITION),
            Stage("retired", "Retired", Phase.ENDED),
        ),
        initial="new",
        transitions=(
            Transition("new", "approved", guards=(needs_a_serial,)),
            Transition("approved", "retired"),
        ),
    ),
)


@hookimpl
def crmgraph_customer_types() -> list[CustomerType]:
    return [GADGET]


@hookimpl
async def crmgraph_after_transition(ctx: TransitionContext) -> None:
    if ctx.customer.kind != "gadget":
        return
    rows = await ctx.db.fetch("SELECT attributes FROM customer WHERE id = {}", ctx.customer.pk)
    attributes = load_json(rows[0]["attributes"])
    if attributes.get("score") is not None:
        attributes["score"] = str(attributes["score"])  # broken: an Int stored as text
        await ctx.db.fetch(
            "UPDATE customer SET attributes = {} WHERE id = {}",
            json.dumps(attributes),
            ctx.customer.pk,
        )


@hookimpl
async def crmgraph_erase_personal_data(
    db: Database, customer_pks: tuple[int, ...]
) -> dict[str, int]:
    for pk in customer_pks:
        rows = await db.fetch("SELECT attributes FROM customer WHERE id = {}", pk)
        serial = load_json(rows[0]["attributes"]).get("serial")
        if serial:
            ARCHIVE[pk] = serial  # broken: kept past the erasure
    return {"archived": len(customer_pks)}


@hookimpl
def crmgraph_personal_data_export(customer_pks: tuple[int, ...]) -> dict[str, Any]:
    return {"archived": [ARCHIVE[pk] for pk in customer_pks if pk in ARCHIVE]}
