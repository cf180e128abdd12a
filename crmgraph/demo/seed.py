"""Seeding the demo: plan it (:mod:`.generator`), write the plan in one
transaction with multi-row INSERTs (customers through the one writer of new
customers, :mod:`crmgraph.operations.new_customers`), then let each plugin
add its own rows through ``crmgraph_seed_demo``.
"""

from __future__ import annotations

import dataclasses
import datetime
import random
from collections.abc import Sequence

import pluggy

from crmgraph.db import stays
from crmgraph.db.bulk import insert_rows
from crmgraph.db.engine import Database
from crmgraph.db.writes import now as utc_now
from crmgraph.dedupe.matching import refresh_match_keys
from crmgraph.demo.generator import DemoGenerator
from crmgraph.demo.plan import DemoPlan, DemoSummary, Row
from crmgraph.operations.new_customers import NewCustomer, write_new_customers
from crmgraph.plugin_calls import call_guarded
from crmgraph.plugin_names import stable_plugin_name
from crmgraph.registry import Catalog

SEED_HOOK = "crmgraph_seed_demo"


async def has_data(db: Database) -> bool:
    return bool(await db.fetch("SELECT id FROM customer LIMIT 1"))


async def seed_demo(
    db: Database,
    catalog: Catalog,
    customers: int = 3000,
    seed: int = 7,
    *,
    now: datetime.datetime | None = None,
    plugin_manager: pluggy.PluginManager | None = None,
) -> DemoSummary:
    """Fill an empty, migrated database; the same seed and ``now`` give the
    same rows. With ``plugin_manager``, each plugin's ``crmgraph_seed_demo``
    then adds its rows in the same transaction (one that raises: a
    :class:`~crmgraph.plugin_calls.PluginFailure` naming it, nothing written)."""
    present = (now or utc_now()).astimezone(datetime.UTC)
    plan = plan_demo(catalog, customers, seed, present)
    async with db.transaction():
        customer_ids = await write_plan(db, catalog, plan)
        if plugin_manager is not None:
            await seed_plugins(db, plugin_manager, customer_ids, seed, present)
    return plan.summary()


def plan_demo(catalog: Catalog, customers: int, seed: int, now: datetime.datetime) -> DemoPlan:
    return DemoGenerator(catalog, random.Random(seed), now.astimezone(datetime.UTC)).plan(customers)


async def write_plan(db: Database, catalog: Catalog, plan: DemoPlan) -> list[int]:
    """Write the plan's rows; the customers' ids, in the plan's order."""
    user_ids = await insert_rows(db, "crm_user", plan.users)
    customers = [with_user_ids(customer, user_ids) for customer in plan.customers]
    customer_ids = await write_new_customers(db, catalog, customers)
    await refresh_match_keys(db, customer_ids)
    await stays.record_stays(db)
    contact_ids = await insert_rows(db, "contact", resolve(plan.contacts, customer=customer_ids))
    interactions = resolve(plan.interactions, customer=customer_ids, contact=contact_ids)
    await insert_rows(db, "interaction", interactions, returning=False)
    await insert_rows(db, "need", resolve(plan.needs, customer=customer_ids), returning=False)
    links = resolve(plan.relationships, from_customer=customer_ids, to_customer=customer_ids)
    await insert_rows(db, "relationship", links, returning=False)
    note_ids = await insert_rows(
        db, "note", resolve(plan.notes, customer=customer_ids, author=user_ids)
    )
    mentions = resolve(plan.note_mentions, note=note_ids, mentioned=user_ids)
    await insert_rows(db, "note_mention", mentions, returning=False)
    tasks = resolve(plan.tasks, customer=customer_ids, assignee=user_ids, created_by=user_ids)
    await insert_rows(db, "task", tasks, returning=False)
    return customer_ids


def with_user_ids(customer: NewCustomer, user_ids: Sequence[int]) -> NewCustomer:
    """The customer with its owner's and its stage entries' users' positions
    replaced by their database ids."""
    owner = customer.fields.get("owner")
    return dataclasses.replace(
        customer,
        fields={**customer.fields, "owner": None if owner is None else user_ids[owner]},
        history=[
            dataclasses.replace(entry, by=None if entry.by is None else user_ids[entry.by])
            for entry in customer.history
        ],
    )


def resolve(rows: list[Row], **ids: Sequence[int]) -> list[Row]:
    """Replace list positions in foreign-key columns with database ids."""
    return [resolve_row(row, ids) for row in rows]


def resolve_row(row: Row, ids: dict[str, Sequence[int]]) -> Row:
    resolved = dict(row)
    for column, pks in ids.items():
        if row[column] is not None:
            resolved[column] = pks[row[column]]
    return resolved


async def seed_plugins(
    db: Database,
    plugin_manager: pluggy.PluginManager,
    customer_ids: Sequence[int],
    seed: int,
    now: datetime.datetime,
) -> None:
    """Each plugin's ``crmgraph_seed_demo``, by plugin name, each given a
    ``Random`` of its own (seeded from the seed and the plugin's stable name),
    so what one plugin draws changes nothing of another's rows."""
    hook = getattr(plugin_manager.hook, SEED_HOOK)
    for impl in sorted(hook.get_hookimpls(), key=lambda impl: impl.plugin_name):
        stable = stable_plugin_name(plugin_manager, impl.plugin_name)
        given = {
            "db": db,
            "customer_pks": list(customer_ids),
            "rng": random.Random(f"{seed}:{stable}"),
            "now": now,
        }
        args = {name: given[name] for name in impl.argnames if name in given}
        await call_guarded(impl.plugin_name, SEED_HOOK, impl.function, **args)
