"""Reviewed pairs that are two parties: ``duplicate_dismissal`` (migration 0023).

A person who finds that two customers listed as likely duplicates are not
the same party dismisses the pair; ``duplicates`` and
``duplicateCandidates`` then leave it out. The dismissal is its own row,
not a mark on ``duplicate_pair`` (which every key refresh rewrites), so it
outlives any later write to either customer; ``restore_pair`` takes it back.
Both run in the caller's transaction and write an audit entry on each
customer (who and when; the reason in the changes).

Merges: a dismissal stays with the two records it names. When one of them is
merged away it has no keys and so no pairs, and the dismissal lies idle; an
undo of that merge brings the pair back dismissed. The survivor is not taken
to inherit it: its fields are a new combination of both records', which a
reviewer has not seen, so its pairs are listed and judged afresh.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from crmgraph.db import writes
from crmgraph.db.engine import Database
from crmgraph.dedupe.matching import Visible
from crmgraph.ids import encode_id
from crmgraph.validation import UserInputError

DISMISSED = "duplicate.dismissed"
RESTORED = "duplicate.restored"
REASON_LENGTH = 2000


@dataclass(frozen=True)
class PairRequest:
    customer_id: int
    other_id: int


def _ends(request: PairRequest) -> tuple[int, int]:
    if request.customer_id == request.other_id:
        raise UserInputError.single(
            "otherId", "a customer cannot be its own duplicate", "SAME_CUSTOMER"
        )
    left, right = sorted((request.customer_id, request.other_id))
    return left, right


async def _customers(db: Database, request: PairRequest, sees: Visible, *, live: bool) -> None:
    """Both customers exist and the caller sees them (and, to dismiss, they
    are live: a deleted, merged or erased customer has no pairs to dismiss)."""
    await writes.lock_parties(db, [request.customer_id, request.other_id])  # in id order
    check = writes.live_customer if live else writes.visible_customer
    await check(db, request.customer_id, "customerId", sees)
    await check(db, request.other_id, "otherId", sees)


async def dismiss_pair(
    db: Database, request: PairRequest, reason: str | None, sees: Visible
) -> dict[str, Any]:
    """Mark the pair as two parties; the dismissal's row. Refused for one
    customer twice (SAME_CUSTOMER), a customer not found (NOT_FOUND) or not live, and
    a pair already dismissed (ALREADY_DISMISSED)."""
    left, right = _ends(request)
    await _customers(db, request, sees, live=True)
    row = {
        "customer_a": left,
        "customer_b": right,
        "reason": reason,
        "dismissed_by": writes.current_actor.get(),
        "dismissed_at": writes.now(),
    }
    inserted = await db.fetch(
        "INSERT INTO duplicate_dismissal (customer_a, customer_b, reason, dismissed_by, "
        "dismissed_at) VALUES ({}, {}, {}, {}, {}) ON CONFLICT DO NOTHING "
        "RETURNING customer_a",
        *row.values(),
    )
    if not inserted:
        raise UserInputError.single(
            "otherId", "this pair is already dismissed", "ALREADY_DISMISSED"
        )
    await _audit(db, DISMISSED, left, right, {"reason": [None, reason]})
    return row


async def restore_pair(db: Database, request: PairRequest, sees: Visible) -> None:
    """Take a dismissal back: the pair is listed again while it scores.
    Refused as for :func:`dismiss_pair`, and NOT_DISMISSED."""
    left, right = _ends(request)
    await _customers(db, request, sees, live=False)
    gone = await db.fetch(
        "DELETE FROM duplicate_dismissal WHERE customer_a = {} AND customer_b = {} "
        "RETURNING reason",
        left,
        right,
    )
    if not gone:
        raise UserInputError.single("otherId", "this pair is not dismissed", "NOT_DISMISSED")
    await _audit(db, RESTORED, left, right, {"reason": [gone[0]["reason"], None]})


async def _audit(
    db: Database, action: str, left: int, right: int, changes: dict[str, list[Any]]
) -> None:
    for pk, other in ((left, right), (right, left)):
        await writes.audit(
            db,
            action,
            "Customer",
            pk,
            pk,
            {"dismissedWith": [None, encode_id("Customer", other)], **changes}
            if action == DISMISSED
            else {"dismissedWith": [encode_id("Customer", other), None], **changes},
        )


async def dismissed_with(db: Database, customer_ids: Sequence[int]) -> set[int]:
    """The customers any of these was dismissed with (one statement)."""
    if not customer_ids:
        return set()
    marks = ", ".join("{}" for _ in customer_ids)
    rows = await db.fetch(
        f"SELECT customer_b AS other FROM duplicate_dismissal WHERE customer_a IN ({marks}) "
        f"UNION SELECT customer_a FROM duplicate_dismissal WHERE customer_b IN ({marks})",
        *customer_ids,
        *customer_ids,
    )
    return {row["other"] for row in rows}
