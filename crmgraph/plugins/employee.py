"""The employee: a person working for the organisation, tracked like any party."""

from __future__ import annotations

import datetime
from decimal import Decimal

from crmgraph import (
    Attribute,
    CustomerType,
    Lifecycle,
    Permission,
    Phase,
    RelationshipKind,
    Stage,
    Transition,
    TransitionContext,
    hookimpl,
)

READ_PAY = "employee.read_pay"


def ready_to_start(ctx: TransitionContext) -> list[str]:
    reasons = []
    hire_date = ctx.customer.attributes.get("hire_date")
    if not ctx.customer.attributes.get("job_title"):
        reasons.append("becoming active needs a job title")
    if hire_date is None:
        reasons.append("becoming active needs a hire date")
    elif hire_date > datetime.date.today():
        reasons.append(f"becoming active cannot happen before the hire date ({hire_date})")
    return reasons


WORKS_FOR = RelationshipKind(
    "works_for",
    "Works for",
    description="The employee is assigned to (works on the account of) another party.",
    from_kinds=("employee",),
)

EMPLOYEE = CustomerType(
    key="employee",
    graphql_name="Employee",
    description="A person who works for the organisation.",
    relationship_kinds=("works_for",),
    attributes=(
        Attribute("job_title", str, "Position.", max_length=100),
        Attribute("department", str, "Department or team.", max_length=100),
        Attribute("hire_date", datetime.date, "First working day."),
        Attribute("salary", Decimal, "Yearly gross salary.", min_value=0, permission=READ_PAY),
        Attribute(
            "bonus_target", Decimal, "Yearly bonus target.", min_value=0, permission=READ_PAY
        ),
    ),
    lifecycle=Lifecycle(
        stages=(
            Stage("candidate", "Candidate", Phase.ENGAGEMENT),
            Stage("onboarding", "Onboarding", Phase.ACQUISITION),
            Stage("active", "Active", Phase.RETENTION),
            Stage("on_leave", "On leave", Phase.RETENTION, detour=True),
            Stage("departed", "Departed", Phase.ENDED),
        ),
        initial="candidate",
        transitions=(
            Transition("candidate", "onboarding"),
            Transition("candidate", "departed", description="Not hired."),
            Transition("onboarding", "active", guards=(ready_to_start,)),
            Transition("onboarding", "departed"),
            Transition("active", "on_leave"),
            Transition("on_leave", "active"),
            Transition("active", "departed"),
            Transition("on_leave", "departed"),
        ),
    ),
)


@hookimpl
def crmgraph_customer_types() -> list[CustomerType]:
    return [EMPLOYEE]


@hookimpl
def crmgraph_relationship_kinds() -> list[RelationshipKind]:
    return [WORKS_FOR]


@hookimpl
def crmgraph_permissions() -> list[Permission]:
    return [Permission(READ_PAY, "Read employees' salary and bonus", roles=("admin", "manager"))]
