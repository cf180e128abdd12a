"""Loyalty accounts when crmgraph merges two customers, and when it undoes a
merge (``crmgraph_merge_customers``), as a partner plugin does it: through
the hook's context, in the merge's own transaction.

A customer has at most one account. On merge, the merged customer's account
becomes the survivor's when the survivor has none; when both have one, the
survivor's absorbs the other's points (re-tiered) and the other is deleted.
What was done is kept in ``ctx.saved["loyalty"]``, so the undo puts both
accounts back exactly, and refuses while the survivor's balance has changed
since the merge (points awarded after it would be lost or misassigned).
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

from crmgraph_loyalty import ledger

if TYPE_CHECKING:
    from crmgraph import MergeContext

KEY = "loyalty"
COLUMNS = ("id", "customer_id", "points", "tier", "updated_at")


async def _row(ctx: MergeContext, customer_pk: int) -> dict[str, Any] | None:
    rows = await ctx.db.fetch(
        f"SELECT {', '.join(COLUMNS)} FROM loyalty_account WHERE customer_id = {{}}", customer_pk
    )
    return rows[0] if rows else None


def _image(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "updated_at": row["updated_at"].isoformat()}


async def merge_accounts(ctx: MergeContext) -> None:
    theirs = await _row(ctx, ctx.merged.pk)
    if theirs is None:
        return
    mine = await _row(ctx, ctx.survivor.pk)
    if mine is None:
        await ctx.db.fetch(
            "UPDATE loyalty_account SET customer_id = {} WHERE id = {}",
            ctx.survivor.pk,
            theirs["id"],
        )
        ctx.saved[KEY] = {"moved": theirs["id"], "points": theirs["points"]}
    else:
        total = int(mine["points"]) + int(theirs["points"])
        await ctx.db.fetch("DELETE FROM loyalty_account WHERE id = {}", theirs["id"])
        await ctx.db.fetch(
            "UPDATE loyalty_account SET points = {}, tier = {}, updated_at = {} WHERE id = {}",
            total,
            ledger.tier_for(total),
            ledger.now(),
            mine["id"],
        )
        ctx.saved[KEY] = {"absorbed": _image(theirs), "survivor": _image(mine), "points": total}
    ctx.moved["loyaltyAccounts"] = 1


async def undo_merge(ctx: MergeContext) -> list[str]:
    saved = ctx.saved.get(KEY)
    if saved is None:
        return []
    mine = await _row(ctx, ctx.survivor.pk)
    if mine is None or int(mine["points"]) != saved["points"]:
        return ["the survivor's loyalty balance changed since the merge"]
    if "moved" in saved:
        await ctx.db.fetch(
            "UPDATE loyalty_account SET customer_id = {} WHERE id = {}", ctx.merged.pk, mine["id"]
        )
        return []
    before = saved["survivor"]
    await ctx.db.fetch(
        "UPDATE loyalty_account SET points = {}, tier = {}, updated_at = {} WHERE id = {}",
        before["points"],
        before["tier"],
        _timestamp(before["updated_at"]),
        mine["id"],
    )
    absorbed = saved["absorbed"]
    values = {
        "customer_id": ctx.merged.pk,
        "points": absorbed["points"],
        "tier": absorbed["tier"],
        "updated_at": _timestamp(absorbed["updated_at"]),
    }
    # its own id again, unless SQLite gave that id to a newer account meanwhile
    taken = await ctx.db.fetch("SELECT id FROM loyalty_account WHERE id = {}", absorbed["id"])
    if not taken:
        values = {"id": absorbed["id"], **values}
    await ctx.db.fetch(
        f"INSERT INTO loyalty_account ({', '.join(values)}) "
        f"VALUES ({', '.join('{}' for _ in values)})",
        *values.values(),
    )
    return []


def _timestamp(value: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(value)
