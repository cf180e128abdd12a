"""A party's roles as the tables hold them (issue 24): which ``customer_role``
rows are roles the party holds, and which kinds may not be held together.

Here, below the operations and the dedupe feature, so both can ask: a merge
(:mod:`crmgraph.dedupe.merge_roles`) combines two parties' roles under the
same rules ``addRole`` (:mod:`crmgraph.operations.roles`) applies to one.
A customer's primary kind is ``customer.kind``; a row of another kind is a
further role while ``added_at`` is set and ``ended_at`` is not (a row a
conversion left behind has neither: history, not a role).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from crmgraph.customer_types import CustomerType
from crmgraph.db.engine import Database

ROLE_COLUMNS = "kind, stage, phase, entered_at, attributes, added_at, ended_at"


class CustomerTypes(Protocol):
    """What these rules read of the catalog: a loaded type by key."""

    def customer_type(self, key: str) -> CustomerType | None: ...


def is_held(row: Mapping[str, Any], primary_kind: str) -> bool:
    """Whether a ``customer_role`` row is a role the party holds now (the
    primary kind's, or a further one added and not ended)."""
    if row["kind"] == primary_kind:
        return True
    return row["added_at"] is not None and row["ended_at"] is None


async def role_rows(db: Database, pk: int) -> dict[str, dict[str, Any]]:
    """Every ``customer_role`` row of the customer (with its id), by kind."""
    rows = await db.fetch(
        f"SELECT id, {ROLE_COLUMNS} FROM customer_role WHERE customer = {{}} ORDER BY id", pk
    )
    return {row["kind"]: row for row in rows}


def uncombinable(types: CustomerTypes, kind: str, held: Sequence[str]) -> list[str]:
    """The kinds of ``held`` that ``kind`` may not join: either type's
    ``not_combinable_with`` names the other."""
    new = types.customer_type(kind)
    if new is None:
        return []
    found = []
    for other in held:
        descriptor = types.customer_type(other)
        mutual = descriptor is None or descriptor.combinable(kind)
        if not (new.combinable(other) and mutual):
            found.append(other)
    return found
