"""When each stay in a stage ended: ``stage_change.left_at`` and ``next_stage``.

A stage change row is an entry into a stage; the stay it starts ends at the
next change of the same customer type. That end is written when the next
change is (``leave_stage``, in the transition's transaction), so the funnel
reads each stay from its own row instead of pairing rows with window functions
over the whole history (on 315,000 changes the sort alone took most of a second).
Rows written in bulk (demo data, benchmark seeds, test fixtures, the migration
that added the columns) get theirs from ``record_stays`` in one statement.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence

from crmgraph.db.engine import Database

# UPDATE ... FROM: PostgreSQL, and SQLite since 3.33
RECORD_STAYS = (
    "UPDATE stage_change SET left_at = later.left_at, next_stage = later.next_stage "
    "FROM (SELECT id, LEAD(at) OVER w AS left_at, LEAD(to_stage) OVER w AS next_stage "
    "FROM stage_change{where} "
    "WINDOW w AS (PARTITION BY customer, kind ORDER BY at, id)) later "
    "WHERE later.id = stage_change.id AND later.left_at IS NOT NULL"
)


async def record_stays(db: Database, customer_ids: Sequence[int] | None = None) -> None:
    """Fill ``left_at``/``next_stage`` from the history, for every customer or these."""
    if customer_ids is None:
        await db.fetch(RECORD_STAYS.format(where=""))
        return
    marks = ", ".join("{}" for _ in customer_ids)
    await db.fetch(RECORD_STAYS.format(where=f" WHERE customer IN ({marks})"), *customer_ids)


async def leave_stage(
    db: Database, pk: int, kind: str, next_stage: str, at: datetime.datetime
) -> None:
    """End the customer's open stay in ``kind``: called as it enters ``next_stage``."""
    await db.fetch(
        "UPDATE stage_change SET left_at = {}, next_stage = {} "
        "WHERE customer = {} AND kind = {} AND left_at IS NULL",
        at,
        next_stage,
        pk,
        kind,
    )
