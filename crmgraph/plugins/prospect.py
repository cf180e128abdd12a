"""The prospect: a party we are trying to win, not yet buying."""

from __future__ import annotations

from decimal import Decimal

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


async def needs_an_interaction(ctx: TransitionContext) -> list[str]:
    if await ctx.facts.interaction_count() == 0:
        return ["qualifying needs at least one logged interaction with the prospect"]
    return []


async def needs_a_purchase(ctx: TransitionContext) -> list[str]:
    count, _ = await ctx.facts.purchases()
    if count == 0:
        return ["converting needs a purchase: a prospect that buys becomes a client"]
    return []


PROSPECT = CustomerType(
    key="prospect",
    graphql_name="Prospect",
    description="A party the organisation is trying to win; converts into a client on purchase.",
    attributes=(
        Attribute(
            "source",
            str,
            "Where the lead came from.",
            choices=("WEB", "REFERRAL", "EVENT", "COLD_CALL", "PARTNER", "OTHER"),
        ),
        Attribute("estimated_value", Decimal, "Expected yearly value if won.", min_value=0),
        Attribute("interest", str, "What the prospect is interested in.", max_length=200),
    ),
    lifecycle=Lifecycle(
        stages=(
            Stage("new", "New lead", Phase.ENGAGEMENT),
            Stage("contacted", "Contacted", Phase.ENGAGEMENT),
            Stage("qualified", "Qualified", Phase.ACQUISITION),
            Stage("converted", "Converted", Phase.ENDED),
            Stage("disqualified", "Disqualified", Phase.ENDED),
        ),
        initial="new",
        transitions=(
            Transition("new", "contacted"),
            Transition("new", "disqualified"),
            Transition("contacted", "qualified", guards=(needs_an_interaction,)),
            Transition("contacted", "disqualified"),
            Transition("qualified", "disqualified"),
            Transition("disqualified", "contacted", description="Re-open a lost lead."),
            Transition(
                "qualified",
                "converted",
                guards=(needs_a_purchase,),
                description="The prospect bought: it becomes an active client.",
                convert_to="client",
                convert_stage="active",
            ),
        ),
    ),
)


@hookimpl
def crmgraph_customer_types() -> list[CustomerType]:
    return [PROSPECT]
