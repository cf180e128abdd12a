"""The demo data set on both engines: every type present, lifecycle state
consistent with its history, valid phones, deterministic for a seed."""

from __future__ import annotations

import asyncio
from pathlib import Path

import phonenumbers

from crmgraph.app import build_state
from crmgraph.demo import DemoSummary, has_data, seed_demo
from crmgraph.testing import migrate_for, settings_for


async def seed_and_read(database_url: str, customers: int) -> tuple[DemoSummary, dict]:
    settings = settings_for(database_url)
    await migrate_for(settings)  # a no-op on the already migrated fixture database
    state = build_state(settings)
    await state.db.start(settings)
    try:
        assert not await has_data(state.db)
        summary = await seed_demo(state.db, state.catalog, customers=customers, seed=11)
        assert await has_data(state.db)
        fetch = state.db.fetch
        data = {
            "kinds": {r["kind"] for r in await fetch("SELECT DISTINCT kind FROM customer")},
            "counts": {
                t: (await fetch(f"SELECT COUNT(*) AS n FROM {t}"))[0]["n"]
                for t in (
                    "crm_user",
                    "customer",
                    "contact",
                    "interaction",
                    "need",
                    "relationship",
                    "stage_change",
                )
            },
            "roles": await fetch(
                "SELECT c.id, c.kind, r.stage, r.phase, COUNT(r.id) AS n FROM customer c "
                "JOIN customer_role r ON r.customer = c.id GROUP BY c.id, c.kind, r.stage, r.phase"
            ),
            "last_changes": {
                r["customer"]: r["to_stage"]
                for r in await fetch("SELECT customer, to_stage FROM stage_change ORDER BY at, id")
            },
            "phones": [
                r["phone"]
                for r in await fetch("SELECT phone FROM customer WHERE phone IS NOT NULL")
            ],
            "names": [r["name"] for r in await fetch("SELECT name FROM customer ORDER BY id")],
            "catalog": state.catalog,
        }
        return summary, data
    finally:
        await state.db.stop()


def test_demo_is_consistent_and_deterministic(database_url: str, tmp_path: Path) -> None:
    summary, data = asyncio.run(seed_and_read(database_url, 150))
    catalog = data["catalog"]
    assert data["kinds"] == {t.key for t in catalog.customer_types}
    assert data["counts"] == {
        "crm_user": summary.users, "customer": summary.customers, "contact": summary.contacts,
        "interaction": summary.interactions, "need": summary.needs,
        "relationship": summary.relationships, "stage_change": summary.stage_changes,
    }  # fmt: skip
    assert summary.customers == 150 and summary.interactions > 150 and summary.relationships > 0
    for role in data["roles"]:
        assert role["n"] == 1
        lifecycle = catalog.customer_type(role["kind"]).lifecycle
        assert lifecycle.stage(role["stage"]).phase.value == role["phase"]
        assert data["last_changes"][role["id"]] == role["stage"]  # history ends where it is
    assert all(phonenumbers.is_valid_number(phonenumbers.parse(p)) for p in data["phones"])
    again_summary, again = asyncio.run(seed_and_read(f"sqlite:///{tmp_path / 'again.sqlite'}", 150))
    assert again["names"] == data["names"] and again_summary == summary
