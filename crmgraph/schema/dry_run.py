"""``dryRun: true`` on every mutation, the core's and the plugins' alike, and
the ``preview`` its payload answers with.

One place decides it for every mutation: :func:`add_dry_run_fields` gives
each mutation's input type a ``dryRun`` field and each payload type a
``preview`` field once the schema is built (plugins' mutations included:
their inputs and payloads need declare nothing), and
:class:`DryRunExecutor`, the executor of every operation (HTTP and
WebSocket alike), runs a root mutation field sent with ``dryRun: true``
inside :func:`crmgraph.db.dry_run.rolled_back`. The resolvers never see
the field (strawberry builds an input object from the fields it declared),
so a dry run runs the very code a real call runs.

Every ``Database.run_transaction`` the field runs joins the dry run's
transaction (as any transaction inside an outer one does), so a write runs
its own code unchanged; what that costs is its retry: a dry run that loses a
PostgreSQL deadlock is not run again, the field answers an error. A refused
write leaves what it wrote before refusing in the transaction until the
rollback; its payload shows no node and its ``preview`` is empty.

The payload problem, and the choice made: a payload's fields are resolved
after its resolver returns, many of them by loaders reading the database
(a customer's contacts, roles, stage history, a plugin's fields). Priming
the loaders with rows captured before the rollback would cover only the
loaders someone thought of. Instead the transaction covers the whole field,
its resolver *and* the completion of everything selected under it: every
loader, the core's and a plugin's, reads inside the transaction, so the
payload is exactly the one the real call answers, and ``preview`` reads the
audit entries and events back from the tables before the rollback. While a
dry run's field completes, its statements share the transaction's one
connection (the engine sends them one at a time). The request's loaders are
dropped after the rollback: rows they cached were never committed, and a
later field of the same request must not see them.
"""

from __future__ import annotations

from typing import Any

import strawberry
from graphql import (
    GraphQLBoolean,
    GraphQLField,
    GraphQLInputField,
    GraphQLInputObjectType,
    GraphQLObjectType,
    GraphQLSchema,
    get_named_type,
)
from graphql.execution.values import get_argument_values
from strawberry.scalars import JSON
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from crmgraph.db import dry_run
from crmgraph.db.queries import load_json
from crmgraph.idempotency import MUTATIONS_RAN
from crmgraph.ids import encode_id
from crmgraph.schema.core_types import AuditEntry

DRY_RUN_FIELD = "dryRun"
PREVIEW_FIELD = "preview"
DRY_RUN_DESCRIPTION = (
    "Preview the change: run everything a real call runs (validation, guards, plugin "
    "hooks, the writes) in a transaction that is then rolled back, and answer with the "
    "payload as it would be and its `preview`. Nothing is kept: no event, webhook or "
    "subscription message follows, an `Idempotency-Key` stays unused."
)
PREVIEW_DESCRIPTION = (
    "`dryRun: true`: the audit entries and events this mutation would have written "
    "(empty lists when it was refused); null on a real call."
)


@strawberry.type(description="An event a dry run would have written to the outbox.")
class PreviewEvent:
    type: str = strawberry.field(description="The event type, e.g. `customer.updated`.")
    customer_id: strawberry.ID | None = strawberry.field(
        description="Global ID of the customer the event is about, if any."
    )
    payload: JSON = strawberry.field(
        description="The event's data, as handlers, subscriptions and webhooks would get it."
    )


@strawberry.type(description="What a mutation sent with `dryRun: true` would have written.")
class DryRunPreview:
    audit_entries: list[AuditEntry] = strawberry.field(
        description="The audit entries, in the order they would have been written."
    )
    events: list[PreviewEvent] = strawberry.field(
        description="The outbox events, in the order they would have been written."
    )


def event_of(row: dict[str, Any]) -> PreviewEvent:
    customer = row["customer"]
    return PreviewEvent(
        type=row["type"],
        customer_id=strawberry.ID(encode_id("Customer", customer)) if customer else None,
        payload=load_json(row["payload"]),
    )


async def resolve_preview(source: Any, info: Any) -> DryRunPreview | None:
    """The payload's ``preview``: read in the dry run's transaction, which is
    still open while the payload completes (nothing of a refused one)."""
    run = dry_run.active()
    if run is None:
        return None
    if getattr(source, "user_errors", None):
        return DryRunPreview(audit_entries=[], events=[])
    readable = info.context.access.readable_change
    return DryRunPreview(
        audit_entries=[AuditEntry.from_row(r, readable) for r in await run.written("audit_entry")],
        events=[event_of(row) for row in await run.written("event")],
    )


def add_dry_run_fields(schema: GraphQLSchema) -> None:
    """``dryRun`` on the input of every mutation (its one ``input`` argument)
    and ``preview`` on every payload (a mutation's object type with
    ``userErrors``)."""
    mutation = schema.mutation_type
    if mutation is None:
        return
    preview = schema.type_map[DryRunPreview.__name__]
    assert isinstance(preview, GraphQLObjectType)
    for field in mutation.fields.values():
        argument = field.args.get("input")
        if argument is not None:
            add_dry_run_input(get_named_type(argument.type))
        payload = get_named_type(field.type)
        if isinstance(payload, GraphQLObjectType) and "userErrors" in payload.fields:
            payload.fields.setdefault(
                PREVIEW_FIELD,
                GraphQLField(preview, resolve=resolve_preview, description=PREVIEW_DESCRIPTION),
            )


def add_dry_run_input(input_type: Any) -> None:
    if isinstance(input_type, GraphQLInputObjectType):
        input_type.fields.setdefault(
            DRY_RUN_FIELD,
            GraphQLInputField(GraphQLBoolean, default_value=False, description=DRY_RUN_DESCRIPTION),
        )


def asks_dry_run(field: GraphQLField, node: Any, variables: Any) -> bool:
    """Whether a mutation field's ``input`` says ``dryRun: true`` (False when
    its arguments do not coerce: the field's own execution reports that)."""
    if "input" not in field.args:
        return False
    try:
        values = get_argument_values(field, node, variables)
    except Exception:  # reported where the field executes
        return False
    given = values.get("input")
    return isinstance(given, dict) and given.get(DRY_RUN_FIELD) is True


class DryRunExecutor(StrawberryGraphQLCoreExecutionContext):
    """Runs a root mutation field sent with ``dryRun: true`` (its resolver and
    the completion of its selection) in a rolled-back transaction."""

    def execute_field(self, parent_type: Any, source: Any, details: Any, *rest: Any) -> Any:
        node = details[0].node
        if parent_type is not self.schema.mutation_type or node.name.value.startswith("__"):
            return super().execute_field(parent_type, source, details, *rest)
        field = self.schema.get_field(parent_type, node.name.value)
        dry = field is not None and asks_dry_run(field, node, self.variable_values)
        self.note_mutation("dry" if dry else "real")
        if not dry:
            return super().execute_field(parent_type, source, details, *rest)
        return self.dry_field(parent_type, source, details, *rest)

    def note_mutation(self, kind: str) -> None:
        """Tell the ``Idempotency-Key`` middleware (same request scope) that a
        mutation field of this ``kind`` ran: dry runs alone leave the key unused."""
        scope = getattr(getattr(self.context_value, "request", None), "scope", None)
        if isinstance(scope, dict):
            scope.setdefault("state", {}).setdefault(MUTATIONS_RAN, set()).add(kind)

    async def dry_field(self, *args: Any) -> Any:
        context = self.context_value
        try:
            async with dry_run.rolled_back(context.db):
                result = super().execute_field(*args)
                if self.is_awaitable(result):
                    result = await result
        finally:
            # rows the request's loaders cached were never committed
            context.__dict__.pop("loaders", None)
        return result
