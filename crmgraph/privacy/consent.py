"""Consent to be contacted, per channel and purpose, by a customer or one of
its contacts: recorded as grants and withdrawals (``consent_change``, never
updated), the newest per (customer, contact, channel, purpose) in force.

Outbound marketing needs consent: :func:`marketing_refusal` is what
``logInteraction`` asks before writing an ``OUTBOUND`` interaction whose
purpose is ``MARKETING``. The most specific statement decides: the contact's
own, when the interaction names a contact that made one, else the
customer's. No statement at all means no consent.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from crmgraph.db import writes
from crmgraph.db.engine import Database
from crmgraph.ids import encode_id
from crmgraph.validation import Problem

MARKETING = "MARKETING"
SERVICE = "SERVICE"
PURPOSES = (MARKETING, SERVICE)
OUTBOUND = "OUTBOUND"
SOURCES = ("WEB_FORM", "EMAIL", "PHONE", "IN_PERSON", "PAPER", "IMPORT", "API", "OTHER")


@dataclass(frozen=True)
class ConsentStatement:
    customer: int
    contact: int | None
    channel: str
    purpose: str
    granted: bool
    source: str
    evidence: str | None
    at: datetime.datetime


def in_force(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The newest row per (customer, contact, channel, purpose), in id order."""
    latest: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in sorted(rows, key=lambda r: r["id"]):
        latest[(row["customer"], row["contact"], row["channel"], row["purpose"])] = row
    return sorted(latest.values(), key=lambda r: r["id"])


async def record(db: Database, statement: ConsentStatement) -> int:
    """Write a grant or withdrawal, its audit entry and a ``consent.changed``
    event, in the caller's transaction; the new row's id."""
    values = {
        "customer": statement.customer,
        "contact": statement.contact,
        "channel": statement.channel,
        "purpose": statement.purpose,
        "granted": statement.granted,
        "source": statement.source,
        "evidence": statement.evidence,
        "at": statement.at,
        "recorded_by": writes.current_actor.get(),
    }
    pk = await writes.insert(db, "consent_change", values)
    contact_id = encode_id("Contact", statement.contact) if statement.contact else None
    facts = {
        "contactId": contact_id,
        "channel": statement.channel,
        "purpose": statement.purpose,
        "granted": statement.granted,
        "source": statement.source,
    }
    await writes.record_change(
        db,
        "consent.changed",
        ("ConsentChange", pk),
        statement.customer,
        writes.field_changes(None, {**facts, "evidence": statement.evidence}),
        {
            "customerId": encode_id("Customer", statement.customer),
            "consentId": encode_id("ConsentChange", pk),
            **facts,
            "at": writes.jsonable(statement.at),
        },
    )
    return pk


async def marketing_refusal(
    db: Database, customer: int, contact: int | None, channel: str
) -> Problem | None:
    """Why outbound marketing to ``customer`` (through ``contact``) on
    ``channel`` may not happen now, or None when consent is in force."""
    rows = await db.fetch(
        "SELECT id, customer, contact, channel, purpose, granted, at FROM consent_change "
        "WHERE customer = {} AND channel = {} AND purpose = {} ORDER BY id",
        customer,
        channel,
        MARKETING,
    )
    current = {row["contact"]: row for row in in_force(rows)}
    decisive = current.get(contact) if contact is not None else None
    decisive = decisive or current.get(None)
    if decisive is not None and bool(decisive["granted"]):
        return None
    whose = "the contact" if contact is not None and contact in current else "the customer"
    if decisive is None:
        detail = f"{whose} has not consented to {channel} marketing"
    else:
        detail = (
            f"{whose} withdrew consent to {channel} marketing on {writes.jsonable(decisive['at'])}"
        )
    return Problem(
        "purpose",
        f"{detail}: record a grant (recordConsent) before logging outbound marketing "
        "on this channel",
        "NO_CONSENT",
    )
