"""The address-book contact ("agenda"): someone worth keeping in touch with."""

from __future__ import annotations

import datetime

from crmgraph import (
    CONTACT_READ_PROFILE,
    Attribute,
    CustomerType,
    Lifecycle,
    Phase,
    Stage,
    Transition,
    TransitionContext,
    hookimpl,
)


async def nothing_open(ctx: TransitionContext) -> list[str]:
    open_needs = await ctx.facts.open_need_count()
    if open_needs:
        return [f"archiving needs no open needs; this contact has {open_needs}"]
    return []


AGENDA = CustomerType(
    key="agenda",
    graphql_name="AgendaContact",
    description="An address-book contact: a person or organisation worth keeping in touch with.",
    # an entry of the address book is what a party is, not a role it adds
    secondary_role=False,
    attributes=(
        Attribute(
            "category",
            str,
            "Why we keep them.",
            choices=("PRESS", "INFLUENCER", "INSTITUTION", "ADVISOR", "PERSONAL", "OTHER"),
        ),
        # personal profile data, guarded as a Contact's birthday is
        Attribute(
            "birthday",
            datetime.date,
            "For greetings. Needs the contact.read_profile permission.",
            permission=CONTACT_READ_PROFILE,
        ),
        Attribute("notes_short", str, "One-line reminder.", max_length=200),
    ),
    lifecycle=Lifecycle(
        stages=(
            Stage("active", "Active", Phase.RETENTION),
            Stage("archived", "Archived", Phase.ENDED),
        ),
        initial="active",
        transitions=(
            Transition("active", "archived", guards=(nothing_open,)),
            Transition("archived", "active"),
        ),
    ),
)


@hookimpl
def crmgraph_customer_types() -> list[CustomerType]:
    return [AGENDA]
