"""A plugin declaring a second GraphQL type named ``Client``."""

from __future__ import annotations

from crmgraph.customer_types import CustomerType, Lifecycle, Phase, Stage
from crmgraph.hookspecs import hookimpl


@hookimpl
def crmgraph_customer_types() -> list[CustomerType]:
    return [
        CustomerType(
            key="second_client",
            graphql_name="Client",
            description="Clashes with the built-in client.",
            lifecycle=Lifecycle(stages=(Stage("new", "New", Phase.ENGAGEMENT),), initial="new"),
        )
    ]
