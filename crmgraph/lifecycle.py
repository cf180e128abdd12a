"""The lifecycle engine: which moves a customer may make, why others are
refused, and what a move writes.

A move is checked in three layers, and every reason from every layer is
collected (never first-wins): the edge must exist in the type's lifecycle,
the transition's own guards must pass, and every plugin's
``crmgraph_validate_transition`` must agree. A move that passes writes the
stage, a ``stage_change`` row and an outbox event in the caller's transaction,
then runs ``crmgraph_after_transition`` in that same transaction.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any

import pluggy

from crmgraph.customer_types import CustomerType, Transition
from crmgraph.db import queries, stays, writes
from crmgraph.db.engine import Database
from crmgraph.dedupe import matching
from crmgraph.event_types import emit
from crmgraph.ids import encode_id
from crmgraph.plugin_calls import call_each, call_guarded, reasons
from crmgraph.registry import Catalog
from crmgraph.validation import Problem, UserInputError


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

    def __init__(self, db: Database, customer_pk: int, catalog: Catalog | None = None) -> None:
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
    receives about one requested move."""

    customer: CustomerSnapshot
    descriptor: CustomerType
    from_stage: str
    to_stage: str
    transition: Transition | None
    facts: Facts
    reason: str | None = None
    user_id: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def db(self) -> Database:
        return self.facts.db

    async def emit(self, event_type: str, payload: dict[str, Any]) -> None:
        """Write a plugin event about this customer in the move's transaction
        (from ``crmgraph_after_transition``): it is rolled back if the move is.
        See :func:`crmgraph.event_types.emit` for the naming rules."""
        await emit(self.db, event_type, self.customer.pk, payload)


@dataclass(frozen=True)
class Move:
    """One possible move from the current stage and whether it is allowed now."""

    transition: Transition
    reasons: tuple[str, ...]

    @property
    def allowed(self) -> bool:
        return not self.reasons


class Lifecycles:
    """The engine for one catalog and plugin manager."""

    def __init__(self, catalog: Catalog, pm: pluggy.PluginManager) -> None:
        self.catalog = catalog
        self.pm = pm
        self.type_plugin = {t.descriptor.key: t.plugin for t in catalog.types}

    def context(
        self,
        db: Database,
        row: dict[str, Any],
        to_stage: str,
        reason: str | None = None,
        user_id: int | None = None,
    ) -> TransitionContext:
        descriptor = self.catalog.customer_type(row["kind"])
        assert descriptor is not None, row["kind"]
        return TransitionContext(
            customer=CustomerSnapshot.from_row(row, descriptor),
            descriptor=descriptor,
            from_stage=row["stage"],
            to_stage=to_stage,
            transition=descriptor.lifecycle.transition(row["stage"], to_stage),
            facts=Facts(db, row["id"], self.catalog),
            reason=reason,
            user_id=user_id,
        )

    async def refusals(self, ctx: TransitionContext) -> list[str]:
        """Every reason the move may not happen now (empty: it may)."""
        lifecycle = ctx.descriptor.lifecycle
        if lifecycle.stage(ctx.to_stage) is None:
            known = ", ".join(s.key for s in lifecycle.stages)
            return [f"{ctx.to_stage!r} is not a stage of {ctx.descriptor.graphql_name} ({known})"]
        if ctx.transition is None:
            possible = ", ".join(t.to_stage for t in lifecycle.transitions_from(ctx.from_stage))
            return [
                f"{ctx.descriptor.graphql_name} cannot move from {ctx.from_stage!r} to "
                f"{ctx.to_stage!r}; from {ctx.from_stage!r} it can move to: {possible or 'nothing'}"
            ]
        found: list[str] = []
        plugin = self.type_plugin[ctx.descriptor.key]
        for guard in ctx.transition.guards:
            name = getattr(guard, "__name__", "guard")
            found += reasons(await call_guarded(plugin, f"guard {name}", guard, ctx=ctx))
        for _, result in await call_each(self.pm, "crmgraph_validate_transition", ctx=ctx):
            found += reasons(result)
        return found

    async def moves(self, db: Database, row: dict[str, Any]) -> list[Move]:
        descriptor = self.catalog.customer_type(row["kind"])
        assert descriptor is not None
        result = []
        for transition in descriptor.lifecycle.transitions_from(row["stage"]):
            ctx = self.context(db, row, transition.to_stage)
            result.append(Move(transition, tuple(await self.refusals(ctx))))
        return result

    async def apply(self, ctx: TransitionContext, expected_version: int) -> None:
        """Write a move that passed :meth:`refusals`, in the caller's transaction."""
        db, customer, transition = ctx.db, ctx.customer, ctx.transition
        assert transition is not None
        at = writes.now()
        await self._enter_stage(
            db, customer.pk, customer.kind, ctx.from_stage, ctx.to_stage, at, ctx
        )
        new_kind = customer.kind
        if transition.convert_to:
            new_kind = transition.convert_to
            target = self.catalog.customer_type(new_kind)
            assert target is not None
            stage = transition.convert_stage or target.lifecycle.initial
            existing = await db.fetch(
                "SELECT stage FROM customer_role WHERE customer = {} AND kind = {}",
                customer.pk,
                new_kind,
            )
            if existing:
                previous = existing[0]["stage"]
            else:
                previous = None
                await writes.insert(
                    db,
                    "customer_role",
                    {
                        "customer": customer.pk,
                        "kind": new_kind,
                        "stage": stage,
                        "phase": target.lifecycle.stage(stage).phase.value,  # type: ignore[union-attr]
                        "entered_at": at,
                    },
                )
            converted = ctx.reason or f"converted from {customer.kind}"
            await self._enter_stage(
                db, customer.pk, new_kind, previous, stage, at, ctx, reason=converted
            )
        # the new entries' phase columns, and those of the earlier ones they
        # advance or end (a conversion also makes the customer's history irregular)
        await stays.record_phases(db, [customer.pk])
        rows = await db.fetch(
            "UPDATE customer SET kind = {}, version = version + 1, updated_at = {} "
            "WHERE id = {} AND version = {} AND deleted_at IS NULL RETURNING version",
            new_kind,
            at,
            customer.pk,
            expected_version,
        )
        if not rows:
            raise writes.version_conflict(None, expected_version)
        changes = {"stage": [ctx.from_stage, ctx.to_stage]}
        if transition.convert_to:
            changes["kind"] = [customer.kind, new_kind]
            # a name-only pair needs one kind, and stored pairs carry their kinds
            await matching.refresh_match_keys(db, [customer.pk])
        await writes.record_change(
            db,
            "customer.stage_changed",
            ("Customer", customer.pk),
            customer.pk,
            changes,
            {
                "customerId": customer.id,
                "kind": customer.kind,
                "fromStage": ctx.from_stage,
                "toStage": ctx.to_stage,
                "convertedTo": transition.convert_to,
                "reason": ctx.reason,
                "by": ctx.user_id,
            },
            by=ctx.user_id,
        )
        await call_each(self.pm, "crmgraph_after_transition", ctx=ctx)

    async def _enter_stage(
        self,
        db: Database,
        pk: int,
        kind: str,
        from_stage: str | None,
        to_stage: str,
        at: datetime.datetime,
        ctx: TransitionContext,
        reason: str | None = None,
    ) -> None:
        descriptor = self.catalog.customer_type(kind)
        assert descriptor is not None
        stage = descriptor.lifecycle.stage(to_stage)
        assert stage is not None
        await db.fetch(
            "UPDATE customer_role SET stage = {}, phase = {}, entered_at = {} "
            "WHERE customer = {} AND kind = {}",
            to_stage,
            stage.phase.value,
            at,
            pk,
            kind,
        )
        await stays.leave_stage(db, pk, kind, to_stage, at)
        await writes.insert(
            db,
            "stage_change",
            {
                "customer": pk,
                "kind": kind,
                "from_stage": from_stage,
                "to_stage": to_stage,
                "at": at,
                "by": ctx.user_id,
                "reason": reason if reason is not None else ctx.reason,
            },
        )


def refusal_problems(found: list[str]) -> UserInputError:
    return UserInputError([Problem("toStage", reason, "TRANSITION_REFUSED") for reason in found])
