"""The guarantor: a party that guarantees a client's obligations."""

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


async def needs_amount_and_client(ctx: TransitionContext) -> list[str]:
    reasons = []
    amount = ctx.customer.attributes.get("guaranteed_amount")
    if not amount or amount <= 0:
        reasons.append("verifying needs a guaranteed amount greater than zero")
    links = await ctx.facts.relationships("guarantees", "out")
    if not any(link.customer_kind == "client" for link in links):
        reasons.append("verifying needs a 'guarantees' relationship to a client")
    return reasons


GUARANTEES = RelationshipKind(
    "guarantees",
    "Guarantees",
    description="The guarantor answers for the client's obligations.",
    from_kinds=("guarantor",),
    to_kinds=("client",),
)

GUARANTOR = CustomerType(
    key="guarantor",
    graphql_name="Guarantor",
    description="A party that guarantees a client's obligations (a loan, a lease, a credit line).",
    relationship_kinds=("guarantees",),
    attributes=(
        Attribute("guaranteed_amount", Decimal, "Amount guaranteed.", min_value=0),
        Attribute(
            "guarantee_type",
            str,
            "Kind of guarantee.",
            choices=("PERSONAL", "BANK", "COLLATERAL", "CORPORATE"),
        ),
        Attribute("document_id", str, "Identity or registry document.", max_length=32),
    ),
    lifecycle=Lifecycle(
        stages=(
            Stage("proposed", "Proposed", Phase.ENGAGEMENT),
            Stage("verified", "Verified", Phase.ACQUISITION),
            Stage("active", "Active", Phase.RETENTION),
            Stage("released", "Released", Phase.ENDED),
        ),
        initial="proposed",
        transitions=(
            Transition("proposed", "verified", guards=(needs_amount_and_client,)),
            Transition("proposed", "released", description="Proposal withdrawn."),
            Transition("verified", "active"),
            Transition("active", "released"),
        ),
    ),
)


@hookimpl
def crmgraph_customer_types() -> list[CustomerType]:
    return [GUARANTOR]


@hookimpl
def crmgraph_relationship_kinds() -> list[RelationshipKind]:
    return [GUARANTEES]
