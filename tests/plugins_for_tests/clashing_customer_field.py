"""A plugin adding ``Customer.notes``, which the teamwork plugin already adds.

No ``from __future__ import annotations``: strawberry reads the annotations."""

from typing import Any

import strawberry

from crmgraph import CustomerField, hookimpl


def notes(root: Any) -> str:
    return ""


@hookimpl
def crmgraph_customer_fields(types: Any) -> list[CustomerField]:
    return [CustomerField("notes", strawberry.field(resolver=notes))]
