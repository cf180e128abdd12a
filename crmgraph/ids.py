"""Relay global IDs: base64 of ``Type:pk``.

Customers use ``Customer`` whatever their concrete type, so a prospect that
becomes a client keeps its ID.
"""

from __future__ import annotations

import base64
import binascii

NODE_TYPES = (
    "Customer",
    "CustomerMerge",
    "Contact",
    "Interaction",
    "Need",
    "Note",
    "Relationship",
    "StageChange",
    "Task",
    "Team",
    "User",
)


# Primary keys are SERIAL: PostgreSQL's integer. A larger number is no row, and
# the drivers refuse it (asyncpg: out of int32 range; sqlite3: over 64 bits).
MAX_PK = 2**31 - 1


class InvalidId(ValueError):
    pass


def encode_id(type_name: str, pk: int) -> str:
    return base64.b64encode(f"{type_name}:{pk}".encode()).decode()


def decode_id(global_id: str, expected: str | None = None) -> tuple[str, int]:
    """``(type, pk)`` of a global ID: of a ``node`` type, or of ``expected``
    when given (IDs that are not nodes, such as ``Webhook``, are decoded by
    naming their type)."""
    try:
        type_name, _, raw_pk = base64.b64decode(global_id, validate=True).decode().partition(":")
        pk = int(raw_pk)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidId(f"{global_id!r} is not a valid ID") from None
    # only the digits encode_id writes: int() also takes " 1", "1_0", "-1", other
    # scripts' digits and 10**30
    canonical = raw_pk.isascii() and raw_pk.isdigit() and 0 < pk <= MAX_PK
    if (type_name not in NODE_TYPES and type_name != expected) or not canonical:
        raise InvalidId(f"{global_id!r} is not a valid ID")
    if expected is not None and type_name != expected:
        raise InvalidId(f"{global_id!r} is not the ID of a {expected}")
    return type_name, pk
