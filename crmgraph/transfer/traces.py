"""What an import leaves beside its rows: an audit entry and an outbox event
per row written, as the single mutation would (the audit trail is read per
record, and event handlers, subscribers and webhooks act per record), with
``"source": "import"`` in every event. Two multi-row INSERTs per batch."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from crmgraph.db import writes
from crmgraph.db.bulk import insert_rows
from crmgraph.db.engine import Database


@dataclass(frozen=True)
class Trace:
    entity_id: int
    customer_id: int
    changes: dict[str, list[Any]]  # as writes.field_changes gives them
    payload: dict[str, Any]  # the event's, as the mutation sends it


async def record(
    db: Database,
    actor: int | None,
    action: str,
    entity_type: str,
    traces: Sequence[Trace],
    at: datetime.datetime,
) -> None:
    """An audit entry and an outbox event (type ``action``) per trace."""
    await insert_rows(
        db,
        "audit_entry",
        [
            {"at": at, "by": actor, "action": action, "entity_type": entity_type,
             "entity_id": t.entity_id, "customer": t.customer_id,
             "changes": writes.dump_json(t.changes)}
            for t in traces
        ],
        returning=False,
    )  # fmt: skip
    await insert_rows(
        db,
        "event",
        [
            {
                "type": action,
                "customer": t.customer_id,
                "payload": writes.dump_json(
                    {**t.payload, "source": "import", "at": at.isoformat()}
                ),
                "created_at": at,
            }
            for t in traces
        ],
        returning=False,
    )
