"""GraphQL for webhooks: the ``webhooks`` and ``webhook`` queries with each
webhook's delivery log, and ``createWebhook``, ``updateWebhook``,
``deleteWebhook`` and ``replayWebhookDelivery``, all for holders of
``webhook.manage`` (admins by default). Contributed by the built-in plugin
:mod:`crmgraph.plugins.webhooks` through ``crmgraph_graphql``; delivery itself
is :mod:`crmgraph.webhooks`.

Mutations follow the core's conventions (one ``input``, ``userErrors``, one
transaction through :func:`crmgraph.schema.mutations.run_write`). Webhooks are
not customer data, so their IDs (``Webhook:<pk>``, ``WebhookDelivery:<pk>``)
are not ``node`` IDs and their changes write no outbox event (a webhook about
webhooks would feed itself); they do leave audit entries.
"""

from __future__ import annotations

import datetime
import enum
from typing import Any

import httpx
import orjson
import strawberry
from strawberry.types import Info

from crmgraph.access import forbidden
from crmgraph.db import writes
from crmgraph.schema import core_types as core
from crmgraph.schema.ids import InvalidId, decode_id, encode_id
from crmgraph.schema.mutations import decode, given, run_write
from crmgraph.schema.pagination import PageInfo, check_first, decode_cursor, encode_cursor
from crmgraph.schema.pagination import page_info as make_page_info
from crmgraph.schema.webhook_loaders import DeliveryPageKey
from crmgraph.validation import Errors, UserInputError
from crmgraph.webhooks import (
    EVENT_TYPE_PATTERN,
    FAILED,
    PENDING,
    SUCCEEDED,
    WEBHOOK_MANAGE,
    event_types,
    new_secret,
)

MAX_URL_LENGTH = 2000
MAX_EVENT_TYPES = 50
SECRET_LENGTHS = (16, 200)


def require_manage(info: Info) -> None:
    if not info.context.access.can(WEBHOOK_MANAGE):
        raise forbidden(WEBHOOK_MANAGE, "manage webhooks")


@strawberry.enum(description="Where a delivery stands.")
class WebhookDeliveryStatus(enum.Enum):
    PENDING = PENDING
    SUCCEEDED = SUCCEEDED
    FAILED = FAILED


@strawberry.type(description="One HTTP request made for a delivery: a row of the delivery log.")
class WebhookAttempt:
    attempt: int = strawberry.field(description="1 for the first request of the delivery.")
    started_at: datetime.datetime
    duration_ms: int
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
        return cls(
            attempt=row["attempt"],
            started_at=row["started_at"],
            duration_ms=row["duration_ms"],
            status_code=row["status_code"],
            error=row["error"],
            response_body=row["response_body"],
            next_retry_at=row["next_retry_at"],
        )


@strawberry.type(description="One event sent to one webhook, with every attempt made.")
class WebhookDelivery:
    id: strawberry.ID
    event_id: strawberry.ID = strawberry.field(
        description="The outbox event's id, as sent in `X-Crmgraph-Event-Id`."
    )
    event_type: str
    customer_id: strawberry.ID | None
    status: WebhookDeliveryStatus
    attempt_count: int = strawberry.field(description="Requests made so far.")
    next_attempt_at: datetime.datetime | None = strawberry.field(
        description="When the next try is due (null unless PENDING)."
    )
    last_status_code: int | None
    last_error: str | None = strawberry.field(
        description='The last failure: "HTTP 500", a connection error, a timeout.'
    )
    created_at: datetime.datetime
    updated_at: datetime.datetime
    delivered_at: datetime.datetime | None
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


@strawberry.type
class WebhookDeliveryEdge:
    cursor: str
    node: WebhookDelivery


@strawberry.type(description="A webhook's deliveries, newest first.")
class WebhookDeliveryConnection:
    edges: list[WebhookDeliveryEdge]
    page_info: PageInfo

    @strawberry.field
    def nodes(self) -> list[WebhookDelivery]:
        return [edge.node for edge in self.edges]


@strawberry.type(
    description="An HTTP endpoint that receives outbox events, signed with its secret "
    "(see docs/live-events-and-webhooks.md, Webhooks, for the headers and the signature)."
)
class Webhook:
    id: strawberry.ID
    url: str
    description: str | None
    event_types: list[str] = strawberry.field(
        description='Types received: exact ("customer.created"), a prefix ("customer.*") or "*".'
    )
    active: bool = strawberry.field(description="Inactive webhooks receive nothing.")
    disabled_at: datetime.datetime | None
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
    created_at: datetime.datetime
    updated_at: datetime.datetime
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
        first: int | None = 20,
        after: str | None = None,
        status: WebhookDeliveryStatus | None = None,
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
        require_manage(info)
        rows = await info.context.db.fetch("SELECT * FROM webhook ORDER BY id")
        return [Webhook.from_row(row) for row in rows]

    @strawberry.field(description="One webhook by ID (needs webhook.manage).")
    async def webhook(self, info: Info, id: strawberry.ID) -> Webhook | None:
        require_manage(info)
        try:
            pk = decode_id(id, "Webhook")[1]
        except InvalidId:
            return None
        rows = await info.context.db.fetch("SELECT * FROM webhook WHERE id = {}", pk)
        return Webhook.from_row(rows[0]) if rows else None


@strawberry.input
class CreateWebhookInput:
    url: str = strawberry.field(description="An absolute http:// or https:// URL.")
    event_types: list[str] = strawberry.field(
        description='Event types to receive: "customer.created", "customer.*", or "*" for all.'
    )
    secret: str | None = strawberry.field(
        default=None,
        description="16 to 200 characters; generated when left out. Shown once, in the payload.",
    )
    description: str | None = None
    active: bool = True


@strawberry.input
class UpdateWebhookInput:
    id: strawberry.ID
    url: str | None = strawberry.UNSET
    event_types: list[str] | None = strawberry.UNSET
    description: str | None = strawberry.UNSET
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


@strawberry.input
class DeleteWebhookInput:
    id: strawberry.ID


@strawberry.input
class ReplayWebhookDeliveryInput:
    id: strawberry.ID = strawberry.field(description="A delivery that is not pending.")


@strawberry.type
class CreateWebhookPayload:
    webhook: Webhook | None
    secret: str | None = strawberry.field(
        description="The signing secret: store it now, it is not shown again."
    )
    user_errors: list[core.UserError]


@strawberry.type
class UpdateWebhookPayload:
    webhook: Webhook | None
    secret: str | None = strawberry.field(description="The new secret, when it was replaced.")
    user_errors: list[core.UserError]


@strawberry.type
class DeleteWebhookPayload:
    deleted_id: strawberry.ID | None
    user_errors: list[core.UserError]


@strawberry.type
class ReplayWebhookDeliveryPayload:
    delivery: WebhookDelivery | None
    user_errors: list[core.UserError]


def check_url(errors: Errors, value: str) -> str | None:
    cleaned = value.strip()
    if not cleaned:
        errors.add("url", "url is required", "REQUIRED")
        return None
    if len(cleaned) > MAX_URL_LENGTH:
        errors.add("url", f"url must be at most {MAX_URL_LENGTH} characters", "TOO_LONG")
        return None
    try:
        url = httpx.URL(cleaned)
    except (httpx.InvalidURL, ValueError):
        url = None
    if (
        url is None
        or url.scheme not in ("http", "https")
        or not url.host
        or any(c.isspace() or ord(c) < 32 for c in cleaned)
    ):
        errors.add("url", "url must be an absolute http:// or https:// URL", "INVALID")
        return None
    return cleaned


def check_event_types(errors: Errors, values: list[str]) -> list[str] | None:
    cleaned = sorted({value.strip() for value in values})
    if not cleaned:
        errors.add("eventTypes", 'give at least one event type, or "*" for all', "REQUIRED")
        return None
    if len(cleaned) > MAX_EVENT_TYPES:
        errors.add("eventTypes", f"at most {MAX_EVENT_TYPES} event types", "OUT_OF_RANGE")
        return None
    bad = [value for value in cleaned if len(value) > 100 or not EVENT_TYPE_PATTERN.match(value)]
    for value in bad:
        errors.add(
            "eventTypes",
            f"{value!r} is not an event type: use lower-case dotted names "
            '("customer.created"), a prefix ("customer.*") or "*"',
            "INVALID",
        )
    return None if bad else cleaned


def check_secret(errors: Errors, value: str | None) -> str:
    if value is None:
        return new_secret()
    low, high = SECRET_LENGTHS
    if not low <= len(value) <= high or "\x00" in value:
        errors.add("secret", f"secret must be {low} to {high} characters", "INVALID")
    return value


def check_description(errors: Errors, value: str | None) -> str | None:
    cleaned = (value or "").strip() or None
    if cleaned and len(cleaned) > 200:
        errors.add("description", "description must be at most 200 characters", "TOO_LONG")
    if cleaned and "\x00" in cleaned:
        errors.add("description", "description must not contain NUL characters", "INVALID")
    return cleaned


async def webhook_row(info: Info, pk: int | None, field: str = "id") -> dict[str, Any]:
    rows = await info.context.db.fetch("SELECT * FROM webhook WHERE id = {}", pk) if pk else []
    if not rows:
        raise UserInputError.single(field, "webhook not found", "NOT_FOUND")
    return rows[0]


def audited(values: dict[str, Any]) -> dict[str, Any]:
    """What an audit entry keeps of a webhook's fields: never the secret."""
    shown = {k: v for k, v in values.items() if k != "secret"}
    if "secret" in values:
        shown["secret"] = "(replaced)"
    return shown


def no_rows(pk: int) -> list[tuple[str, Any]]:
    return []  # the payloads read their rows in the write's transaction themselves


@strawberry.type
class WebhookMutation:
    @strawberry.mutation(description="Subscribe a URL to events (needs webhook.manage).")
    async def create_webhook(self, info: Info, input: CreateWebhookInput) -> CreateWebhookPayload:
        errors = Errors()
        url = check_url(errors, input.url)
        types = check_event_types(errors, input.event_types)
        secret = check_secret(errors, input.secret)
        description = check_description(errors, input.description)
        written: dict[str, Any] = {}

        async def work() -> int:
            db, at = info.context.db, writes.now()
            values = {
                "url": url,
                "description": description,
                "event_types": orjson.dumps(types).decode(),
                "secret": secret,
                "active": input.active,
                "created_by": info.context.principal.user_id,
                "created_at": at,
                "updated_at": at,
            }
            pk = await writes.insert(db, "webhook", values)
            changes = writes.field_changes(None, audited({**values, "event_types": types}))
            await writes.audit(db, "webhook.created", "webhook", pk, None, changes)
            written.update(await webhook_row(info, pk))
            return pk

        pk, problems = await run_write(info, errors, work, WEBHOOK_MANAGE, no_rows)
        return CreateWebhookPayload(
            webhook=Webhook.from_row(written) if pk else None,
            secret=secret if pk else None,
            user_errors=problems,
        )

    @strawberry.mutation(description="Change a webhook; true for `active` re-enables it.")
    async def update_webhook(self, info: Info, input: UpdateWebhookInput) -> UpdateWebhookPayload:
        errors = Errors()
        pk = decode(errors, "id", input.id, "Webhook")
        values: dict[str, Any] = {}
        if given(input.url):
            if input.url is None:
                errors.add("url", "url cannot be cleared", "REQUIRED")
            else:
                values["url"] = check_url(errors, input.url)
        if given(input.event_types):
            types = check_event_types(errors, input.event_types or [])
            values["event_types"] = orjson.dumps(types).decode()
        if given(input.description):
            values["description"] = check_description(errors, input.description)
        if given(input.active):
            if input.active is None:
                errors.add("active", "active is true or false", "REQUIRED")
            values["active"] = bool(input.active)
        if given(input.secret):
            values["secret"] = check_secret(errors, input.secret)
        written: dict[str, Any] = {}

        async def work() -> int:
            db, at = info.context.db, writes.now()
            before = await webhook_row(info, pk)
            changes = dict(values)
            if changes.get("active") and not before["active"]:
                # re-enabled: failures so far no longer count towards disabling
                changes |= {"consecutive_failures": 0, "disabled_at": None, "disabled_reason": None}
            elif changes.get("active") is False and before["active"]:
                changes |= {"disabled_at": at, "disabled_reason": None}
            await writes.update_row(db, "webhook", before["id"], {**changes, "updated_at": at})
            shown = {k: v for k, v in before.items() if k in changes}
            await writes.audit(
                db,
                "webhook.updated",
                "webhook",
                before["id"],
                None,
                writes.field_changes(audited(shown), audited(changes)),
            )
            written.update(await webhook_row(info, before["id"]))
            return before["id"]

        done, problems = await run_write(info, errors, work, WEBHOOK_MANAGE, no_rows)
        return UpdateWebhookPayload(
            webhook=Webhook.from_row(written) if done else None,
            secret=values.get("secret") if done else None,
            user_errors=problems,
        )

    @strawberry.mutation(description="Delete a webhook with its delivery log.")
    async def delete_webhook(self, info: Info, input: DeleteWebhookInput) -> DeleteWebhookPayload:
        errors = Errors()
        pk = decode(errors, "id", input.id, "Webhook")

        async def work() -> int:
            db = info.context.db
            before = await webhook_row(info, pk)
            # its deliveries and their attempts go with it (ON DELETE CASCADE)
            await db.fetch("DELETE FROM webhook WHERE id = {}", before["id"])
            shown = audited({"url": before["url"], "active": bool(before["active"])})
            changes = {name: [writes.jsonable(value), None] for name, value in shown.items()}
            await writes.audit(db, "webhook.deleted", "webhook", before["id"], None, changes)
            return before["id"]

        done, problems = await run_write(info, errors, work, WEBHOOK_MANAGE, no_rows)
        return DeleteWebhookPayload(
            deleted_id=input.id if done else None,  # type: ignore[arg-type]
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
        pk = decode(errors, "id", input.id, "WebhookDelivery")
        written: list[dict[str, Any]] = []

        async def work() -> int:
            db, at = info.context.db, writes.now()
            rows = await db.fetch(
                "SELECT d.id, d.status, w.active FROM webhook_delivery d "
                "JOIN webhook w ON w.id = d.webhook WHERE d.id = {}",
                pk,
            )
            if not rows:
                raise UserInputError.single("id", "delivery not found", "NOT_FOUND")
            if rows[0]["status"] == PENDING:
                raise UserInputError.single(
                    "id", "the delivery is still pending: it is retried on its own", "INVALID"
                )
            if not rows[0]["active"]:
                raise UserInputError.single(
                    "id", "the webhook is disabled: enable it (updateWebhook) first", "INVALID"
                )
            # a fresh round of retries; the attempt numbers in the log go on
            await db.fetch(
                "UPDATE webhook_delivery SET status = {}, round_start = attempts, "
                "next_attempt_at = {}, locked_until = NULL, claim = NULL, updated_at = {} "
                "WHERE id = {}",
                PENDING,
                at,
                at,
                pk,
            )
            await writes.audit(
                db,
                "webhook.delivery_replayed",
                "webhook_delivery",
                pk,  # type: ignore[arg-type]
                None,
                {"status": [rows[0]["status"], PENDING]},
            )
            written.extend(await db.fetch("SELECT * FROM webhook_delivery WHERE id = {}", pk))
            return pk  # type: ignore[return-value]

        done, problems = await run_write(info, errors, work, WEBHOOK_MANAGE, no_rows)
        delivery = WebhookDelivery.from_row(written[0]) if done else None
        return ReplayWebhookDeliveryPayload(delivery=delivery, user_errors=problems)
