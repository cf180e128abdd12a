"""A plugin with opinions on merges, for tests/test_merge.py: it refuses to
merge into a survivor whose name starts with ``Keep apart`` (two reasons, to
show they are all reported), raises when a merge's reason is ``explode``, and
refuses to undo a merge whose reason is ``final``."""

from __future__ import annotations

from crmgraph import MergeContext
from crmgraph.hookspecs import hookimpl


@hookimpl
def crmgraph_merge_customers(ctx: MergeContext) -> list[str]:
    if ctx.is_undo:  # what it saved at the merge comes back
        final = ctx.saved.get("guard_reason") == "final"
        return ["this merge was declared final"] if final else []
    if ctx.reason == "explode":
        raise RuntimeError("merge guard exploded")
    ctx.saved["guard_reason"] = ctx.reason
    if ctx.survivor.name.startswith("Keep apart"):
        return ["the survivor is kept apart", "ask the account owner first"]
    return []
