"""The beneficiary: a party designated to receive a client's benefits."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from crmgraph import (
    Attribute,
    CustomerType,
    CustomerWrite,
    Facts,
    Lifecycle,
    Phase,
    RelationshipKind,
    Stage,
    Transition,
    TransitionContext,
    hookimpl,
    load_json,
)

# Stages in which a beneficiary's share counts against its client's 100%.
COUNTED_STAGES = ("confirmed", "active")


async def shares_of_others(facts: Facts, client_pk: int) -> Decimal:
    """Sum of the shares of the client's other counted beneficiaries."""
    rows = await facts.fetch(
        "SELECT c.attributes FROM relationship rel "
        "JOIN customer c ON c.id = rel.from_customer "
        "JOIN customer_role r ON r.customer = c.id AND r.kind = c.kind "
        "WHERE rel.kind = 'beneficiary_of' AND rel.to_customer = {} AND c.id <> {} "
        "AND c.kind = 'beneficiary' AND c.deleted_at IS NULL "
        "AND r.stage IN ('confirmed', 'active')",
        client_pk,
        facts.customer_pk,
    )
    return sum(
        (Decimal(str(load_json(r["attributes"]).get("share_percent") or 0)) for r in rows),
        Decimal(0),
    )


async def share_problems(facts: Facts, share: Decimal | None) -> list[str]:
    reasons = []
    for link in await facts.relationships("beneficiary_of", "out"):
        others = await shares_of_others(facts, link.customer_id)
        if others + (share or 0) > 100:
            reasons.append(
                f"the shares of {link.name}'s beneficiaries would add up to "
                f"{others + (share or 0)}%, more than 100% ({others}% already assigned)"
            )
    return reasons


async def needs_link_and_room(ctx: TransitionContext) -> list[str]:
    if not await ctx.facts.relationships("beneficiary_of", "out"):
        return ["confirming needs a 'beneficiary_of' relationship to a client"]
    share = ctx.customer.attributes.get("share_percent")
    if share is None:
        return ["confirming needs a share percentage"]
    return await share_problems(ctx.facts, share)


BENEFICIARY_OF = RelationshipKind(
    "beneficiary_of",
    "Beneficiary of",
    description="The beneficiary receives part of the client's benefits.",
    from_kinds=("beneficiary",),
    to_kinds=("client",),
)

BENEFICIARY = CustomerType(
    key="beneficiary",
    graphql_name="Beneficiary",
    description="A party designated to receive part of a client's benefits (insurance, pension).",
    relationship_kinds=("beneficiary_of",),
    attributes=(
        Attribute(
            "share_percent",
            Decimal,
            "Share of the client's benefits, in percent.",
            min_value=0,
            max_value=100,
        ),
        Attribute("relation_to_holder", str, "e.g. spouse, child.", max_length=64),
    ),
    lifecycle=Lifecycle(
        stages=(
            Stage("designated", "Designated", Phase.ENGAGEMENT),
            Stage("confirmed", "Confirmed", Phase.ACQUISITION),
            Stage("active", "Active", Phase.RETENTION),
            Stage("ended", "Ended", Phase.ENDED),
        ),
        initial="designated",
        transitions=(
            Transition("designated", "confirmed", guards=(needs_link_and_room,)),
            Transition("designated", "ended"),
            Transition("confirmed", "active"),
            Transition("confirmed", "ended"),
            Transition("active", "ended"),
        ),
    ),
)


@hookimpl
def crmgraph_customer_types() -> list[CustomerType]:
    return [BENEFICIARY]


@hookimpl
def crmgraph_relationship_kinds() -> list[RelationshipKind]:
    return [BENEFICIARY_OF]


@hookimpl
async def crmgraph_validate_customer(write: CustomerWrite) -> list[Any]:
    """A counted beneficiary's share may not be raised past its client's 100%."""
    if write.kind != "beneficiary" or write.existing is None or write.facts is None:
        return []
    if write.existing.stage not in COUNTED_STAGES:
        return []
    share = write.attributes.get("share_percent")
    share = Decimal(str(share)) if share is not None else None
    return [("beneficiary.sharePercent", r) for r in await share_problems(write.facts, share)]
