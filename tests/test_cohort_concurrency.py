"""Concurrent writers of one month's cohorts neither wait on nor deadlock
with one another (crmgraph.db.delta_fold): 8 clients create customers, log
interactions and delete customers at once over a live app, on both engines.
Before the cohort counts were delta rows, each of these upserted the same
``cohort_size`` / ``cohort_activity`` row, and on PostgreSQL a deleteCustomer
and a createCustomer deadlocked on it (run again by
``Database.run_transaction``, VERSION_CONFLICT past its attempts). Every
write must succeed at its first attempt (no "transaction rolled back" retry
logged) and the counts stay exact afterwards."""

from __future__ import annotations

import logging
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from crmgraph.testing import LiveServer, live_server, settings_for
from tests.helpers import CREATE
from tests.test_cohort_counts import same, stored

DELETE = "mutation($id: ID!) { deleteCustomer(input: {id: $id}) { userErrors { code } } }"
LOG = """mutation($input: LogInteractionInput!) { logInteraction(input: $input) {
  userErrors { code } } }"""
CLIENTS, EACH = 8, 24


def writes(server: LiveServer, n: int) -> list[list[str]]:
    """One client's writes: each answer's userError codes."""
    codes = []
    for i in range(EACH):
        # names unlike one another: no duplicate pairs between the writers'
        # customers (a pair's foreign keys lock the other customer's row)
        data = {"input": {"kind": "CLIENT", "name": uuid.uuid4().hex}}
        created = server.gql(CREATE, data)["createCustomer"]
        codes.append([e["code"] for e in created["userErrors"]])
        if created["customer"] is None:
            continue
        cid = created["customer"]["id"]
        if i % 3 == 0:
            answer = server.gql(DELETE, {"id": cid})["deleteCustomer"]
        else:
            log = {"customerId": cid, "channel": "EMAIL", "direction": "INBOUND", "subject": "x"}
            answer = server.gql(LOG, {"input": log})["logInteraction"]
        codes.append([e["code"] for e in answer["userErrors"]])
    return codes


def test_concurrent_cohort_writers_never_conflict(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="crmgraph.db.engine")
    with live_server(settings_for(database_url)) as server:
        with ThreadPoolExecutor(CLIENTS) as pool:
            answers = [
                c
                for client in pool.map(lambda n: writes(server, n), range(CLIENTS))
                for c in client
            ]
        assert len(answers) == 2 * CLIENTS * EACH
        assert all(codes == [] for codes in answers), [c for c in answers if c]
        retried = [r.getMessage() for r in caplog.records if "rolled back" in r.getMessage()]
        assert retried == []  # not even a deadlock run again
        server.run(lambda state: same(state.db))
        sizes = server.run(lambda state: stored(state.db))["sizes"]
        made = sum(n for kind, _, n in sizes if kind == "")
        # the 8 writers' customers, a third of them deleted again
        assert made == CLIENTS * EACH - CLIENTS * len(range(0, EACH, 3))
