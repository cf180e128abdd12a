"""Keyset pagination in GraphQL: the Relay page types and the generic
connection plugins build their lists with (:func:`keyset_connection`). The
cursors and page-size limits are crmgraph.paging's, shared with the compiled
reads (and importable from here as before)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Annotated, Any, Generic, TypeVar

import strawberry

from crmgraph.paging import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    check_first,
    decode_cursor,
    encode_cursor,
)

if TYPE_CHECKING:
    from crmgraph.db.engine import Database

T = TypeVar("T")

# The page arguments of every list, described once (the type is unchanged).
First = Annotated[
    int | None,
    strawberry.argument(
        description="How many items to return, 0 to CRMGRAPH_MAX_PAGE_SIZE (100 by default; "
        "more is refused: PAGE_SIZE_OUT_OF_RANGE); null: CRMGRAPH_DEFAULT_PAGE_SIZE (20)."
    ),
]
After = Annotated[
    str | None,
    strawberry.argument(
        description="Start after this cursor (the previous page's `pageInfo.endCursor`); "
        "null: from the start."
    ),
]


@strawberry.type(description="Relay page information for forward pagination.")
class PageInfo:
    has_next_page: bool = strawberry.field(
        description="More items follow: ask again with `after: endCursor`."
    )
    has_previous_page: bool = strawberry.field(
        description="Items come before this page (true whenever `after` was given)."
    )
    start_cursor: str | None = strawberry.field(
        description="The cursor of the page's first item; null: the page is empty."
    )
    end_cursor: str | None = strawberry.field(
        description="The cursor of the page's last item, to pass as `after`; null: the "
        "page is empty."
    )


def page_info(edges: Sequence[Any], has_next_page: bool, after: str | None) -> PageInfo:
    """Forward pagination only: a previous page is assumed when a cursor was given."""
    return PageInfo(
        has_next_page=has_next_page,
        has_previous_page=after is not None,
        start_cursor=edges[0].cursor if edges else None,
        end_cursor=edges[-1].cursor if edges else None,
    )


CURSOR = "Opaque position of this item: pass it as `after` to read the items that follow."
NODE = "The item."
EDGES = "The page's items, each with its cursor."
NODES = "The page's items without their cursors (the edges' nodes)."
PAGE_INFO = "Whether more items follow, and the cursors to ask for them."


@strawberry.type(description="One item of a page and its cursor (pass it as `after`).")
class Edge(Generic[T]):
    cursor: str = strawberry.field(description=CURSOR)
    node: T = strawberry.field(description=NODE)


@strawberry.type(description="A page of a list, in keyset order, with Relay page information.")
class Connection(Generic[T]):
    edges: list[Edge[T]] = strawberry.field(description=EDGES)
    page_info: PageInfo = strawberry.field(description=PAGE_INFO)


async def keyset_connection(
    db: Database,
    *,
    select: str,
    scope: str,
    node: Callable[[dict[str, Any]], T],
    first: int | None,
    after: str | None,
    where: str = "1 = 1",
    args: Sequence[Any] = (),
    key: str = "id",
    default_first: int = DEFAULT_PAGE_SIZE,
    max_first: int = MAX_PAGE_SIZE,
) -> Connection[T]:
    """One page of ``select`` (``SELECT … FROM …``, selecting an ``id``
    column) filtered by ``where`` (piccolo ``{}`` placeholders, ``args``), in
    the order of ``key`` (the ``id`` column, qualified if joined): the first
    ``first`` rows (at most ``max_first``; the core's own lists use the same
    rule) after the cursor ``after``, each turned into a node by ``node``.
    ``scope`` names the list in its cursors, so a cursor of another list is
    refused (``INVALID_CURSOR``) rather than misread. Row scope is the
    caller's to put in ``where`` (or to check in ``node``)."""
    size = check_first(first, default_first, max_first)
    after_pk = decode_cursor(after, scope, timestamp=False)[1] if after is not None else 0
    rows = await db.fetch(
        f"{select} WHERE ({where}) AND {key} > {{}} ORDER BY {key} LIMIT {{}}",
        *args,
        after_pk,
        size + 1,
    )
    edges = [
        Edge(cursor=encode_cursor(scope, None, row["id"]), node=node(row)) for row in rows[:size]
    ]
    return Connection(edges=edges, page_info=page_info(edges, len(rows) > size, after))
