"""Personal data rights as operations: record a consent statement, erase a
customer's personal data, and export everything about a party. The work on
the tables is :mod:`crmgraph.privacy`'s; these hold the input checks, the
permission and row scope, and the transaction."""

from __future__ import annotations

import datetime
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pluggy

from crmgraph import validation as v
from crmgraph.access import CUSTOMER_WRITE, PRIVACY_ERASE, PRIVACY_EXPORT, forbidden
from crmgraph.db import writes
from crmgraph.db.engine import Database
from crmgraph.ids import InvalidId, decode_id
from crmgraph.operations.actor import Actor
from crmgraph.operations.customer_checks import hold_live
from crmgraph.operations.runner import Then, nothing, run_write
from crmgraph.privacy import consent, erasure, export
from crmgraph.registry import Catalog
from crmgraph.validation import Errors, Problem

# how far ahead of the server's clock a statement's time may be (clock skew)
FUTURE_SLACK = datetime.timedelta(minutes=5)


@dataclass
class NewConsent:
    """A grant (``granted``) or withdrawal of consent by customer
    ``customer`` or its contact ``contact``; ``at`` None: now."""

    customer: int
    contact: int | None
    channel: str
    purpose: str
    granted: bool
    source: str
    evidence: str | None = None
    at: datetime.datetime | None = None
    problems: Sequence[Problem] = ()


@dataclass
class ErasureRequest:
    """Erase customer ``customer`` (and every customer merged into it)."""

    customer: int
    reason: str | None
    problems: Sequence[Problem] = ()


async def record_consent(
    db: Database,
    catalog: Catalog,
    pm: pluggy.PluginManager,
    actor: Actor,
    new: NewConsent,
    *,
    then: Then = nothing,
) -> int:
    """Record a consent statement (needs customer.write); returns its pk."""
    errors = Errors(list(new.problems))
    evidence = v.text(errors, "evidence", new.evidence, max_length=500)
    now = writes.now()
    at = v.utc(new.at) or now
    if at > now + FUTURE_SLACK:
        errors.add("at", "a consent cannot be stated in the future", "OUT_OF_RANGE")

    async def work() -> int:
        await hold_live(db, actor, new.customer, "customerId")
        if new.contact is not None:
            await writes.contact_of(db, new.contact, new.customer)
        pk = await consent.record(
            db,
            consent.ConsentStatement(
                new.customer,
                new.contact,
                new.channel,
                new.purpose,
                new.granted,
                new.source,
                evidence,
                at,
            ),
        )
        return pk

    return await run_write(
        db, actor, work, then, problems=errors.problems, permission=CUSTOMER_WRITE
    )


async def erase_personal_data(
    db: Database,
    catalog: Catalog,
    pm: pluggy.PluginManager,
    actor: Actor,
    request: ErasureRequest,
    *,
    then: Then = nothing,
) -> int:
    """Erase a customer's personal data for good (needs privacy.erase);
    returns the erasure's pk (:func:`erasure_record` reads it)."""
    errors = Errors(list(request.problems))
    reason = v.text(errors, "reason", request.reason, max_length=2000, required=True)

    async def work() -> int:
        done = await erasure.erase_personal_data(
            db, pm, request.customer, reason or "", actor.sees, actor.user_id
        )
        return done.id

    return await run_write(
        db, actor, work, then, problems=errors.problems, permission=PRIVACY_ERASE
    )


async def erasure_record(db: Database, pk: int) -> dict[str, Any]:
    """Erasure ``pk``'s row: who, when, why and how many rows, never the values."""
    (row,) = await db.fetch("SELECT * FROM customer_erasure WHERE id = {}", pk)
    return row


CustomerLoad = Callable[[int], Awaitable[dict[str, Any] | None]]


async def personal_data_export(
    db: Database, pm: pluggy.PluginManager, actor: Actor, customer_id: str, load: CustomerLoad
) -> dict[str, Any] | None:
    """Everything about the party customer ``customer_id`` (a global ID; a
    merged customer's stands for its survivor) stands for, as one document.
    An actor without privacy.export is refused (a FORBIDDEN GraphQL error);
    None for an ID that is not valid or a customer the actor may not see.
    ``load`` reads a customer row by pk (the request's DataLoader)."""
    if not actor.can(PRIVACY_EXPORT):
        raise forbidden(PRIVACY_EXPORT, "export personal data")
    try:
        _, pk = decode_id(customer_id, "Customer")
    except InvalidId:
        return None
    row = await writes.survivor(await load(pk), load)
    if row is None or not actor.sees(row):
        return None
    return await export.export_document(db, pm, row["id"])
