"""The Relay page types of a list whose node type is built per schema:
``<Name>Edge`` (a cursor and a node) and ``<Name>Connection`` (its edges,
their nodes and the page's information).

No ``from __future__ import annotations``: strawberry reads the annotations
of the classes built here around the node type given."""

from dataclasses import dataclass

import strawberry

from crmgraph.schema.pagination import PageInfo


@dataclass(frozen=True)
class PageTypes:
    """A list's edge type and connection type."""

    edge: type
    connection: type


def page_types(name: str, node_type: type) -> PageTypes:
    """``<name>Edge`` and ``<name>Connection`` listing ``node_type``."""

    @strawberry.type(name=f"{name}Edge")
    class Edge:
        cursor: str
        node: node_type  # type: ignore[valid-type]

    @strawberry.type(name=f"{name}Connection")
    class Connection:
        edges: list[Edge]
        page_info: PageInfo

        @strawberry.field
        def nodes(self) -> list[node_type]:  # type: ignore[valid-type]
            return [edge.node for edge in self.edges]

    return PageTypes(Edge, Connection)
