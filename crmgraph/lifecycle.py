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
from dataclasses import dataclass
from typing import Any

import pluggy

from crmgraph.customer_types import Transition
from crmgraph.db import stays, writes
from crmgraph.db.engine import Database
from crmgraph.dedupe import matching
from crmgraph.hook_contexts import CustomerSnapshot, Facts, TransitionContext
from crmgraph.plugin_calls import call_each, call_guarded, reasons
from crmgraph.registry import Catalog
from crmgraph.validation import Problem, UserInputError


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
        primary_kind: str | None = None,
    ) -> TransitionContext:
        """The move of ``row`` (a customer as :func:`crmgraph.db.writes.live_customer`
        reads it, or one of its further roles as :mod:`crmgraph.operations.roles`
        shapes it: the role's kind, stage and attributes) to ``to_stage``."""
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
            primary_kind=primary_kind or row["kind"],
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
        if ctx.transition.convert_to and not ctx.is_primary:
            return [
                f"{ctx.descriptor.graphql_name} is a further role of this party: only its "
                f"primary kind converts to another type"
            ]
        found: list[str] = []
        plugin = self.type_plugin[ctx.descriptor.key]
        for guard in ctx.transition.guards:
            name = getattr(guard, "__name__", "guard")
            found += reasons(await call_guarded(plugin, f"guard {name}", guard, ctx=ctx))
        for _, result in await call_each(self.pm, "crmgraph_validate_transition", ctx=ctx):
            found += reasons(result)
        return found

    async def moves(
        self, db: Database, row: dict[str, Any], primary_kind: str | None = None
    ) -> list[Move]:
        """Every move from ``row``'s stage, with why it is refused now; ``row``
        and ``primary_kind`` as :meth:`context` takes them."""
        descriptor = self.catalog.customer_type(row["kind"])
        assert descriptor is not None
        result = []
        for transition in descriptor.lifecycle.transitions_from(row["stage"]):
            ctx = self.context(db, row, transition.to_stage, primary_kind=primary_kind)
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
        new_kind = ctx.primary_kind or customer.kind
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
        await writes.run_or_queue(
            db,
            "customer",
            "UPDATE customer SET kind = {}, version = version + 1, updated_at = {} "
            "WHERE id = {} AND version = {} AND deleted_at IS NULL",
            (new_kind, at, customer.pk, expected_version),
            (1, writes.version_conflict(None, expected_version)),
        )
        # a further role's stage is audited under its own name
        stage_field = "stage" if ctx.is_primary else f"roles.{customer.kind}.stage"
        changes = {stage_field: [ctx.from_stage, ctx.to_stage]}
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
                "primary": ctx.is_primary,
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
        await writes.run_or_queue(
            db,
            "customer_role",
            "UPDATE customer_role SET stage = {}, phase = {}, entered_at = {} "
            "WHERE customer = {} AND kind = {}",
            (to_stage, stage.phase.value, at, pk, kind),
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
