"""A test plugin that adds its own rows to the demo data set through
``crmgraph_seed_demo``: on every owned client, a note by its owner saying a
welcome pack went out, dated between the customer's creation and the seed's
present with the plugin's own ``rng``."""

from __future__ import annotations

import datetime
import random

from crmgraph import Database, hookimpl

BODY = "Welcome pack sent (demo_rows plugin)"


@hookimpl
async def crmgraph_seed_demo(
    db: Database, customer_pks: list[int], rng: random.Random, now: datetime.datetime
) -> None:
    seeded = set(customer_pks)
    clients = await db.fetch(
        "SELECT id, owner, created_at FROM customer "
        "WHERE kind = {} AND owner IS NOT NULL ORDER BY id",
        "client",
    )
    for client in clients:
        if client["id"] not in seeded:
            continue
        span = (now - client["created_at"]).total_seconds()
        at = client["created_at"] + datetime.timedelta(seconds=rng.uniform(0, span))
        await db.fetch(
            "INSERT INTO note (customer, author, body, version, created_at, updated_at) "
            "VALUES ({}, {}, {}, {}, {}, {})",
            client["id"],
            client["owner"],
            BODY,
            1,
            at,
            at,
        )
