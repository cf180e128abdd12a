"""The importer of each entity, by the name the command line uses."""

from __future__ import annotations

from crmgraph.transfer.contacts import ContactImport
from crmgraph.transfer.customers import CustomerImport
from crmgraph.transfer.importer import Entity, ImportContext, ImportOptions
from crmgraph.transfer.interactions import InteractionImport
from crmgraph.transfer.needs import NeedImport

IMPORTERS: dict[str, type[Entity]] = {
    "customers": CustomerImport,
    "contacts": ContactImport,
    "interactions": InteractionImport,
    "needs": NeedImport,
}


def entity_for(name: str, ctx: ImportContext, options: ImportOptions) -> Entity:
    if name not in IMPORTERS:
        raise ValueError(f"cannot import {name!r}")
    return IMPORTERS[name](ctx, options)  # type: ignore[call-arg]
