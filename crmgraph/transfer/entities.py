"""The importer of each entity, by the name the command line uses."""

from __future__ import annotations

from crmgraph.transfer.customers import CustomerImport
from crmgraph.transfer.importer import Entity, ImportContext, ImportOptions


def entity_for(name: str, ctx: ImportContext, options: ImportOptions) -> Entity:
    if name == "customers":
        return CustomerImport(ctx, options)
    raise ValueError(f"cannot import {name!r}")
