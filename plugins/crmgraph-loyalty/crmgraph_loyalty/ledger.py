"""Loyalty points in SQL, shared by the hooks and the GraphQL resolvers.

Portable SQL with piccolo ``{}`` placeholders: the same statements run on
SQLite and PostgreSQL (both have ``ON CONFLICT … DO UPDATE`` and ``RETURNING``).
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any, Protocol

from crmgraph import encode_id, record_change

if TYPE_CHECKING:
    from crmgraph import Database

# The permission awardLoyaltyPoints needs (declared through crmgraph_permissions).
AWARD_POINTS = "loyalty.award_points"
WELCOME_BONUS = 50
# The plugin's own events (namespaced "loyalty."; crmgraph reserves its own namespaces).
POINTS_AWARDED = "loyalty.points_awarded"
ACCOUNT_OPENED = "loyalty.account_opened"
LOYAL_THRESHOLD = 100
MAX_AWARD = 10_000

# Lowest balance of each tier, highest first.
TIERS: tuple[tuple[int, str], ...] = ((2000, "GOLD"), (500, "SILVER"), (0, "BRONZE"))


class Fetches(Protocol):
    """Anything with crmgraph's ``fetch`` (a ``Database``, or ``Facts`` in a guard)."""

    async def fetch(self, sql: str, *args: Any) -> list[dict[str, Any]]: ...


def tier_for(points: int) -> str:
    return next(name for floor, name in TIERS if points >= floor)


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


async def account(db: Fetches, customer_pk: int) -> dict[str, Any] | None:
    rows = await db.fetch(
        "SELECT id, customer_id, points, tier, updated_at FROM loyalty_account "
        "WHERE customer_id = {}",
        customer_pk,
    )
    return rows[0] if rows else None


async def points(db: Fetches, customer_pk: int) -> int:
    found = await account(db, customer_pk)
    return int(found["points"]) if found else 0


async def open_account(db: Fetches, customer_pk: int, bonus: int = WELCOME_BONUS) -> bool:
    """Open an account with ``bonus`` points unless one exists; True if opened."""
    rows = await db.fetch(
        "INSERT INTO loyalty_account (customer_id, points, tier, updated_at) "
        "VALUES ({}, {}, {}, {}) ON CONFLICT (customer_id) DO NOTHING RETURNING id",
        customer_pk,
        bonus,
        tier_for(bonus),
        now(),
    )
    return bool(rows)


async def award(db: Fetches, customer_pk: int, amount: int) -> dict[str, Any]:
    """Add points (opening the account if needed) and re-tier; call inside a
    transaction so the balance and its tier change together."""
    at = now()
    # One upsert, not read-then-write: two concurrent awards on PostgreSQL
    # would otherwise both read the old balance and lose one of them.
    rows = await db.fetch(
        "INSERT INTO loyalty_account (customer_id, points, tier, updated_at) "
        "VALUES ({}, {}, {}, {}) ON CONFLICT (customer_id) DO UPDATE SET "
        "points = loyalty_account.points + excluded.points, updated_at = excluded.updated_at "
        "RETURNING id, points",
        customer_pk,
        amount,
        tier_for(amount),
        at,
    )
    await db.fetch(
        "UPDATE loyalty_account SET tier = {} WHERE id = {}",
        tier_for(int(rows[0]["points"])),
        rows[0]["id"],
    )
    found = await account(db, customer_pk)
    assert found is not None
    return found


async def record_award(
    db: Database,
    customer_pk: int,
    amount: int,
    reason: str,
    before: dict[str, Any] | None,
    after: dict[str, Any],
) -> None:
    """The award's two traces, as every core write leaves them
    (``crmgraph.record_change``, in the award's transaction): an audit entry
    on the customer (who changed the account's points and tier from what to
    what) and the plugin event ``loyalty.points_awarded``, which event
    handlers (a notification, a data warehouse), subscribers and webhooks
    receive only if the award commits; the reason is kept in it."""
    changes = {
        name: [before[name] if before else None, after[name]]
        for name in ("points", "tier")
        if before is None or before[name] != after[name]
    }
    await record_change(
        db,
        POINTS_AWARDED,
        ("LoyaltyAccount", int(after["id"])),
        customer_pk,
        changes,
        {
            "customerId": encode_id("Customer", customer_pk),
            "points": amount,
            "reason": reason,
            "balance": int(after["points"]),
            "tier": after["tier"],
        },
    )
