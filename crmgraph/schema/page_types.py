"""The Relay page types of a list whose node type is built per schema:
``<Name>Edge`` (a cursor and a node) and ``<Name>Connection`` (its edges,
their nodes and the page's information); and a page of such a list made
from the rows read for it.

No ``from __future__ import annotations``: strawberry reads the annotations
of the classes built here around the node type given."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import strawberry

from crmgraph.schema.pagination import (
    CURSOR,
    EDGES,
    NODE,
    NODES,
    PAGE_INFO,
    PageInfo,
    page_info,
)

Row = dict[str, Any]


@dataclass(frozen=True)
class PageTypes:
    """A list's edge type and connection type."""

    edge: type
    connection: type


def page_types(name: str, node_type: type) -> PageTypes:
    """``<name>Edge`` and ``<name>Connection`` listing ``node_type``."""

    @strawberry.type(
        name=f"{name}Edge", description=f"One {node_type.__name__} of a page and its cursor."
    )
    class Edge:
        cursor: str = strawberry.field(description=CURSOR)
        node: node_type = strawberry.field(description=NODE)  # type: ignore[valid-type]

    @strawberry.type(
        name=f"{name}Connection",
        description=f"A page of {node_type.__name__} items, in keyset order.",
    )
    class Connection:
        edges: list[Edge] = strawberry.field(description=EDGES)
        page_info: PageInfo = strawberry.field(description=PAGE_INFO)

        @strawberry.field(description=NODES)
        def nodes(self) -> list[node_type]:  # type: ignore[valid-type]
            return [edge.node for edge in self.edges]

    return PageTypes(Edge, Connection)


def page_of(
    edge: Callable[..., Any],
    connection: Callable[..., Any],
    rows: Sequence[Row],
    limit: int,
    after: str | None,
    cursor: Callable[[Row], str],
    node: Callable[[Row], Any],
    **extra: Any,
) -> Any:
    """The ``connection`` (with ``extra`` fields) of the first ``limit`` of
    ``rows``, each an ``edge`` of its ``cursor`` and ``node``: one row more
    was read, to tell whether a next page follows."""
    edges = [edge(cursor=cursor(row), node=node(row)) for row in rows[:limit]]
    return connection(edges=edges, page_info=page_info(edges, len(rows) > limit, after), **extra)
