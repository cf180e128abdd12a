"""The plain client: a party that buys (or may buy) from us."""

from __future__ import annotations

from decimal import Decimal

from crmgraph import (
    Attribute,
    CustomerType,
    Lifecycle,
    Phase,
    RelationshipKind,
    Stage,
    Transition,
    TransitionContext,
    hookimpl,
)


async def needs_a_purchase(ctx: TransitionContext) -> list[str]:
    count, _ = await ctx.facts.purchases()
    if count == 0:
        return ["becoming active needs a purchase: log an interaction with an amount first"]
    return []


SEGMENTS = ("CONSUMER", "SMALL_BUSINESS", "MID_MARKET", "ENTERPRISE", "PUBLIC_SECTOR")

CLIENT = CustomerType(
    key="client",
    graphql_name="Client",
    description="A customer who buys, or is on the way to buying, from the organisation.",
    attributes=(
        Attribute("segment", str, "Market segment.", choices=SEGMENTS),
        Attribute("industry", str, "Industry or sector.", max_length=100),
        Attribute("tax_id", str, "Tax identification number.", max_length=32),
        Attribute("website", str, "Public website.", max_length=200),
        Attribute("annual_revenue", Decimal, "Estimated yearly revenue.", min_value=0),
        Attribute("preferred_language", str, "ISO 639-1 language code.", max_length=8),
    ),
    relationship_kinds=("refers",),
    lifecycle=Lifecycle(
        stages=(
            Stage("interest", "Interest", Phase.ENGAGEMENT),
            Stage("engaged", "Engaged", Phase.ENGAGEMENT),
            Stage("negotiating", "Negotiating", Phase.ACQUISITION),
            Stage("active", "Active", Phase.RETENTION),
            Stage("loyal", "Loyal", Phase.EXPANSION),
            Stage("expanding", "Expanding", Phase.EXPANSION),
            Stage("at_risk", "At risk", Phase.RETENTION, detour=True),
            Stage("churned", "Churned", Phase.ENDED),
        ),
        initial="interest",
        transitions=(
            Transition("interest", "engaged"),
            Transition("engaged", "negotiating"),
            Transition("negotiating", "active", guards=(needs_a_purchase,)),
            Transition("negotiating", "churned"),
            Transition("active", "loyal"),
            Transition("active", "expanding"),
            Transition("active", "at_risk"),
            Transition("loyal", "expanding"),
            Transition("loyal", "at_risk"),
            Transition("expanding", "at_risk"),
            Transition("at_risk", "active", guards=(needs_a_purchase,)),
            Transition("at_risk", "churned"),
            Transition("churned", "engaged"),
        ),
    ),
)


REFERS = RelationshipKind(
    "refers",
    "Refers",
    description="The first customer brought the second one to us (word of mouth).",
)


@hookimpl
def crmgraph_customer_types() -> list[CustomerType]:
    return [CLIENT]


@hookimpl
def crmgraph_relationship_kinds() -> list[RelationshipKind]:
    return [REFERS]
