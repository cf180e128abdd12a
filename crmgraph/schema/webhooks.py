"""GraphQL for webhooks: the ``webhooks`` and ``webhook`` queries with each
webhook's delivery log, and ``createWebhook``, ``updateWebhook``,
``deleteWebhook`` and ``replayWebhookDelivery``, all for holders of
``webhook.manage`` (admins by default). Contributed by the built-in plugin
:mod:`crmgraph.plugins.webhooks` through ``crmgraph_graphql``; delivery itself
is :mod:`crmgraph.webhooks`.

Mutations follow the core's conventions (one ``input``, ``userErrors``, one
transaction); each is a short adapter over its operation in
:mod:`crmgraph.operations.webhooks`, which holds the rules. Webhooks are not
customer data, so their IDs (``Webhook:<pk>``, ``WebhookDelivery:<pk>``) are
not ``node`` IDs.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
from typing import Annotated, Any

import strawberry
from strawberry.types import Info

from crmgraph.operations import webhooks as ops
from crmgraph.schema import core_types as core
from crmgraph.schema.ids import encode_id
from crmgraph.schema.mutation_runner import actor_of
from crmgraph.schema.mutations import decode, given
from crmgraph.schema.mutations.common import Operation, no_rows, perform
from crmgraph.schema.pagination import (
    CURSOR,
    EDGES,
    NODE,
    NODES,
    PAGE_INFO,
    After,
    First,
    PageInfo,
    check_first,
    decode_cursor,
    encode_cursor,
)
from crmgraph.schema.pagination import page_info as make_page_info
from crmgraph.schema.user_errors import USER_ERRORS
from crmgraph.schema.webhook_loaders import DeliveryPageKey
from crmgraph.validation import Errors
from crmgraph.webhooks import (
    FAILED,
    PENDING,
    SUCCEEDED,
    event_types,
)


@strawberry.enum(description="Where a delivery stands.")
class WebhookDeliveryStatus(enum.Enum):
    PENDING = strawberry.enum_value(
        PENDING, description="Not delivered yet: waiting for its first request or a retry."
    )
    SUCCEEDED = strawberry.enum_value(SUCCEEDED, description="The receiver answered 2xx.")
    FAILED = strawberry.enum_value(
        FAILED,
        description="Given up after the last attempt; `replayWebhookDelivery` sends it again.",
    )


@strawberry.type(description="One HTTP request made for a delivery: a row of the delivery log.")
class WebhookAttempt:
    attempt: int = strawberry.field(description="1 for the first request of the delivery.")
    started_at: datetime.datetime = strawberry.field(description="When the request started (UTC).")
    duration_ms: int = strawberry.field(description="How long it took, in milliseconds.")
    status_code: int | None = strawberry.field(
        description="The receiver's HTTP status; null when no answer came (see `error`)."
    )
    error: str | None = strawberry.field(
        description="Why no answer came: connection refused, timed out, …"
    )
    response_body: str | None = strawberry.field(
        description="The first 1,000 characters of the receiver's answer."
    )
    next_retry_at: datetime.datetime | None = strawberry.field(
        description="When this failure was to be retried; null after a success or the last try."
    )

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> WebhookAttempt:
        # each field is the log's column of the same name
        return cls(**{field.name: row[field.name] for field in dataclasses.fields(cls)})


@strawberry.type(description="One event sent to one webhook, with every attempt made.")
class WebhookDelivery:
    id: strawberry.ID = strawberry.field(description="Global ID of the delivery.")
    event_id: strawberry.ID = strawberry.field(
        description="The outbox event's id, as sent in `X-Crmgraph-Event-Id`."
    )
    event_type: str = strawberry.field(description="The event's type, e.g. `customer.updated`.")
    customer_id: strawberry.ID | None = strawberry.field(
        description="Global ID of the customer the event is about; null for an event about none."
    )
    status: WebhookDeliveryStatus = strawberry.field(description="Where the delivery stands.")
    attempt_count: int = strawberry.field(description="Requests made so far.")
    next_attempt_at: datetime.datetime | None = strawberry.field(
        description="When the next try is due (null unless PENDING)."
    )
    last_status_code: int | None = strawberry.field(
        description="The HTTP status of the last attempt; null: no answer (or none yet)."
    )
    last_error: str | None = strawberry.field(
        description='The last failure: "HTTP 500", a connection error, a timeout.'
    )
    created_at: datetime.datetime = strawberry.field(
        description="When the delivery was queued (UTC)."
    )
    updated_at: datetime.datetime = strawberry.field(description="When it last changed (UTC).")
    delivered_at: datetime.datetime | None = strawberry.field(
        description="When the receiver accepted it (UTC); null: not yet."
    )
    pk: strawberry.Private[int]

    @strawberry.field(description="The log, first attempt first.")
    async def attempts(self, info: Info) -> list[WebhookAttempt]:
        rows = await info.context.loaders.webhooks.attempts.load(self.pk)
        return [WebhookAttempt.from_row(row) for row in rows]

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> WebhookDelivery:
        return cls(
            id=strawberry.ID(encode_id("WebhookDelivery", row["id"])),
            event_id=strawberry.ID(str(row["event"])),
            event_type=row["event_type"],
            customer_id=strawberry.ID(encode_id("Customer", row["customer"]))
            if row["customer"]
            else None,
            status=WebhookDeliveryStatus(row["status"]),
            attempt_count=row["attempts"],
            next_attempt_at=row["next_attempt_at"] if row["status"] == PENDING else None,
            last_status_code=row["last_status_code"],
            last_error=row["last_error"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            delivered_at=row["delivered_at"],
            pk=row["id"],
        )


@strawberry.type(description="One delivery of a page and its cursor.")
class WebhookDeliveryEdge:
    cursor: str = strawberry.field(description=CURSOR)
    node: WebhookDelivery = strawberry.field(description=NODE)


@strawberry.type(description="A webhook's deliveries, newest first.")
class WebhookDeliveryConnection:
    edges: list[WebhookDeliveryEdge] = strawberry.field(description=EDGES)
    page_info: PageInfo = strawberry.field(description=PAGE_INFO)

    @strawberry.field(description=NODES)
    def nodes(self) -> list[WebhookDelivery]:
        return [edge.node for edge in self.edges]


@strawberry.type(
    description="An HTTP endpoint that receives outbox events, signed with its secret "
    "(see docs/live-events-and-webhooks.md, Webhooks, for the headers and the signature)."
)
class Webhook:
    id: strawberry.ID = strawberry.field(description="Global ID of the webhook.")
    url: str = strawberry.field(description="Where events are POSTed.")
    description: str | None = strawberry.field(description="What it is for, as its creator said.")
    event_types: list[str] = strawberry.field(
        description='Types received: exact ("customer.created"), a prefix ("customer.*") or "*".'
    )
    active: bool = strawberry.field(description="Inactive webhooks receive nothing.")
    disabled_at: datetime.datetime | None = strawberry.field(
        description="When it was disabled (UTC; `disabledReason` says why); null: not disabled."
    )
    disabled_reason: str | None = strawberry.field(
        description="Why it was disabled automatically (null when active or disabled by hand)."
    )
    consecutive_failures: int = strawberry.field(
        description="Failed deliveries since the last success; at the configured limit "
        "(CRMGRAPH_WEBHOOK_DISABLE_AFTER) the webhook is disabled."
    )
    secret_hint: str = strawberry.field(
        description="The secret's last four characters; the secret itself is shown once, "
        "by createWebhook (or updateWebhook when it is replaced)."
    )
    created_at: datetime.datetime = strawberry.field(description="When it was created (UTC).")
    updated_at: datetime.datetime = strawberry.field(description="When it last changed (UTC).")
    pk: strawberry.Private[int]

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Webhook:
        return cls(
            id=strawberry.ID(encode_id("Webhook", row["id"])),
            url=row["url"],
            description=row["description"],
            event_types=event_types(row["event_types"]),
            active=bool(row["active"]),
            disabled_at=row["disabled_at"],
            disabled_reason=row["disabled_reason"],
            consecutive_failures=row["consecutive_failures"],
            secret_hint="…" + row["secret"][-4:],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            pk=row["id"],
        )

    @strawberry.field(description="The delivery log, newest delivery first.")
    async def deliveries(
        self,
        info: Info,
        first: First = 20,
        after: After = None,
        status: Annotated[
            WebhookDeliveryStatus | None,
            strawberry.argument(description="Only deliveries in this state (default: all)."),
        ] = None,
    ) -> WebhookDeliveryConnection:
        settings = info.context.settings
        limit = check_first(first, settings.default_page_size, settings.max_page_size)
        before = decode_cursor(after, "webhook_delivery", timestamp=False)[1] if after else None
        # every webhook listed loads its page in the same statement
        key = DeliveryPageKey(self.pk, limit + 1, status.value if status else None, before)
        rows = await info.context.loaders.webhooks.deliveries.load(key)
        edges = [
            WebhookDeliveryEdge(
                cursor=encode_cursor("webhook_delivery", None, row["id"]),
                node=WebhookDelivery.from_row(row),
            )
            for row in rows[:limit]
        ]
        return WebhookDeliveryConnection(
            edges=edges, page_info=make_page_info(edges, len(rows) > limit, after)
        )


@strawberry.type
class WebhookQuery:
    @strawberry.field(description="Webhook subscriptions, oldest first (needs webhook.manage).")
    async def webhooks(self, info: Info) -> list[Webhook]:
        rows = await ops.webhooks(info.context.db, actor_of(info))
        return [Webhook.from_row(row) for row in rows]

    @strawberry.field(description="One webhook by ID (needs webhook.manage).")
    async def webhook(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="The webhook's global ID.")],
    ) -> Webhook | None:
        row = await ops.webhook(info.context.db, actor_of(info), str(id))
        return Webhook.from_row(row) if row else None


@strawberry.input(
    description="A new webhook: events of the given types POSTed to a URL, signed with a secret."
)
class CreateWebhookInput:
    url: str = strawberry.field(description="An absolute http:// or https:// URL.")
    event_types: list[str] = strawberry.field(
        description='Event types to receive: "customer.created", "customer.*", or "*" for all.'
    )
    secret: str | None = strawberry.field(
        default=None,
        description="16 to 200 characters; generated when left out. Shown once, in the payload.",
    )
    description: str | None = strawberry.field(default=None, description="What it is for.")
    active: bool = strawberry.field(
        default=True, description="Whether it receives events from now on."
    )


@strawberry.input(description="Change a webhook: fields left out stay as they are.")
class UpdateWebhookInput:
    id: strawberry.ID = strawberry.field(description="The webhook's global ID.")
    url: str | None = strawberry.field(
        default=strawberry.UNSET, description="An absolute http:// or https:// URL."
    )
    event_types: list[str] | None = strawberry.field(
        default=strawberry.UNSET,
        description="Event types to receive (`*` patterns allowed, e.g. `customer.*`).",
    )
    description: str | None = strawberry.field(
        default=strawberry.UNSET, description="What it is for; null clears it."
    )
    active: bool | None = strawberry.field(
        default=strawberry.UNSET,
        description="true re-enables a disabled webhook (clearing its failure count and "
        "reason); its pending deliveries resume.",
    )
    secret: str | None = strawberry.field(
        default=strawberry.UNSET,
        description="A new secret (16 to 200 characters); null generates one. Shown once, "
        "in the payload.",
    )


@strawberry.input(description="Delete a webhook: it receives nothing more.")
class DeleteWebhookInput:
    id: strawberry.ID = strawberry.field(description="The webhook's global ID.")


@strawberry.input(description="Send a delivery's event again, as a new delivery.")
class ReplayWebhookDeliveryInput:
    id: strawberry.ID = strawberry.field(description="A delivery that is not pending.")


@strawberry.type(description="The result of `createWebhook`.")
class CreateWebhookPayload:
    webhook: Webhook | None = strawberry.field(description="The new webhook; null when refused.")
    secret: str | None = strawberry.field(
        description="The signing secret: store it now, it is not shown again."
    )
    user_errors: list[core.UserError] = strawberry.field(description=USER_ERRORS)


@strawberry.type(description="The result of `updateWebhook`.")
class UpdateWebhookPayload:
    webhook: Webhook | None = strawberry.field(
        description="The webhook as changed; null when refused."
    )
    secret: str | None = strawberry.field(description="The new secret, when it was replaced.")
    user_errors: list[core.UserError] = strawberry.field(description=USER_ERRORS)


@strawberry.type(description="The result of `deleteWebhook`.")
class DeleteWebhookPayload:
    deleted_id: strawberry.ID | None = strawberry.field(
        description="Global ID of the webhook deleted; null when refused."
    )
    user_errors: list[core.UserError] = strawberry.field(description=USER_ERRORS)


@strawberry.type(description="The result of `replayWebhookDelivery`.")
class ReplayWebhookDeliveryPayload:
    delivery: WebhookDelivery | None = strawberry.field(
        description="The new delivery, pending; null when refused."
    )
    user_errors: list[core.UserError] = strawberry.field(description=USER_ERRORS)


async def webhook_payload(
    info: Info, operation: Operation[Any, ops.WrittenWebhook], data: Any, payload: type
) -> Any:
    """Create or change a webhook: the payload shows it and the secret this
    write set, or neither and the operation's problems."""
    done, problems = await perform(info, info.context.catalog, operation, data, no_rows)
    return payload(
        webhook=Webhook.from_row(done.row) if done else None,
        secret=done.secret if done else None,
        user_errors=problems,
    )


@strawberry.type
class WebhookMutation:
    @strawberry.mutation(description="Subscribe a URL to events (needs webhook.manage).")
    async def create_webhook(self, info: Info, input: CreateWebhookInput) -> CreateWebhookPayload:
        new = ops.NewWebhook(
            input.url, input.event_types, input.secret, input.description, input.active
        )
        return await webhook_payload(info, ops.create_webhook, new, CreateWebhookPayload)

    @strawberry.mutation(description="Change a webhook; true for `active` re-enables it.")
    async def update_webhook(self, info: Info, input: UpdateWebhookInput) -> UpdateWebhookPayload:
        errors = Errors()
        pk = decode(errors, "id", input.id, "Webhook")
        sent = {name: value for name, value in vars(input).items() if name != "id" and given(value)}
        change = ops.WebhookChange(pk, sent, errors.problems)
        return await webhook_payload(info, ops.update_webhook, change, UpdateWebhookPayload)

    @strawberry.mutation(description="Delete a webhook with its delivery log.")
    async def delete_webhook(self, info: Info, input: DeleteWebhookInput) -> DeleteWebhookPayload:
        errors = Errors()
        target = ops.Target(decode(errors, "id", input.id, "Webhook"), errors.problems)
        done, problems = await perform(
            info, info.context.catalog, ops.delete_webhook, target, no_rows
        )
        return DeleteWebhookPayload(
            deleted_id=input.id if done is not None else None,
            user_errors=problems,
        )

    @strawberry.mutation(
        description="Send a delivery that failed (or succeeded) again, with a fresh set of "
        "retries; the deliverer picks it up at once."
    )
    async def replay_webhook_delivery(
        self, info: Info, input: ReplayWebhookDeliveryInput
    ) -> ReplayWebhookDeliveryPayload:
        errors = Errors()
        target = ops.Target(decode(errors, "id", input.id, "WebhookDelivery"), errors.problems)
        row, problems = await perform(
            info, info.context.catalog, ops.replay_delivery, target, no_rows
        )
        delivery = WebhookDelivery.from_row(row) if row is not None else None
        return ReplayWebhookDeliveryPayload(delivery=delivery, user_errors=problems)
