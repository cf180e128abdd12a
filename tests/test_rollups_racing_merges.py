"""Merges and their undoing racing other writes leave every maintained count
exact, over a real server on both engines: the customer tally
(crmgraph.db.customer_counts) and the cohort counts (crmgraph.db.cohort_rollup)
are kept by triggers in the writing transaction, and a merge moves a
customer's roles, history and interactions to its survivor and soft-deletes
it, while other clients log interactions to it, give it further roles,
delete it and create customers. Every write is done or refused with a
userError (never an internal error), and afterwards each count equals a
recount from the rows."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from crmgraph.testing import LiveServer, live_server, settings_for
from tests.helpers import CREATE, create_customer
from tests.test_cohort_counts import same
from tests.test_customer_roles import add
from tests.test_customer_tally import MERGE, UNDO, check

PAIRS = 10
LOG = """mutation($input: LogInteractionInput!) { logInteraction(input: $input) {
  userErrors { code } } }"""
DELETE = "mutation($id: ID!) { deleteCustomer(input: {id: $id}) { userErrors { code } } }"
# refusals a racing write may meet: the customer was merged away or deleted,
# or it changed under an expected version; never INTERNAL
REFUSALS = {"MERGED", "NOT_FOUND", "VERSION_CONFLICT", "DELETED"}


def codes(payload: dict[str, Any]) -> list[str]:
    found = [e["code"] for e in payload["userErrors"]]
    assert set(found) <= REFUSALS, payload
    return found


def racer(server: LiveServer, n: int, merged: str) -> list[str]:
    """The writes aimed at the customer being merged (and a new customer)."""
    log = {"customerId": merged, "channel": "PHONE", "direction": "OUTBOUND", "subject": "r"}
    seen = codes(server.gql(LOG, {"input": log})["logInteraction"])
    seen += codes(add(server, merged, "GUARANTOR", 1, guarantor={}))
    made = server.gql(CREATE, {"input": {"kind": "CLIENT", "name": uuid.uuid4().hex}})
    seen += codes(made["createCustomer"])
    if n % 3 == 0:
        seen += codes(server.gql(DELETE, {"id": merged})["deleteCustomer"])
    return seen


def merger(server: LiveServer, n: int, survivor: str, merged: str) -> list[str]:
    """The merge, undone for every other pair (while the racer may still write)."""
    answer = server.gql(MERGE, {"input": {"survivorId": survivor, "mergedId": merged}})
    payload = answer["mergeCustomers"]
    seen = codes(payload)
    if payload["merge"] and n % 2 == 0:
        seen += codes(server.gql(UNDO, {"id": payload["merge"]["id"]})["undoMerge"])
    return seen


def race(server: LiveServer, n: int, survivor: str, merged: str) -> list[str]:
    start = threading.Barrier(2)

    def go(call: Any, *args: Any) -> list[str]:
        start.wait(timeout=30)
        return call(server, n, *args)

    with ThreadPoolExecutor(2) as pool:
        one = pool.submit(go, merger, survivor, merged)
        two = pool.submit(go, racer, merged)
        return one.result() + two.result()


def test_counts_stay_exact_while_merges_race_writes(database_url: str) -> None:
    with live_server(settings_for(database_url)) as server:
        pairs = [
            (
                create_customer(server, name=f"Survivor {n} {uuid.uuid4().hex[:6]}")["id"],
                create_customer(server, name=f"Merged {n} {uuid.uuid4().hex[:6]}")["id"],
            )
            for n in range(PAIRS)
        ]
        for n, (survivor, merged) in enumerate(pairs):
            race(server, n, survivor, merged)  # each write done or refused cleanly
        assert server.run(check) > 50  # filters whose tally equals COUNT(*)
        server.run(lambda state: same(state.db))
