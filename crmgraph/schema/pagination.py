"""Keyset pagination: opaque cursors and page-size limits."""

from __future__ import annotations

import base64
import binascii
import datetime
from collections.abc import Sequence
from typing import Any

import orjson
import strawberry
from graphql import GraphQLError


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
