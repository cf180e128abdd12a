"""Plugin-defined events, on SQLite and PostgreSQL: the example partner plugin
(crmgraph-loyalty) writes ``loyalty.*`` events with ``crmgraph.events.emit``
in its write's transaction; they roll back with the write, and once committed
reach an event handler, a ``customerEvents`` subscription filtered on the type
and a webhook subscribed to ``loyalty.*``, like any core event."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

import pytest

from crmgraph.app import AppState, with_state
from crmgraph.events import EventTypeError, emit
from crmgraph.settings import Settings
from crmgraph.testing import LiveServer, live_server, migrate_for, settings_for
from tests import test_webhooks
from tests.helpers import create_customer, log_interaction, poll, require_loyalty
from tests.plugins_for_tests import loyalty_listener
from tests.test_subscriptions import graphql_ws, subscriptions_open
from tests.test_webhooks import Receiver, create_webhook

LOYALTY = "crmgraph_loyalty.plugin"
LISTENER = "tests.plugins_for_tests.loyalty_listener"
FAST = {"event_poll_seconds": 0.05, "webhook_backoff_seconds": 0.05}

receiver = test_webhooks.receiver  # the webhook tests' loopback receiver, as a fixture here

AWARD = """mutation($input: AwardLoyaltyPointsInput!) {
  awardLoyaltyPoints(input: $input) { account { points tier } userErrors { field message } }
}"""
MOVE = """mutation($input: TransitionCustomerInput!) {
  transitionCustomer(input: $input) { customer { version stage } userErrors { message } }
}"""
EVENTS = """subscription($filter: CustomerEventFilter) {
  customerEvents(filter: $filter) { id type customerId payload }
}"""


@pytest.fixture
def settings(database_url: str) -> Settings:
    """The loyalty plugin (its tables migrated) and the listener, fast polling."""
    require_loyalty()
    configured = settings_for(database_url, plugins=(LOYALTY, LISTENER), **FAST)
    asyncio.run(migrate_for(configured))
    loyalty_listener.received.clear()
    return configured


@pytest.fixture
def server(settings: Settings) -> Iterator[LiveServer]:
    with live_server(settings) as running:
        yield running


def sql(settings: Settings, statement: str, *args: Any) -> list[dict[str, Any]]:
    return asyncio.run(with_state(settings, lambda state: state.db.fetch(statement, *args)))


def event_types(settings: Settings, customer_pk: int) -> list[str]:
    rows = sql(settings, "SELECT type FROM event WHERE customer = {} ORDER BY id", customer_pk)
    return [row["type"] for row in rows]


def pk_of(global_id: str) -> int:
    from crmgraph.schema.ids import decode_id

    return decode_id(global_id, "Customer")[1]


def award(server: LiveServer, customer_id: str, points: int, reason: str) -> dict[str, Any]:
    data = server.gql(
        AWARD, {"input": {"customerId": customer_id, "points": points, "reason": reason}}
    )["awardLoyaltyPoints"]
    assert data["userErrors"] == [], data["userErrors"]
    return data["account"]


def walk_to_active(server: LiveServer, customer: dict[str, Any]) -> dict[str, Any]:
    """interest → engaged → negotiating → active (a purchase lets it in);
    returns the last move's payload."""
    log_interaction(server, customer["id"], amount="120.00")
    version = customer["version"]
    payload: dict[str, Any] = {}
    for stage in ("engaged", "negotiating", "active"):
        body = server.post(
            MOVE, {"input": {"id": customer["id"], "toStage": stage, "expectedVersion": version}}
        )
        payload = body
        if body.get("errors"):
            return body
        moved = body["data"]["transitionCustomer"]
        assert moved["userErrors"] == [], moved["userErrors"]
        version = moved["customer"]["version"]
    return payload


def test_a_plugin_event_reaches_handlers_subscribers_and_webhooks(
    server: LiveServer, settings: Settings, receiver: Receiver
) -> None:
    hook, _ = create_webhook(server, receiver.url, ["loyalty.*"])
    assert hook["eventTypes"] == ["loyalty.*"]
    customer = create_customer(server, name="Points Ltd")
    with graphql_ws(server.url) as client:  # a WebSocket: server.url opens a real socket
        # text frames, as graphql-transport-ws has them (browsers' clients drop binary ones)
        assert isinstance(client.ws.recv(timeout=30), str)
        client.subscribe(EVENTS, {"filter": {"types": ["loyalty.points_awarded"]}})
        poll("the subscription", lambda: subscriptions_open(server.url, 1))

        assert award(server, customer["id"], 700, "spring campaign") == {
            "points": 700,
            "tier": "SILVER",
        }
        event = client.next_event()  # customer.created was written too, and filtered out
        assert (event["type"], event["customerId"]) == ("loyalty.points_awarded", customer["id"])
        assert event["payload"]["points"] == 700
        assert event["payload"]["reason"] == "spring campaign"
        assert event["payload"]["balance"] == 700

    delivered = poll("the webhook delivery", receiver.delivered)
    assert [r.payload["type"] for r in delivered] == ["loyalty.points_awarded"]
    body = delivered[0].payload
    assert body["customerId"] == customer["id"]
    assert (body["data"]["points"], body["data"]["tier"]) == (700, "SILVER")
    assert delivered[0].event_id == event["id"]

    handled = poll("the handler", lambda: list(loyalty_listener.received))
    assert [(e.type, e.id, e.customer_id) for e in handled] == [
        ("loyalty.points_awarded", int(event["id"]), pk_of(customer["id"]))
    ]
    assert handled[0].payload["reason"] == "spring campaign"


def test_an_event_emitted_in_a_hook_commits_and_rolls_back_with_the_move(
    server: LiveServer, settings: Settings
) -> None:
    kept = create_customer(server, name="Kept Co")
    done = walk_to_active(server, kept)
    assert done["data"]["transitionCustomer"]["customer"]["stage"] == "active"
    types = event_types(settings, pk_of(kept["id"]))
    # the plugin's event sits right after the move that wrote it
    assert types[-2:] == ["customer.stage_changed", "loyalty.account_opened"]
    handled = poll(
        "the account_opened handler",
        lambda: [e for e in loyalty_listener.received if e.type == "loyalty.account_opened"],
    )
    assert handled[0].payload == {
        "customerId": kept["id"],
        "points": 50,
        "at": handled[0].payload["at"],
    }

    refused = create_customer(server, name="Refused Co")
    body = walk_to_active(server, refused)
    # the listener raised after the loyalty plugin emitted: a clean error naming it
    assert body["errors"][0]["extensions"]["plugin"] == LISTENER
    pk = pk_of(refused["id"])
    assert "loyalty.account_opened" not in event_types(settings, pk)
    assert sql(settings, "SELECT id FROM loyalty_account WHERE customer_id = {}", pk) == []
    stages = sql(settings, "SELECT stage FROM customer_role WHERE customer = {}", pk)
    assert stages == [{"stage": "negotiating"}]  # the move to active rolled back whole


def test_emit_writes_in_the_callers_transaction_and_checks_the_name(settings: Settings) -> None:
    async def check(state: AppState) -> None:
        db = state.db
        with pytest.raises(RuntimeError, match="inside the write's transaction"):
            await emit(db, "loyalty.points_awarded", None, {"points": 1})

        with contextlib.suppress(LookupError):
            async with db.transaction():
                await emit(db, "loyalty.points_awarded", None, {"points": 2})
                assert len(await events_of(db)) == 1  # visible inside the transaction
                raise LookupError("the write fails after the event was emitted")
        assert await events_of(db) == []  # rolled back with it

        async with db.transaction():
            await emit(db, "loyalty.points_awarded", None, {"points": 3})
        (row,) = await events_of(db)
        assert row["customer"] is None

        for bad in (
            "customer.points",
            "task.done",
            "loyalty",
            "Loyalty.Points",
            "loyalty.",
            "x" * 99 + ".y",
        ):
            with pytest.raises(EventTypeError):
                async with db.transaction():
                    await emit(db, bad, None, {})
        assert len(await events_of(db)) == 1

    async def events_of(db: Any) -> list[dict[str, Any]]:
        return await db.fetch(
            "SELECT customer, payload FROM event WHERE type = {}", "loyalty.points_awarded"
        )

    asyncio.run(with_state(settings, check))
