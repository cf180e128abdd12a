"""A subscriber while several clients write at once, over a real WebSocket on
both engines: every committed event reaches it exactly once, each customer's
in the order they were written, an agent's subscription shows only the
customers it may see, and the counts the same writes keep by trigger
(customer tally, cohort counts) are exact afterwards. The events travel
through the outbox written in each mutation's transaction, beside those
triggers' rows."""

from __future__ import annotations

from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor

from crmgraph.testing import LiveServer
from tests.helpers import poll
from tests.test_cohort_counts import same
from tests.test_customer_tally import check
from tests.test_subscriptions import (
    EVENTS,
    create,
    graphql_ws,
    keys,
    log,
    secured,
    subscriptions_open,
)

__all__ = ["keys", "secured"]  # the fixtures this module shares with test_subscriptions
WRITERS, CUSTOMERS, LOGS = 4, 3, 3
TYPES = ["customer.created", "interaction.logged"]


def writes(server: LiveServer, key: str, n: int) -> dict[str, list[str]]:
    """One client's customers, each with its events' types in written order."""
    written: dict[str, list[str]] = {}
    for c in range(CUSTOMERS):
        customer = create(server, key, f"Writer {n} customer {c}")
        written[customer] = ["customer.created"]
        for i in range(LOGS):
            log(server, key, customer, f"call {i}")
            written[customer].append("interaction.logged")
    return written


def test_a_subscriber_gets_every_event_once_in_order_under_concurrent_writes(
    secured: LiveServer, keys: dict[str, str]
) -> None:
    with (
        graphql_ws(secured.url, keys["admin"]) as admin,
        graphql_ws(secured.url, keys["bea"]) as bea,
    ):
        admin.acknowledged()
        bea.acknowledged()
        admin.subscribe(EVENTS, {"filter": {"types": TYPES}})
        bea.subscribe(EVENTS, {"filter": {"types": TYPES}})
        poll("two open subscriptions", lambda: subscriptions_open(secured.url, 2))
        writers = ["ana", "bea", "admin", "ana"]
        with ThreadPoolExecutor(WRITERS) as pool:
            done = list(pool.map(lambda n: writes(secured, keys[writers[n]], n), range(WRITERS)))
        expected = {cid: types for each in done for cid, types in each.items()}
        seen: dict[str, list[str]] = defaultdict(list)
        ids: list[str] = []
        for _ in range(sum(map(len, expected.values()))):
            event = admin.next_event()
            seen[event["customerId"]].append(event["type"])
            ids.append(event["id"])
        assert seen == expected  # every event, each customer's in order
        assert len(set(ids)) == len(ids)
        beas = done[1]
        for _ in range(sum(map(len, beas.values()))):
            event = bea.next_event()
            assert event["customerId"] in beas, event  # only her own customers
        # written after every other: the next event of each, so none came twice
        last = create(secured, keys["bea"], "The last one")
        assert admin.next_event()["customerId"] == last
        assert bea.next_event()["customerId"] == last
        assert secured.run(check) > 10
        secured.run(lambda state: same(state.db))
