"""The rules of keyset paging that the resolvers (crmgraph.schema) and the
compiled reads (crmgraph.compiled) share, so both answer a page alike: the
page-size check, opaque cursors, the sort direction and the order of the lists
below a customer. Below both layers; the Relay types are crmgraph.schema.pagination's."""

from __future__ import annotations

import base64
import binascii
import datetime
from enum import Enum
from typing import Any

import orjson
from graphql import GraphQLError

from crmgraph.settings import DEFAULTS

# the settings' defaults (CRMGRAPH_DEFAULT_PAGE_SIZE, CRMGRAPH_MAX_PAGE_SIZE): one place
DEFAULT_PAGE_SIZE = DEFAULTS.default_page_size
MAX_PAGE_SIZE = DEFAULTS.max_page_size

# How the lists below a customer are ordered, by the resolvers' loaders and the
# compiled reads alike. Contacts: the primary one, then by name as read, case and
# accents aside, the same on both engines (the folded copy of crmgraph.db.text_keys
# compares byte by byte), then as they were added.
CONTACT_ORDER = "is_primary DESC, name_folded, id"
NEED_ORDER = "created_at DESC, id DESC"
STAGE_HISTORY_ORDER = "at, id"


# a list's direction; crmgraph.schema.core_types makes it the GraphQL enum of that name
class SortDirection(Enum):
    ASC = "ASC"
    DESC = "DESC"


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
