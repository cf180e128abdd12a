"""A test plugin whose ``crmgraph_seed_demo`` raises after writing a row:
the seed fails naming it, and nothing of the seed is left."""

from __future__ import annotations

import random

from crmgraph import Database, hookimpl


@hookimpl
async def crmgraph_seed_demo(db: Database, customer_pks: list[int], rng: random.Random) -> None:
    await db.fetch("UPDATE customer SET name = {} WHERE id = {}", "half-written", customer_pks[0])
    raise LookupError("no loyalty tier for the demo")
