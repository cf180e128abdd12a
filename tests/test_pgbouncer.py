"""crmgraph behind PgBouncer in transaction mode (PostgreSQL).

A PgBouncer of the test's own (crmgraph.testing.pgbouncer: two server
connections, handed out round robin) stands between the server and
PostgreSQL. With ``statement_cache_size=0`` a smoke subset of the API works
through it: create, list, a mutation refused with userErrors, a version
conflict, a compiled read answered twice (the second time by the direct
path), a subscription event. With asyncpg's default cache (100) the same
server fails: a statement prepared by name on one server connection is
unknown on the next (shown with one client connection, whose transactions
PgBouncer hands to its two server connections in turn).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest

from crmgraph.testing import LiveServer, fresh_postgres_database, live_server, settings_for
from crmgraph.testing.pgbouncer import pgbouncer
from tests.helpers import CREATE, poll
from tests.test_subscriptions import EVENTS, graphql_ws, subscriptions_open

pytestmark = pytest.mark.parametrize("engine", ["postgres"])

UPDATE = """mutation($input: UpdateCustomerInput!) {
  updateCustomer(input: $input) { customer { id name version } userErrors { field code } }
}"""
LIST = "query { customers(first: 50) { totalCount nodes { id name } } }"
COUNT = "query { customers { totalCount } }"


@pytest.fixture
def behind_pgbouncer(pg_template: str, engine: str) -> Iterator[tuple[str, str]]:
    """(URL of a fresh database through PgBouncer, its direct URL)."""
    with fresh_postgres_database(pg_template) as direct, pgbouncer(pool_size=2) as bouncer:
        yield f"{bouncer}/{direct.rsplit('/', 1)[1]}", direct


def served(url: str, cache: int) -> Any:
    # a pool bigger than PgBouncer's: its connections share two server connections
    return live_server(
        settings_for(url, statement_cache_size=cache, pool_min_size=4, pool_max_size=8)
    )


def create(server: LiveServer, name: str, **fields: Any) -> dict[str, Any]:
    return server.gql(CREATE, {"input": {"kind": "CLIENT", "name": name, **fields}})[
        "createCustomer"
    ]


def concurrently(server: LiveServer, query: str, times: int = 40) -> list[Any]:
    """``query`` from eight threads at once: the app's pool uses several
    connections, so PgBouncer switches server connections under them."""

    def one(_: int) -> Any:
        response = server.http.post("/graphql", json={"query": query})
        return response.json() if response.status_code == 200 else response.status_code

    with concurrent.futures.ThreadPoolExecutor(8) as threads:
        return list(threads.map(one, range(times)))


def test_the_api_works_through_pgbouncer_without_a_statement_cache(
    behind_pgbouncer: tuple[str, str],
) -> None:
    url, _ = behind_pgbouncer
    with served(url, cache=0) as server:
        ada = create(server, "Ada Pooled")
        assert ada["userErrors"] == [] and ada["customer"]["version"] == 1
        refused = create(server, "Bad Mail", email="not-an-email")
        assert [e["code"] for e in refused["userErrors"]] == ["INVALID_EMAIL"]
        first = {"id": ada["customer"]["id"], "expectedVersion": 1, "name": "Ada Two"}
        assert server.gql(UPDATE, {"input": first})["updateCustomer"]["userErrors"] == []
        stale = server.gql(UPDATE, {"input": {**first, "name": "Lost"}})["updateCustomer"]
        assert [e["code"] for e in stale["userErrors"]] == ["VERSION_CONFLICT"]

        answers = [server.http.post("/graphql", json={"query": LIST}) for _ in range(2)]
        assert [a.headers.get("x-crmgraph-answered") for a in answers] == [None, "direct"]
        assert answers[1].json()["data"]["customers"]["nodes"] == [
            {"id": ada["customer"]["id"], "name": "Ada Two"}
        ]
        results = concurrently(server, LIST)
        assert all(isinstance(r, dict) and "errors" not in r for r in results), results

        with graphql_ws(server.url) as ws:
            ws.acknowledged()
            ws.subscribe(EVENTS)
            poll("an open subscription", lambda: subscriptions_open(server.url, 1))
            created = create(server, "Live Through Bouncer")["customer"]
            event = ws.next_event()
            assert event["customerId"] == created["id"]


def both_server_connections_open(url: str) -> None:
    """Two transactions held open at once through PgBouncer, so both of its
    server connections exist; round robin then alternates them under a
    single client connection."""

    async def hold() -> None:
        first, second = [await asyncpg.connect(url, statement_cache_size=0) for _ in range(2)]
        try:
            async with first.transaction(), second.transaction():
                pids = {await c.fetchval("SELECT pg_backend_pid()") for c in (first, second)}
            assert len(pids) == 2, pids
        finally:
            await first.close()
            await second.close()

    asyncio.run(hold())


def test_asyncpgs_statement_cache_breaks_behind_pgbouncer(
    behind_pgbouncer: tuple[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    # One client connection: its statement names are its own, so no other
    # connection can have prepared the same name with the same SQL on the
    # other server connection (with a pool of several, that happened and
    # the control passed by luck).
    url, _ = behind_pgbouncer
    both_server_connections_open(url)
    settings = settings_for(url, statement_cache_size=100, pool_min_size=1, pool_max_size=1)
    with live_server(settings) as server:
        results = [server.http.post("/graphql", json={"query": q}) for q in [LIST, COUNT] * 10]
    failed = [r for r in results if r.status_code != 200 or r.json().get("errors")]
    assert failed, "every request succeeded with asyncpg's statement cache behind PgBouncer"
    assert 'prepared statement "__asyncpg_stmt_' in caplog.text
