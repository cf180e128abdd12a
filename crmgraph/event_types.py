"""Plugin-defined events: the naming rules and :func:`emit`, the public way
for a plugin to write its own event into the outbox.

An emitted event is a row of the same outbox the core writes, in the caller's
transaction: it commits or rolls back with the plugin's change, and from then
on it travels like any core event (event handlers, ``customerEvents``
subscriptions, webhooks). Kept apart from :mod:`crmgraph.events` (which
re-exports ``emit``) so the lifecycle engine can offer it on its context
without importing the dispatcher.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from crmgraph.db import writes
from crmgraph.db.engine import Database

# Lower-case dotted names of at least two parts: ``<namespace>.<what happened>``.
EVENT_TYPE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
MAX_EVENT_TYPE_LENGTH = 100  # the event.type column

# The core's namespaces: a plugin event in one of them would be mistaken for
# (and documented as) a core event, so plugins name their own namespace.
RESERVED_NAMESPACES = frozenset(
    {
        "audit",
        "consent",
        "contact",
        "crmgraph",
        "customer",
        "interaction",
        "need",
        "note",
        "relationship",
        "stage",
        "task",
        "team",
        "user",
        "webhook",
    }
)


class EventTypeError(ValueError):
    """A plugin tried to emit an event under a name it may not use."""


def check_plugin_event_type(event_type: str) -> None:
    """Raise :class:`EventTypeError` unless ``event_type`` is a name a plugin may emit."""
    if len(event_type) > MAX_EVENT_TYPE_LENGTH or not EVENT_TYPE.match(event_type):
        raise EventTypeError(
            f"{event_type!r} is not a plugin event type: use lower-case dotted names "
            f"of at most {MAX_EVENT_TYPE_LENGTH} characters, namespaced by the plugin "
            "(e.g. 'loyalty.points_awarded')"
        )
    namespace = event_type.partition(".")[0]
    if namespace in RESERVED_NAMESPACES:
        raise EventTypeError(
            f"{event_type!r}: the namespace {namespace!r} is crmgraph's own; "
            "name your plugin's events under a namespace of its own"
        )


async def emit(
    db: Database, event_type: str, customer_id: int | None, payload: Mapping[str, Any]
) -> None:
    """Write a plugin event into the outbox, in the caller's transaction.

    ``customer_id`` is the customer's primary key (``ctx.customer.pk``), or
    ``None`` for an event about no customer (those reach handlers and webhooks
    but not ``customerEvents`` subscriptions, which are per customer).
    ``payload`` must be JSON-serialisable; an ``at`` key (the time written) is
    added. Raises :class:`EventTypeError` for a name a plugin may not use and
    ``RuntimeError`` outside a transaction, where the event could outlive a
    change that fails or exist without it.
    """
    check_plugin_write(db, "emit", event_type)
    await writes.outbox(db, event_type, customer_id, dict(payload))


def check_plugin_write(db: Database, helper: str, event_type: str) -> None:
    """A plugin's trace must be named under its own namespace and written in
    the change's transaction, where it commits or rolls back with it."""
    check_plugin_event_type(event_type)
    if not db.engine.transaction_exists():
        raise RuntimeError(
            f"{helper}({event_type!r}) must run inside the write's transaction "
            "(a hook that runs in one, run_mutation, or `async with db.transaction():`)"
        )


async def record_change(
    db: Database,
    event_type: str,
    entity: tuple[str, int],
    customer_id: int | None,
    changes: Mapping[str, list[Any]],
    payload: Mapping[str, Any],
) -> None:
    """The two traces every core write leaves, for a plugin's mutation: an
    audit entry (``action`` = ``event_type``; ``entity`` = (type name, primary
    key); ``changes`` = ``{field: [old, new]}``; by the caller of the
    mutation run by ``run_mutation``) and the outbox event ``event_type`` with
    ``payload``, both in the caller's transaction (the core's own
    ``writes.record_change``). The audit entry appears in the customer's
    ``auditTrail`` and, being a write to the customer, makes a merge of it
    no longer undoable, as a core write does. Same naming rules and
    transaction check as :func:`emit`."""
    check_plugin_write(db, "record_change", event_type)
    await writes.record_change(db, event_type, entity, customer_id, dict(changes), dict(payload))
