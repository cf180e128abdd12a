"""A validate hook for tests/test_import_export.py: it refuses customers
named ``Refused …`` (a problem, reported on the row) and raises on one named
``Explode`` (a failure: the import stops and what it wrote is rolled back)."""

from __future__ import annotations

from typing import Any

from crmgraph.extension_points import CustomerWrite
from crmgraph.hookspecs import hookimpl


@hookimpl
def crmgraph_validate_customer(write: CustomerWrite) -> list[Any]:
    name = write.values.get("name") or ""
    if name == "Explode":
        raise RuntimeError("import guard exploded")
    if name.startswith("Refused"):
        return [("name", "the import guard refuses this name")]
    return []
