"""A test plugin using the hooks the built-in features use: a field on every
customer type (``crmgraph_customer_fields``), a start-up step
(``crmgraph_startup``) and a background service
(``crmgraph_background_services``), each recording what it was given.

No ``from __future__ import annotations``: strawberry reads the annotations."""

from typing import Any

import strawberry

from crmgraph import CustomerField, hookimpl

calls: list[str] = []


async def probe_label(root: Any) -> str:
    return f"probe:{root.pk}"


class Probe:
    """Counts its starts, stops and wake-ups."""

    def __init__(self) -> None:
        self.started = self.stopped = self.woken = 0

    async def start(self) -> None:
        self.started += 1

    async def stop(self) -> None:
        self.stopped += 1

    def wake(self) -> None:
        self.woken += 1


services: list[Probe] = []


@hookimpl
def crmgraph_customer_fields(types: Any) -> list[CustomerField]:
    return [
        CustomerField(
            "probe_label", strawberry.field(resolver=probe_label, description="The probe's.")
        )
    ]


@hookimpl
async def crmgraph_startup(db: Any, catalog: Any) -> None:
    rows = await db.fetch("SELECT COUNT(*) AS n FROM customer")
    calls.append(f"startup:{len(catalog.customer_types)}:{rows[0]['n']}")


@hookimpl
def crmgraph_background_services() -> list[Probe]:
    services.append(Probe())
    return [services[-1]]
