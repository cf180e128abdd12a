"""Retention on SQLite and PostgreSQL: outbox events and webhook deliveries
past their retention are deleted in bounded batches, and only when nothing
needs them any more; by the server's background pruner and by ``crmgraph
prune``."""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from crmgraph import retention
from crmgraph.app import AppState, with_state
from crmgraph.db import writes
from crmgraph.db.engine import Database
from crmgraph.events import EVENT_MAX_ATTEMPTS
from crmgraph.settings import Settings
from crmgraph.testing import live_server, settings_for
from tests.helpers import cli_in_process, environment, poll

T = TypeVar("T")

NOW = writes.now()
OLD = NOW - datetime.timedelta(days=40)  # past the default 30 days
RECENT = NOW - datetime.timedelta(days=1)


def run(settings: Settings, work: Callable[[Database], Awaitable[T]]) -> T:
    async def with_db(state: AppState) -> T:
        return await work(state.db)

    return asyncio.run(with_state(settings, with_db))


async def event(db: Database, name: str, created: datetime.datetime = OLD, **state: Any) -> int:
    """An event that has been everywhere (handlers, live, webhooks) unless
    ``state`` says otherwise; ``name`` goes in its type to tell them apart."""
    values = {
        "type": f"test.{name}",
        "payload": "{}",
        "created_at": created,
        "attempts": 1,
        "delivered_at": created,
        "published_at": created,
        "webhooks_claimed_at": created,
        **state,
    }
    return await writes.insert(db, "event", values)


async def webhook(db: Database, created: datetime.datetime) -> int:
    return await writes.insert(db, "webhook", {
        "url": "http://127.0.0.1:9/hook", "event_types": '["*"]', "secret": "s" * 20,
        "active": True, "created_at": created, "updated_at": created,
    })  # fmt: skip


async def delivery(db: Database, hook: int, event_pk: int, status: str, touched: datetime.datetime) -> int:  # fmt: skip
    pk = await writes.insert(db, "webhook_delivery", {
        "webhook": hook, "event": event_pk, "event_type": "test", "status": status,
        "attempts": 1, "created_at": touched, "updated_at": touched,
    })  # fmt: skip
    await writes.insert(
        db,
        "webhook_attempt",
        {"delivery": pk, "attempt": 1, "started_at": touched, "duration_ms": 5},
    )
    return pk


async def remaining(db: Database) -> dict[str, Any]:
    events = await db.fetch("SELECT type FROM event ORDER BY id")
    deliveries = await db.fetch("SELECT id FROM webhook_delivery ORDER BY id")
    attempts = await db.fetch("SELECT delivery FROM webhook_attempt ORDER BY delivery")
    return {
        "events": [row["type"].removeprefix("test.") for row in events],
        "deliveries": [row["id"] for row in deliveries],
        "attempts": [row["delivery"] for row in attempts],
    }


async def mixed_history(db: Database) -> dict[str, int]:
    """One event or delivery in each state that matters; returns delivery ids."""
    # a webhook created after every old event but before the recent ones
    hook = await webhook(db, NOW - datetime.timedelta(days=35))
    await event(db, "done")
    await event(db, "handler_failing", delivered_at=None, attempts=3)
    await event(db, "handler_gave_up", delivered_at=None, attempts=EVENT_MAX_ATTEMPTS)
    await event(db, "unpublished", published_at=None)
    await event(db, "before_every_webhook", webhooks_claimed_at=None)
    await event(db, "awaiting_fan_out", NOW - datetime.timedelta(days=31), webhooks_claimed_at=None)
    pending = await event(db, "delivery_pending")
    old_log = await event(db, "delivery_log_old")
    kept_log = await event(db, "delivery_log_kept")
    await event(db, "recent", RECENT)
    recent_with_old_log = await event(db, "recent_with_old_log", RECENT)
    return {
        "pending": await delivery(db, hook, pending, "pending", OLD),
        "old_log": await delivery(db, hook, old_log, "succeeded", OLD),
        "kept_log": await delivery(db, hook, kept_log, "failed", RECENT),
        "old_log_of_recent": await delivery(db, hook, recent_with_old_log, "failed", OLD),
    }


KEPT_EVENTS = [
    "handler_failing",
    "unpublished",
    "awaiting_fan_out",
    "delivery_pending",
    "delivery_log_kept",
    "recent",
    "recent_with_old_log",
]


def test_only_what_nothing_needs_is_pruned(database_url: str) -> None:
    settings = settings_for(database_url)

    async def work(db: Database) -> tuple[dict[str, int], retention.Pruned, retention.Pruned]:
        ids = await mixed_history(db)
        due = await retention.due(db, settings)
        return ids, due, await retention.prune(db, settings)

    ids, due, pruned = run(settings, work)
    assert pruned == retention.Pruned(events=4, deliveries=2)
    assert due == pruned
    left = run(settings, remaining)
    assert left["events"] == KEPT_EVENTS
    # the pending delivery and the failed one still in the log's retention stay,
    # with their attempts; the old finished ones went, with theirs
    assert left["deliveries"] == [ids["pending"], ids["kept_log"]]
    assert left["attempts"] == [ids["pending"], ids["kept_log"]]
    # nothing more is due: a second run deletes nothing
    assert run(settings, lambda db: retention.prune(db, settings)) == retention.Pruned()


def test_a_retention_of_zero_days_keeps_everything(database_url: str) -> None:
    settings = settings_for(database_url, event_retention_days=0, webhook_log_retention_days=0)
    run(settings, mixed_history)
    before = run(settings, remaining)
    assert run(settings, lambda db: retention.prune(db, settings)) == retention.Pruned()
    assert run(settings, remaining) == before

    # events kept for ever, the delivery log for 30 days: only the old log goes,
    # and the events whose deliveries are kept stay with them
    logs_only = settings_for(database_url, event_retention_days=0)
    pruned = run(logs_only, lambda db: retention.prune(db, logs_only))
    assert pruned == retention.Pruned(events=0, deliveries=2)
    assert len(run(logs_only, remaining)["events"]) == len(before["events"])


def test_pruning_goes_in_bounded_batches(database_url: str) -> None:
    settings = settings_for(database_url)

    async def work(db: Database) -> list[int]:
        for n in range(25):
            await event(db, f"done_{n}")
        await event(db, "recent", RECENT)
        cutoffs = retention.Cutoffs.at(settings)
        sizes = [await retention.prune_events(db, cutoffs, batch=10) for _ in range(3)]
        return [*sizes, (await retention.prune(db, settings, batch=10)).events]

    assert run(settings, work) == [10, 10, 5, 0]
    assert run(settings, remaining)["events"] == ["recent"]


def test_the_server_prunes_in_the_background(database_url: str) -> None:
    settings = settings_for(database_url, prune_interval_seconds=0.05)
    run(settings, mixed_history)
    # The server's own outbox readers run too: its dispatcher (no handler is
    # registered) delivers the failing handler's event, its publisher publishes
    # the unpublished one, so both become prunable; its deliverer fans the event
    # awaiting fan-out out to the webhook, whose pending delivery keeps it.
    expected = [e for e in KEPT_EVENTS if e not in ("handler_failing", "unpublished")]
    with live_server(settings):
        poll("the background pruner", lambda: run(settings, remaining)["events"] == expected)


def test_the_prune_command(database_url: str) -> None:
    settings = settings_for(database_url)
    run(settings, mixed_history)

    def prune(*args: str) -> str:
        # the command's crmgraph.cli.main in this process: a process of its own
        # would add 1.5 s of imports per run to the same output
        done = cli_in_process(database_url, "prune", *args)
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert prune("--dry-run").startswith("would prune 4 events (older than 30 days) and 2 ")
    assert len(run(settings, remaining)["events"]) == 11  # a dry run deletes nothing
    assert prune().startswith("pruned 4 events (older than 30 days) and 2 webhook deliveries")
    assert run(settings, remaining)["events"] == KEPT_EVENTS
    # the recent events are old enough now: the one whose delivery log was pruned
    # goes as well
    with environment(CRMGRAPH_EVENT_RETENTION_DAYS="0.5"):
        assert prune().startswith("pruned 2 events (older than 0.5 days)")
