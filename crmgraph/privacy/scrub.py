"""Erasing personal values from the copies crmgraph keeps of them: audit
trail changes, outbox event payloads, merge before-images, and text that
quotes a value verbatim (stored responses, delivery logs).

Audit entries and events are kept (that a change happened, when, by whom,
to which fields, and the non-personal facts: stages, amounts, channels,
dates, ids). A value is kept only under a name known to hold no personal
data (:data:`NON_PERSONAL`, or a reference holding global IDs); anything
else, a plugin's fields and every typed attribute included, becomes
:data:`~crmgraph.privacy.ERASED`: what is not known to be harmless is
erased. Stored copies that quote a value verbatim are deleted
(:func:`delete_mentioning`).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from crmgraph.db import queries
from crmgraph.db.engine import Database
from crmgraph.privacy import ERASED, ERASED_NAME

# Field names (as audit entries and event payloads spell them) whose values
# are facts about the relationship, not about the person.
NON_PERSONAL = frozenset(
    {
        "amount",
        "assignee",
        "at",
        "balance",
        "by",
        "category",
        "channel",
        "completedAt",
        "consumptionType",
        "contact",
        "convertedTo",
        "createdAt",
        "deletedAt",
        "direction",
        "dueAt",
        "dueDate",
        "fields",
        "fromStage",
        "granted",
        "isPrimary",
        "kind",
        "mergeId",
        "mergedFrom",
        "mergedInto",
        "movedCounts",
        "need",
        "occurredAt",
        "outcome",
        "owner",
        "points",
        "priority",
        "purpose",
        "satisfaction",
        "source",
        "stage",
        "status",
        "team",
        "toStage",
        "unit",
        "version",
        "volume",
    }
)

# Shorter values are not searched for in free text: they would match inside
# unrelated words (and erase them), where they identify no one on their own.
MIN_SEARCHED_LENGTH = 3


GLOBAL_ID = re.compile(r"^[A-Z][A-Za-z]*:[0-9]+$")


def is_global_id(value: Any) -> bool:
    """A Relay global ID (base64 of ``Type:pk``): opaque, not personal."""
    if not isinstance(value, str):
        return False
    try:
        decoded = base64.b64decode(value, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return False
    return bool(GLOBAL_ID.match(decoded))


def kept(name: str, value: Any) -> bool:
    """Whether a value stays: a non-personal field, or references to records
    (``customerId``, ``mentionedUserIds``) that hold global IDs and nothing
    else (a ``taxId`` is no reference)."""
    if name in NON_PERSONAL:
        return True
    if not (name.endswith("Id") or name.endswith("Ids")):
        return False
    values = value if isinstance(value, list) else [value]
    return all(v is None or is_global_id(v) for v in values)


def erased(value: Any) -> Any:
    return None if value is None else ERASED


def scrub_changes(changes: Mapping[str, Any]) -> dict[str, Any]:
    """An audit entry's ``{field: [old, new]}`` with personal values erased."""
    return {
        name: pair if all(kept(name, value) for value in pair) else [erased(v) for v in pair]
        for name, pair in changes.items()
    }


def scrub_payload(payload: Mapping[str, Any]) -> dict[str, Any]:
    """An event payload with personal values erased."""
    return {name: value if kept(name, value) else erased(value) for name, value in payload.items()}


def scrub_image(image: Mapping[str, Any]) -> dict[str, Any]:
    """A merge's before-image of a customer (crmgraph.dedupe.merge), erased."""
    return {
        **image,
        "name": ERASED_NAME,
        "email": None,
        "phone": None,
        "attributes": {},
    }


def needles(values: Iterable[Any]) -> list[str]:
    """The distinct texts to look for verbatim: each value, and its spelling
    inside a JSON string where that differs (quotes, backslashes)."""
    found: set[str] = set()
    for value in values:
        if not isinstance(value, str) or len(value.strip()) < MIN_SEARCHED_LENGTH:
            continue
        found.add(value)
        found.add(orjson.dumps(value).decode()[1:-1])
    return sorted(found)


# LIKE conditions per statement: a long OR stays one scan of the table
NEEDLES_PER_STATEMENT = 50


async def delete_mentioning(db: Database, table: str, column: str, texts: Iterable[str]) -> int:
    """Delete the rows whose text column quotes any of ``texts`` (in any case); how many."""
    ordered, total = sorted(set(texts)), 0
    for start in range(0, len(ordered), NEEDLES_PER_STATEMENT):
        chunk = ordered[start : start + NEEDLES_PER_STATEMENT]
        condition = " OR ".join(f"LOWER({column}) LIKE {{}} ESCAPE '\\'" for _ in chunk)
        rows = await db.fetch(
            f"DELETE FROM {table} WHERE {condition} RETURNING id",
            *(queries.like_pattern(text) for text in chunk),
        )
        total += len(rows)
    return total
