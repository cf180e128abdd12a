"""One customer field's values over time (``Customer.fieldHistory``), read
from the audit trail as :mod:`crmgraph.operations.history` reads it for a
moment: each value with when it was set and until when, by whom and by which
write; a value held before the trail began (a seeded or older record) since
the record's creation; an erased customer's personal values as erased."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from crmgraph.db import queries, writes
from crmgraph.db.engine import Database
from crmgraph.operations.history import CUSTOMER_COLUMNS, UNKNOWN, Entity, load_trail, moment
from crmgraph.privacy import ERASED_NAME
from crmgraph.privacy.scrub import NON_PERSONAL
from crmgraph.validation import camel

# the core Customer fields fieldHistory answers, as the audit trail names them
HISTORY_FIELDS = (*(camel(c) for c in CUSTOMER_COLUMNS), "stage")


@dataclass(frozen=True)
class FieldValue:
    """A value a field held from ``since`` until ``until`` (None: still),
    set by ``action`` (None: before the trail began, a seeded or older record)."""

    value: Any
    since: datetime.datetime
    until: datetime.datetime | None
    by: int | None
    action: str | None


def present_value(row: dict[str, Any], path: str) -> Any:
    """The value a customer row holds now for an audit trail field name."""
    kind, _, attribute = path.partition(".")
    if not attribute:
        column = {camel(c): c for c in (*CUSTOMER_COLUMNS, "stage")}[path]
        return writes.jsonable(row[column])
    if kind != camel(row["kind"]):
        return None
    found = {camel(k): v for k, v in queries.load_json(row["attributes"]).items()}
    return found.get(attribute)


async def field_history(db: Database, pk: int, path: str) -> list[FieldValue]:
    """Every value the customer's field ``path`` (as the audit trail names it)
    held, oldest first; an erased customer's personal values read as erased."""
    trail = await load_trail(db, pk)
    if trail is None:
        return []
    now = trail.customers[pk]
    changes = trail.entities.get(("Customer", pk), Entity()).fields.get(path, [])
    present = present_value(now, path)
    spans = [(c.new, c.at, c.by, c.action) for c in changes]
    first = changes[0].old if changes else present
    earlier = int(first is not None)
    if earlier:  # held before its first entry: since the record was created
        spans.insert(0, (first, moment(now["created_at"]), None, None))
    values = []
    for i, (value, since, by, action) in enumerate(spans):
        until = spans[i + 1][1] if i + 1 < len(spans) else None
        if value is UNKNOWN:  # after a conversion: what the next change started from
            following = i - earlier + 1
            value = changes[following].old if following < len(changes) else present
        if now["erased_at"] is not None and path not in NON_PERSONAL | {"erasedAt"}:
            value = ERASED_NAME if path == "name" else None
        values.append(FieldValue(value, since, until, by, action))  # type: ignore[arg-type]
    return values
