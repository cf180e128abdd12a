"""What hooks receive about customers: the values a guard, a transition
validator, a customer validator or a merge hook is handed.

They sit with the plugin contract (below the lifecycle engine and the merge
that build them) so that :mod:`crmgraph.hookspecs` and
:mod:`crmgraph.extension_points` can name them without importing the engines.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any, Protocol

from crmgraph.customer_types import CustomerType, Transition
from crmgraph.db import queries
from crmgraph.db.engine import Database
from crmgraph.event_types import emit
from crmgraph.ids import encode_id

MERGE = "merge"
UNDO = "undo"


class CustomerTypeLookup(Protocol):
    """Finds a customer type's descriptor by key (a ``Catalog`` is one)."""

    def customer_type(self, key: str) -> CustomerType | None: ...


@dataclass(frozen=True)
class CustomerSnapshot:
    """A customer as guards and validators see it: plain values, attributes
    decoded to their Python types."""

    pk: int
    id: str
    kind: str
    name: str
    email: str | None
    phone: str | None
    owner: int | None
    stage: str
    phase: str
    version: int
    attributes: dict[str, Any]

    @classmethod
    def from_row(cls, row: dict[str, Any], descriptor: CustomerType) -> CustomerSnapshot:
        return cls(
            pk=row["id"],
            id=encode_id("Customer", row["id"]),
            kind=row["kind"],
            name=row["name"],
            email=row["email"],
            phone=row["phone"],
            owner=row["owner"],
            stage=row["stage"],
            phase=row["phase"],
            version=row["version"],
            attributes=descriptor.decode_attributes(queries.load_json(row["attributes"])),
        )


class Direction(StrEnum):
    """Which way a relationship points, seen from the customer asked about
    (equal to the strings ``"out"`` and ``"in"``)."""

    OUT = "out"  # this customer -> the other (``from`` is this customer)
    IN = "in"  # the other -> this customer


@dataclass(frozen=True)
class LinkedParty:
    """The other end of a relationship, as ``Facts.relationships`` lists it."""

    relationship_id: int
    kind: str
    direction: Direction
    customer_id: int
    customer_kind: str
    stage: str
    name: str
    attributes: dict[str, Any]
    customer_attributes: dict[str, Any]


class Facts:
    """Read-only questions a guard or validator may ask about one customer.
    With the ``catalog``, linked parties' attributes come decoded to their
    Python types (``Decimal``, ``date``), as a customer's own do."""

    def __init__(
        self, db: Database, customer_pk: int, catalog: CustomerTypeLookup | None = None
    ) -> None:
        self.db = db
        self.customer_pk = customer_pk
        self.catalog = catalog

    def customer_attributes(self, kind: str, stored: Any) -> dict[str, Any]:
        values = queries.load_json(stored)
        descriptor = self.catalog.customer_type(kind) if self.catalog is not None else None
        return descriptor.decode_attributes(values) if descriptor is not None else values

    async def interaction_count(
        self, channels: tuple[str, ...] = (), since: datetime.datetime | None = None
    ) -> int:
        where = queries.Where()
        where.add("customer = {}", self.customer_pk)
        if channels:
            where.add_in("channel", channels)
        if since is not None:
            where.add("occurred_at >= {}", since)
        rows = await self.db.fetch(
            f"SELECT COUNT(*) AS n FROM interaction WHERE {where.sql()}", *where.args
        )
        return int(rows[0]["n"])

    async def purchases(self) -> tuple[int, Decimal]:
        """Count and total of interactions that carry a positive amount."""
        rows = await self.db.fetch(
            "SELECT COUNT(*) AS n, COALESCE(SUM(amount), 0) AS total FROM interaction "
            "WHERE customer = {} AND amount > 0",
            self.customer_pk,
        )
        return int(rows[0]["n"]), Decimal(str(rows[0]["total"]))

    async def open_need_count(self) -> int:
        rows = await self.db.fetch(
            "SELECT COUNT(*) AS n FROM need "
            "WHERE customer = {} AND status IN ('OPEN', 'IN_PROGRESS')",
            self.customer_pk,
        )
        return int(rows[0]["n"])

    async def relationships(
        self, kind: str | None = None, direction: str = "any"
    ) -> list[LinkedParty]:
        rows = await self.db.fetch(
            "SELECT rel.id AS rid, rel.kind AS rkind, rel.attributes AS rattrs, "
            "rel.from_customer, rel.to_customer, c.id AS cid, c.kind AS ckind, c.name AS cname, "
            "c.attributes AS cattrs, r.stage AS cstage "
            "FROM relationship rel JOIN customer c ON c.id = CASE WHEN rel.from_customer = {} "
            "THEN rel.to_customer ELSE rel.from_customer END "
            "JOIN customer_role r ON r.customer = c.id AND r.kind = c.kind "
            "WHERE (rel.from_customer = {} OR rel.to_customer = {}) AND c.deleted_at IS NULL "
            "ORDER BY rel.id",
            self.customer_pk,
            self.customer_pk,
            self.customer_pk,
        )
        found = []
        for row in rows:
            way = Direction.OUT if row["from_customer"] == self.customer_pk else Direction.IN
            if (kind is None or row["rkind"] == kind) and direction in ("any", way):
                found.append(
                    LinkedParty(
                        relationship_id=row["rid"],
                        kind=row["rkind"],
                        direction=way,
                        customer_id=row["cid"],
                        customer_kind=row["ckind"],
                        stage=row["cstage"],
                        name=row["cname"],
                        attributes=queries.load_json(row["rattrs"]),
                        customer_attributes=self.customer_attributes(row["ckind"], row["cattrs"]),
                    )
                )
        return found

    async def fetch(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        """Any read a plugin needs, with piccolo ``{}`` placeholders."""
        return await self.db.fetch(sql, *args)


@dataclass
class TransitionContext:
    """Everything a guard, a transition validator or an after-transition hook
    receives about one requested move.

    The move is of one role of the party: ``kind`` (the descriptor's key).
    For a further role (``primary_kind`` is another kind) ``customer`` holds
    that role's kind, stage, phase and attributes, so a guard reads the role's
    own values whatever the party's primary kind."""

    customer: CustomerSnapshot
    descriptor: CustomerType
    from_stage: str
    to_stage: str
    transition: Transition | None
    facts: Facts
    reason: str | None = None
    user_id: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    primary_kind: str | None = None
    """The party's primary kind (its GraphQL type); None: the role moved is it."""

    @property
    def kind(self) -> str:
        """The kind of the role being moved."""
        return self.descriptor.key

    @property
    def is_primary(self) -> bool:
        """Whether the role moved is the party's primary kind."""
        return self.primary_kind is None or self.primary_kind == self.kind

    @property
    def db(self) -> Database:
        return self.facts.db

    async def emit(self, event_type: str, payload: dict[str, Any]) -> None:
        """Write a plugin event about this customer in the move's transaction
        (from ``crmgraph_after_transition``): it is rolled back if the move is.
        See :func:`crmgraph.event_types.emit` for the naming rules."""
        await emit(self.db, event_type, self.customer.pk, payload)


@dataclass
class MergeContext:
    """What ``crmgraph_merge_customers`` receives.

    ``phase`` is ``"merge"`` or ``"undo"``. ``survivor`` and ``merged`` are the
    two customers as they were before the merge (both phases). ``db`` is inside
    the merge's (or undo's) transaction: move your rows with it; raising rolls
    everything back. ``reason`` is the one the merge was given. ``saved`` is a
    JSON-able dict kept with the merge and handed back, as it was left, to the
    undo call: key it by your plugin's name.
    Add what you moved to ``moved`` (``{"loyaltyAccounts": 1}``): it is shown in
    the merge's ``movedCounts`` and the ``customer.merged`` event."""

    db: Database
    phase: str
    merge_id: int
    survivor: CustomerSnapshot
    merged: CustomerSnapshot
    by_user: int | None
    reason: str | None = None
    saved: dict[str, Any] = field(default_factory=dict)
    moved: dict[str, int] = field(default_factory=dict)

    @property
    def is_undo(self) -> bool:
        return self.phase == UNDO
