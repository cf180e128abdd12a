"""The loyalty plugin's part of the demo data set (``crmgraph_seed_demo``):
the accounts the plugin itself would have opened by now.

A client that became ``active`` got an account with the welcome bonus (the
plugin's ``crmgraph_after_transition``), so every demo client at ``active`` or
beyond holds one, with some points awarded since; a ``loyal`` client holds at
least the points its move there needed. Every draw comes from the seed's
``rng``, so the same demo seed gives the same accounts.
"""

from __future__ import annotations

import datetime
import random
from collections.abc import Sequence
from typing import TYPE_CHECKING

from crmgraph_loyalty import ledger

if TYPE_CHECKING:
    from crmgraph import Database

# the client stages reached through "active" (churned clients keep no account)
HOLDS_AN_ACCOUNT = ("active", "loyal", "expanding", "at_risk")
MAX_DEMO_AWARDS = 3000


async def seed(
    db: Database, customer_pks: Sequence[int], rng: random.Random, now: datetime.datetime
) -> int:
    """Open the demo clients' accounts; how many were opened."""
    marks = ", ".join("{}" for _ in HOLDS_AN_ACCOUNT)
    rows = await db.fetch(
        "SELECT c.id, r.stage FROM customer c "
        "JOIN customer_role r ON r.customer = c.id AND r.kind = c.kind "
        f"WHERE c.kind = 'client' AND r.stage IN ({marks})",
        *HOLDS_AN_ACCOUNT,
    )
    stages = {int(row["id"]): row["stage"] for row in rows}
    opened = 0
    for pk in customer_pks:  # in the plan's order: the draws do not depend on the rows' order
        if pk not in stages:
            continue
        points = ledger.WELCOME_BONUS + rng.randint(0, MAX_DEMO_AWARDS)
        if stages[pk] == "loyal":
            points = max(points, ledger.LOYAL_THRESHOLD)
        await db.fetch(
            "INSERT INTO loyalty_account (customer_id, points, tier, updated_at) "
            "VALUES ({}, {}, {}, {})",
            pk,
            points,
            ledger.tier_for(points),
            now,
        )
        opened += 1
    return opened
