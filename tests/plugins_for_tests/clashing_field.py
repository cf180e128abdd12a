"""A plugin contributing ``Query.customers``, which the core already defines.

No ``from __future__ import annotations``: strawberry reads the annotations."""

import strawberry

from crmgraph.extension_points import GraphQLContribution
from crmgraph.hookspecs import hookimpl


@strawberry.type
class TakesCustomers:
    @strawberry.field
    def customers(self) -> int:
        return 0


@hookimpl
def crmgraph_graphql(types: object) -> GraphQLContribution:
    return GraphQLContribution(query=[TakesCustomers])
