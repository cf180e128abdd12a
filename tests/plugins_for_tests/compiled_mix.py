"""Root query fields computed in Python, for the compiled read path's mixed
queries: one returning customers (through ``types.customer``), one refusing
with an error (nullable, so the error nulls only itself).

No ``from __future__ import annotations``: strawberry reads the annotations.
"""

from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.types import Info

from crmgraph.db import queries
from crmgraph.extension_points import GraphQLContribution
from crmgraph.hookspecs import hookimpl


@hookimpl
def crmgraph_graphql(types: Any) -> GraphQLContribution:
    Customer = types.customer_interface

    @strawberry.type
    class MixQuery:
        @strawberry.field(description="The caller's visible customers with the longest names.")
        async def mix_longest_names(self, info: Info, first: int = 3) -> list[Customer]:  # type: ignore[valid-type]
            q = queries.CustomerQuery(
                kinds=tuple(types.customer_classes), scope=info.context.access.scope
            )
            rows = await queries.list_customers(info.context.db, q, "NAME", False, 200, None)
            rows.sort(key=lambda row: (-len(row["name"]), row["id"]))
            return [types.customer(row) for row in rows[:first]]

        @strawberry.field(description="Always refused, with an error of its own.")
        def mix_refusal(self) -> str | None:
            raise GraphQLError("mixRefusal is always refused", extensions={"code": "MIX"})

    return GraphQLContribution(query=[MixQuery])
