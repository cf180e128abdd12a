"""Keyset pagination: opaque cursors and page-size limits, and the generic
Relay connection plugins build their lists with (:func:`keyset_connection`)."""

from __future__ import annotations

import base64
import binascii
import datetime
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import orjson
import strawberry
from graphql import GraphQLError

if TYPE_CHECKING:
    from crmgraph.db.engine import Database

T = TypeVar("T")

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100


@strawberry.type(description="Relay page information for forward pagination.")
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


def page_info(edges: Sequence[Any], has_next_page: bool, after: str | None) -> PageInfo:
    """Forward pagination only: a previous page is assumed when a cursor was given."""
    return PageInfo(
        has_next_page=has_next_page,
        has_previous_page=after is not None,
        start_cursor=edges[0].cursor if edges else None,
        end_cursor=edges[-1].cursor if edges else None,
    )


def check_first(first: int | None, default: int, maximum: int) -> int:
    if first is None:
        return default
    if first < 0 or first > maximum:
        raise GraphQLError(
            f"`first` must be between 0 and {maximum}, got {first}; page with `after` instead",
            extensions={"code": "PAGE_SIZE_OUT_OF_RANGE", "maximum": maximum},
        )
    return first


def encode_cursor(scope: str, value: Any, pk: int) -> str:
    if isinstance(value, datetime.datetime):
        value = value.isoformat()
    return base64.urlsafe_b64encode(orjson.dumps([scope, value, pk])).decode()


def decode_cursor(cursor: str, scope: str, timestamp: bool) -> tuple[Any, int]:
    """Cursor back to its (sort value, id). ``scope`` names the ordering it was
    made for, so a cursor from another ordering is refused, not misread."""
    try:
        got_scope, value, pk = orjson.loads(base64.urlsafe_b64decode(cursor.encode()))
        if got_scope != scope or not isinstance(pk, int):
            raise ValueError(scope)
        if timestamp:
            value = datetime.datetime.fromisoformat(value)
    except (binascii.Error, ValueError, TypeError, orjson.JSONDecodeError):
        raise GraphQLError(
            f"`after` is not a cursor of this list ({scope})",
            extensions={"code": "INVALID_CURSOR"},
        ) from None
    return value, pk


@strawberry.type(description="One item of a page and its cursor (pass it as `after`).")
class Edge(Generic[T]):
    cursor: str
    node: T


@strawberry.type(description="A page of a list, in keyset order, with Relay page information.")
class Connection(Generic[T]):
    edges: list[Edge[T]]
    page_info: PageInfo


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
