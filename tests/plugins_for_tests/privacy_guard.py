"""A plugin that takes part in personal data requests, for tests/test_privacy.py:
it writes a row of its own before raising when an erasure's reason is
``legal hold`` (so the test sees that row rolled back with everything else),
and adds a section to every export."""

from __future__ import annotations

from crmgraph.db.engine import Database
from crmgraph.hookspecs import hookimpl


@hookimpl
async def crmgraph_erase_personal_data(db: Database, customer_pk: int, reason: str) -> None:
    await db.fetch(
        "UPDATE customer SET name = {} WHERE id = {}", "half-erased by the guard", customer_pk
    )
    if reason == "legal hold":
        raise RuntimeError("the customer is under a legal hold")


@hookimpl
def crmgraph_personal_data_export(customer_pks: tuple[int, ...]) -> dict[str, object]:
    return {"checked": list(customer_pks)}
