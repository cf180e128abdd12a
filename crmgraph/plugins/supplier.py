"""The supplier: a party we buy from."""

from __future__ import annotations

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

MINIMUM_RATING = 3


def approvable(ctx: TransitionContext) -> list[str]:
    reasons = []
    rating = ctx.customer.attributes.get("rating")
    if rating is None:
        reasons.append(f"approval needs a rating of at least {MINIMUM_RATING}; none is recorded")
    elif rating < MINIMUM_RATING:
        reasons.append(f"approval needs a rating of at least {MINIMUM_RATING} (it is {rating})")
    if not ctx.customer.attributes.get("tax_id"):
        reasons.append("approval needs a tax id")
    return reasons


SUPPLIES = RelationshipKind(
    "supplies",
    "Supplies",
    description="The supplier provides goods or services to the other party.",
    from_kinds=("supplier",),
)

SUPPLIER = CustomerType(
    key="supplier",
    graphql_name="Supplier",
    description="A party the organisation buys from.",
    relationship_kinds=("supplies",),
    # two suppliers with one tax id would be paid twice: refuse, unless told otherwise
    duplicate_rule="block",
    attributes=(
        Attribute("rating", int, "Evaluation score, 1 (poor) to 5.", min_value=1, max_value=5),
        Attribute("tax_id", str, "Tax identification number.", max_length=32),
        Attribute("category", str, "What they supply.", max_length=100),
        Attribute("payment_terms_days", int, "Days to pay invoices.", min_value=0, max_value=365),
    ),
    lifecycle=Lifecycle(
        stages=(
            Stage("evaluation", "In evaluation", Phase.ACQUISITION),
            Stage("approved", "Approved", Phase.ACQUISITION),
            Stage("active", "Active", Phase.RETENTION),
            Stage("suspended", "Suspended", Phase.RETENTION, detour=True),
            Stage("terminated", "Terminated", Phase.ENDED),
        ),
        initial="evaluation",
        transitions=(
            Transition("evaluation", "approved", guards=(approvable,)),
            Transition("evaluation", "terminated", description="Not approved."),
            Transition("approved", "active"),
            Transition("active", "suspended"),
            Transition("suspended", "active"),
            Transition("suspended", "terminated"),
            Transition("active", "terminated"),
        ),
    ),
)


@hookimpl
def crmgraph_customer_types() -> list[CustomerType]:
    return [SUPPLIER]


@hookimpl
def crmgraph_relationship_kinds() -> list[RelationshipKind]:
    return [SUPPLIES]
