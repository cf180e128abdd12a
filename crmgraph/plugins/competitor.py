"""The associated competitor: a rival we watch, and sometimes ally with."""

from __future__ import annotations

import datetime
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


async def needs_intelligence(ctx: TransitionContext) -> list[str]:
    if await ctx.facts.interaction_count() == 0:
        return ["monitoring needs at least one recorded interaction (intelligence gathered)"]
    return []


def needs_agreement(ctx: TransitionContext) -> list[str]:
    if ctx.customer.attributes.get("agreement_signed_on") is None:
        return ["allying needs the date the agreement was signed"]
    return []


COMPETES_WITH = RelationshipKind(
    "competes_with",
    "Competes with",
    description="The competitor fights for the same customer or market.",
    from_kinds=("competitor",),
)

COMPETITOR = CustomerType(
    key="competitor",
    graphql_name="Competitor",
    description="An associated competitor: a rival we monitor and may ally with.",
    relationship_kinds=("competes_with",),
    # a rival is not also served as a client (its own record, if ever)
    not_combinable_with=("client",),
    attributes=(
        Attribute(
            "market_share", Decimal, "Estimated market share, percent.", min_value=0, max_value=100
        ),
        Attribute("strengths", str, "What they do well.", max_length=500),
        Attribute("weaknesses", str, "Where they are weak.", max_length=500),
        Attribute("agreement_signed_on", datetime.date, "Date of an alliance agreement."),
    ),
    lifecycle=Lifecycle(
        stages=(
            Stage("identified", "Identified", Phase.ENGAGEMENT),
            Stage("monitored", "Monitored", Phase.RETENTION),
            Stage("allied", "Allied", Phase.EXPANSION),
            Stage("dormant", "Dormant", Phase.ENDED),
        ),
        initial="identified",
        transitions=(
            Transition("identified", "monitored", guards=(needs_intelligence,)),
            Transition("monitored", "allied", guards=(needs_agreement,)),
            Transition("monitored", "dormant"),
            Transition("allied", "dormant"),
            Transition("dormant", "monitored"),
        ),
    ),
)


@hookimpl
def crmgraph_customer_types() -> list[CustomerType]:
    return [COMPETITOR]


@hookimpl
def crmgraph_relationship_kinds() -> list[RelationshipKind]:
    return [COMPETES_WITH]
