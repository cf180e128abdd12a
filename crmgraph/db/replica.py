"""Which reads may go to the read replica (``CRMGRAPH_DATABASE_READ_URL``).

A replica lags the primary, so only a read that needs no read-your-write
may go there. The rule, in one place: a read goes to the replica when the
GraphQL *query* operation of an HTTP request runs it (the compiled reads
and the read-only statements its resolvers send outside a transaction),
unless the client asked for the primary with ``X-CRMGraph-Read: primary``.
Everything else reads the primary: mutations and their payloads, whatever
runs in a transaction, subscriptions and live queries, the event
dispatcher and webhooks, authentication, background loops, the CLI.

The operation's reach is a context variable: set by whoever starts a query
operation (:func:`replica_reads`), read by :class:`crmgraph.db.engine.Database`
before each statement. A statement goes to the replica only if it reads
(it starts with SELECT or WITH, changes no rows, locks none and calls
no function with an effect), so a
resolver that writes outside a transaction still writes to the primary.
"""

from __future__ import annotations

import contextlib
import contextvars
import re
from collections.abc import Iterable, Iterator

from crmgraph.db.write_batch import CHANGES_ROWS

# the header a client sends to read its own writes: ``X-CRMGraph-Read: primary``
READ_HEADER = "x-crmgraph-read"
PRIMARY = "primary"

_allowed: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "crmgraph_replica_reads", default=False
)

_READS = re.compile(r"^\s*(SELECT|WITH)\b", re.IGNORECASE)
_LOCKS = re.compile(r"\bFOR\s+(UPDATE|SHARE|NO\s+KEY\s+UPDATE|KEY\s+SHARE)\b", re.IGNORECASE)
# functions a hot standby refuses or whose effect belongs on the primary
_EFFECTS = re.compile(r"\b(nextval|setval|pg_advisory\w*|set_config|pg_notify)\s*\(", re.IGNORECASE)


def wants_primary(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    """The client asked to read the primary (raw ASGI headers)."""
    name = READ_HEADER.encode()
    return any(k == name and v.strip().lower() == PRIMARY.encode() for k, v in headers)


@contextlib.contextmanager
def replica_reads(allowed: bool = True) -> Iterator[None]:
    """Within the block, reads outside a transaction may go to the replica."""
    token = _allowed.set(allowed)
    try:
        yield
    finally:
        _allowed.reset(token)


def may_use_replica() -> bool:
    return _allowed.get()


def only_reads(sql: str) -> bool:
    """A statement that changes no rows and takes no row locks."""
    return bool(_READS.match(sql)) and not any(
        pattern.search(sql) for pattern in (CHANGES_ROWS, _LOCKS, _EFFECTS)
    )
