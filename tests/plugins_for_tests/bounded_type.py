"""A customer type whose number attributes have bounds of every kind, for
tests/test_attribute_bounds.py: float bounds on float and Decimal attributes,
Decimal bounds, an int attribute with a bound between two whole numbers, and
a bound too small for ``repr`` to spell without an exponent."""

from __future__ import annotations

from decimal import Decimal

from crmgraph.customer_types import Attribute, CustomerType, Lifecycle, Phase, Stage
from crmgraph.hookspecs import hookimpl

LAB_SAMPLE = CustomerType(
    key="lab_sample",
    graphql_name="LabSample",
    description="A laboratory that sends samples: numbers with exact bounds.",
    attributes=(
        Attribute("ratio", float, "A float between float bounds.", min_value=0.1, max_value=0.3),
        Attribute(
            "concentration",
            Decimal,
            "A Decimal between a Decimal and a float bound.",
            min_value=Decimal("0.1"),
            max_value=0.3,
        ),
        Attribute(
            "share",
            Decimal,
            "A Decimal between float and Decimal bounds.",
            min_value=0.1,
            max_value=Decimal("0.3"),
        ),
        Attribute(
            "batches", int, "Whole numbers from 2 to 3.", min_value=Decimal("1.5"), max_value=3.0
        ),
        Attribute("trace", Decimal, "At least a tenth of a millionth.", min_value=1e-7),
        Attribute("loss", float, "At most a third of a unit, below zero too.", max_value=0.333),
    ),
    lifecycle=Lifecycle(stages=(Stage("active", "Active", Phase.RETENTION),), initial="active"),
)


@hookimpl
def crmgraph_customer_types() -> list[CustomerType]:
    return [LAB_SAMPLE]
