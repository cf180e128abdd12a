"""Managing webhook subscriptions: list and read webhooks, create, change and
delete one, and replay one of its deliveries, for holders of ``webhook.manage``.

Webhooks are not customer data: their changes leave audit entries (never the
secret) but write no outbox event (a webhook about webhooks would feed
itself). Delivery itself is :mod:`crmgraph.webhooks`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import pluggy

from crmgraph.access import forbidden
from crmgraph.db import writes
from crmgraph.db.engine import Database
from crmgraph.ids import InvalidId, decode_id
from crmgraph.operations.actor import Actor
from crmgraph.operations.runner import Then, nothing, run_showing, run_write
from crmgraph.registry import Catalog
from crmgraph.validation import Errors, Problem, UserInputError
from crmgraph.webhooks import EVENT_TYPE_PATTERN, PENDING, WEBHOOK_MANAGE, new_secret

MAX_URL_LENGTH = 2000
MAX_EVENT_TYPES = 50
SECRET_LENGTHS = (16, 200)


@dataclass
class NewWebhook:
    """A subscription to create; ``secret`` None: one is generated."""

    url: str
    event_types: Sequence[str]
    secret: str | None = None
    description: str | None = None
    active: bool = True
    problems: Sequence[Problem] = ()


@dataclass
class WebhookChange:
    """Fields to change on webhook ``pk``: only those in ``fields`` (``url``,
    ``event_types``, ``description``, ``active``, ``secret``; a null secret
    generates one)."""

    pk: int | None
    fields: Mapping[str, Any] = field(default_factory=dict)
    problems: Sequence[Problem] = ()


@dataclass
class Target:
    """The webhook (or delivery) ``pk`` a write applies to; ``problems``: the
    input's found before (an ID that is not valid)."""

    pk: int | None
    problems: Sequence[Problem] = ()


@dataclass
class WrittenWebhook:
    """The webhook row as the write left it, and the secret when this write
    set it (shown once)."""

    row: dict[str, Any]
    secret: str | None


def row_pk(row: Mapping[str, Any]) -> int:
    return int(row["id"])


def written_pk(written: WrittenWebhook) -> int:
    return row_pk(written.row)


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


def check_event_types(errors: Errors, values: Sequence[str]) -> list[str] | None:
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


def change_values(errors: Errors, sent: Mapping[str, Any]) -> dict[str, Any]:
    """The columns a change writes, checked in the input's field order."""
    values: dict[str, Any] = {}
    if "url" in sent:
        if sent["url"] is None:
            errors.add("url", "url cannot be cleared", "REQUIRED")
        else:
            values["url"] = check_url(errors, sent["url"])
    if "event_types" in sent:
        types = check_event_types(errors, sent["event_types"] or [])
        values["event_types"] = orjson.dumps(types).decode()
    if "description" in sent:
        values["description"] = check_description(errors, sent["description"])
    if "active" in sent:
        if sent["active"] is None:
            errors.add("active", "active is true or false", "REQUIRED")
        values["active"] = bool(sent["active"])
    if "secret" in sent:
        values["secret"] = check_secret(errors, sent["secret"])
    return values


async def webhook_row(db: Database, pk: int | None, field: str = "id") -> dict[str, Any]:
    """Webhook ``pk``'s row (NOT_FOUND on ``field`` without one)."""
    rows = await db.fetch("SELECT * FROM webhook WHERE id = {}", pk) if pk else []
    if not rows:
        raise UserInputError.single(field, "webhook not found", "NOT_FOUND")
    return rows[0]


def audited(values: Mapping[str, Any]) -> dict[str, Any]:
    """What an audit entry keeps of a webhook's fields: never the secret."""
    shown = {k: v for k, v in values.items() if k != "secret"}
    if "secret" in values:
        shown["secret"] = "(replaced)"
    return shown


def require_manage(actor: Actor) -> None:
    """Refuse a read of webhooks to an actor without webhook.manage (a
    FORBIDDEN GraphQL error: the writes report it as a user error instead)."""
    if not actor.can(WEBHOOK_MANAGE):
        raise forbidden(WEBHOOK_MANAGE, "manage webhooks")


async def webhooks(db: Database, actor: Actor) -> list[dict[str, Any]]:
    """Every webhook's row, oldest first."""
    require_manage(actor)
    return await db.fetch("SELECT * FROM webhook ORDER BY id")


async def webhook(db: Database, actor: Actor, webhook_id: str) -> dict[str, Any] | None:
    """The row of the webhook global ID ``webhook_id`` names; None for an ID
    that is not valid or names none."""
    require_manage(actor)
    try:
        pk = decode_id(webhook_id, "Webhook")[1]
    except InvalidId:
        return None
    rows = await db.fetch("SELECT * FROM webhook WHERE id = {}", pk)
    return rows[0] if rows else None


async def create_webhook(
    db: Database,
    catalog: Catalog,
    pm: pluggy.PluginManager,
    actor: Actor,
    new: NewWebhook,
    *,
    then: Then = nothing,
) -> WrittenWebhook:
    """Subscribe a URL to events."""
    errors = Errors(list(new.problems))
    url = check_url(errors, new.url)
    types = check_event_types(errors, new.event_types)
    secret = check_secret(errors, new.secret)
    description = check_description(errors, new.description)

    async def work() -> WrittenWebhook:
        at = writes.now()
        values = {
            "url": url,
            "description": description,
            "event_types": orjson.dumps(types).decode(),
            "secret": secret,
            "active": new.active,
            "created_by": actor.user_id,
            "created_at": at,
            "updated_at": at,
        }
        pk = await writes.insert(db, "webhook", values)
        changes = writes.field_changes(None, audited({**values, "event_types": types}))
        await writes.audit(db, "webhook.created", "webhook", pk, None, changes)
        return WrittenWebhook(await webhook_row(db, pk), secret)

    return await run_showing(
        db, actor, work, then, written_pk, permission=WEBHOOK_MANAGE, problems=errors.problems
    )


async def update_webhook(
    db: Database,
    catalog: Catalog,
    pm: pluggy.PluginManager,
    actor: Actor,
    change: WebhookChange,
    *,
    then: Then = nothing,
) -> WrittenWebhook:
    """Change a webhook; ``active`` true re-enables a disabled one (its
    failures so far no longer count), false disables it by hand."""
    errors = Errors(list(change.problems))
    values = change_values(errors, change.fields)

    async def work() -> WrittenWebhook:
        at = writes.now()
        before = await webhook_row(db, change.pk)
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
        return WrittenWebhook(await webhook_row(db, before["id"]), values.get("secret"))

    return await run_showing(
        db, actor, work, then, written_pk, permission=WEBHOOK_MANAGE, problems=errors.problems
    )


async def delete_webhook(
    db: Database,
    catalog: Catalog,
    pm: pluggy.PluginManager,
    actor: Actor,
    target: Target,
    *,
    then: Then = nothing,
) -> int:
    """Delete a webhook with its delivery log; returns its pk."""
    pk = target.pk

    async def work() -> int:
        before = await webhook_row(db, pk)
        # its deliveries and their attempts go with it (ON DELETE CASCADE)
        await db.fetch("DELETE FROM webhook WHERE id = {}", before["id"])
        shown = audited({"url": before["url"], "active": bool(before["active"])})
        changes = {name: [writes.jsonable(value), None] for name, value in shown.items()}
        await writes.audit(db, "webhook.deleted", "webhook", before["id"], None, changes)
        return int(before["id"])

    return await run_write(
        db, actor, work, then, problems=target.problems, permission=WEBHOOK_MANAGE
    )


async def replay_delivery(
    db: Database,
    catalog: Catalog,
    pm: pluggy.PluginManager,
    actor: Actor,
    target: Target,
    *,
    then: Then = nothing,
) -> dict[str, Any]:
    """Send a delivery that is not pending again with a fresh round of
    retries (the deliverer picks it up at once); returns its row."""
    pk = target.pk

    async def work() -> dict[str, Any]:
        at = writes.now()
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
            rows[0]["id"],
            None,
            {"status": [rows[0]["status"], PENDING]},
        )
        (row,) = await db.fetch("SELECT * FROM webhook_delivery WHERE id = {}", pk)
        return row

    return await run_showing(
        db, actor, work, then, row_pk, permission=WEBHOOK_MANAGE, problems=target.problems
    )
