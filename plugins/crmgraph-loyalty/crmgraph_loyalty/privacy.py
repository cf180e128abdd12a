"""The loyalty plugin's part in personal data requests
(``crmgraph_personal_data_export`` and ``crmgraph_erase_personal_data``).

An account holds a balance and a tier: facts about the relationship that the
plugin's metrics add up (``loyalty_points_total``), and no value that names
or describes the person. The export lists the party's accounts; the erasure
keeps them as they are, so the totals do not change once the customer is
anonymous, and says so in its counts. The free text the plugin writes (an
award's ``reason``) lives in its ``loyalty.points_awarded`` events, which
crmgraph erases with the customer's other events.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from crmgraph import plain_rows

if TYPE_CHECKING:
    from crmgraph import Database


async def accounts(db: Database, customer_pks: Sequence[int]) -> list[dict[str, Any]]:
    marks = ", ".join("{}" for _ in customer_pks)
    return await db.fetch(
        "SELECT id, customer_id, points, tier, updated_at FROM loyalty_account "
        f"WHERE customer_id IN ({marks}) ORDER BY id",
        *customer_pks,
    )


async def export_section(db: Database, customer_pks: Sequence[int]) -> dict[str, Any] | None:
    rows = await accounts(db, customer_pks)
    # plain_rows: timestamps as ISO 8601, as the core's own sections
    return {"accounts": plain_rows(rows)} if rows else None


async def erase(db: Database, customer_pks: Sequence[int]) -> dict[str, int]:
    # nothing personal to anonymise: balances and tiers stay for the metrics
    return {"accountsKept": len(await accounts(db, customer_pks))}
