"""The reads' extra work taken out (issue 21), on both engines: what each
change relies on, checked where it could silently stop holding.

- The role join (``queries.CUSTOMER_FROM``) is a LEFT JOIN PostgreSQL drops
  when no stage column is read, and ``totalCount`` counts ``customer`` alone
  unless a stage or phase filter needs the role; the counts stay the same.
- A full refresh of the folded names (``text_keys.refresh_text_keys``)
  leaves PostgreSQL statistics that describe them.
- The direct path answers a known document from outside the body limit and
  idempotent requests: a body over the limit is still refused, a request with
  an ``Idempotency-Key`` is still recorded and replayed, and a plan the plan
  cache forgets is not used again.
- Kinds are written into the statement (a plan per set of kinds), other values bound.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx

from crmgraph.app import AppState
from crmgraph.compiled.direct import ANSWERED_HEADER
from crmgraph.db import queries, text_keys
from crmgraph.db.engine import Database
from crmgraph.testing import LiveServer, live_server, settings_for

T = TypeVar("T")

CUSTOMERS = [("CLIENT", "Ana Pérez"), ("CLIENT", "ANA PEREZ"), ("CLIENT", "Bruno Díaz")]
CUSTOMERS += [("PROSPECT", "Carla Núñez")]


def on_db(server: LiveServer, work: Callable[[Database], Awaitable[T]]) -> T:
    async def run(state: AppState) -> T:
        return await work(state.db)

    return server.run(run)


def create_customers(server: LiveServer) -> None:
    for kind, name in CUSTOMERS:
        done = server.post(
            "mutation($input: CreateCustomerInput!) { createCustomer(input: $input) "
            "{ customer { id } userErrors { message } } }",
            {"input": {"kind": kind, "name": name, "allowDuplicate": True}},
        )
        assert done["data"]["createCustomer"]["userErrors"] == [], done


async def plan_text(db: Database, sql: str) -> str:
    if db.engine.engine_type == "postgres":
        rows = await db.fetch(f"EXPLAIN {sql}")
        return "\n".join(str(next(iter(row.values()))) for row in rows)
    rows = await db.fetch(f"EXPLAIN QUERY PLAN {sql}")
    return "\n".join(str(row["detail"]) for row in rows)


def test_the_role_join_goes_where_no_stage_is_read(database_url: str) -> None:
    async def plans(db: Database) -> tuple[str, str]:
        page = (
            f"SELECT c.id, c.name FROM {queries.CUSTOMER_FROM} "
            "WHERE c.deleted_at IS NULL ORDER BY c.created_at DESC, c.id DESC LIMIT 5"
        )
        staged = (
            f"SELECT c.id, r.stage FROM {queries.CUSTOMER_FROM} "
            "WHERE c.deleted_at IS NULL ORDER BY c.created_at DESC, c.id DESC LIMIT 5"
        )
        return await plan_text(db, page), await plan_text(db, staged)

    with live_server(settings_for(database_url)) as server:
        create_customers(server)
        page, staged = on_db(server, plans)
    assert "customer_role" in staged, staged
    if server.engine == "postgres":  # SQLite keeps it (see queries.CUSTOMER_FROM)
        assert "customer_role" not in page, page


def test_counts_with_and_without_a_stage_filter_match_the_rows(database_url: str) -> None:
    assert queries.customer_count_from(queries.CustomerQuery()) == "customer c"
    with_stage = queries.CustomerQuery(stages=("lead",))
    assert queries.customer_count_from(with_stage) == queries.CUSTOMER_FROM
    query = (
        "query($filter: CustomerFilter) { customers(first: 50, filter: $filter) "
        "{ totalCount nodes { id stage } } }"
    )
    with live_server(settings_for(database_url)) as server:
        create_customers(server)
        client_stage = server.post("{ customers(first: 1) { nodes { stage } } }")
        assert client_stage["data"]["customers"]["nodes"]
        for filters in ({}, {"kinds": ["CLIENT"]}, {"kinds": ["PROSPECT"]}):
            for _ in range(2):  # the resolvers, then the compiled statement
                page = server.post(query, {"filter": filters})["data"]["customers"]
                assert page["totalCount"] == len(page["nodes"]), filters
        stages = {n["stage"] for n in server.post(query)["data"]["customers"]["nodes"]}
        for stage in stages:
            for _ in range(2):
                page = server.post(query, {"filter": {"stages": [stage]}})["data"]["customers"]
                assert page["totalCount"] == len(page["nodes"]) > 0, stage
                assert {n["stage"] for n in page["nodes"]} == {stage}


def test_a_full_refresh_of_the_folded_names_leaves_statistics_of_them(
    database_url: str,
) -> None:
    async def refresh(db: Database) -> Any:
        if db.engine.engine_type != "postgres":
            return None  # SQLite keeps no statistics unless asked (ANALYZE), nor plans by them
        # as a bulk load leaves them: copies empty, statistics taken then
        await db.fetch("UPDATE customer SET name_folded = '', email_folded = NULL")
        await db.fetch("ANALYZE customer")
        assert await text_keys.refresh_text_keys(db, "customer") == len(CUSTOMERS)
        rows = await db.fetch(
            "SELECT n_distinct FROM pg_stats WHERE tablename = 'customer' "
            "AND attname = 'name_folded'"
        )
        return rows[0]["n_distinct"]

    with live_server(settings_for(database_url)) as server:
        create_customers(server)
        distinct = on_db(server, refresh)
    if distinct is not None:
        # "ana perez" twice, "bruno diaz", "carla nunez", where the statistics
        # taken before saw one value (''); negative: a share of the rows
        estimated = -distinct * len(CUSTOMERS) if distinct < 0 else distinct
        assert round(estimated) == len({text_keys.fold(name) for _, name in CUSTOMERS}) == 3


def post(server: LiveServer, content: bytes, **headers: str) -> httpx.Response:
    return server.http.post(
        "/graphql", content=content, headers={"Content-Type": "application/json", **headers}
    )


def test_direct_answers_keep_the_body_limit_and_idempotent_requests(database_url: str) -> None:
    body = b'{"query": "{ customers(first: 2) { nodes { id name } } }"}'
    padded = body[:-1] + b" " * 600 + b"}"
    with live_server(settings_for(database_url, max_body_bytes=400)) as server:
        create_customers(server)
        first, again = post(server, body), post(server, body)
        assert first.json() == again.json()
        assert again.headers.get(ANSWERED_HEADER.decode()) == "direct"
        # the same document, over the limit: refused, by the body limit
        refused = post(server, padded)
        assert refused.status_code == 413
        assert refused.json()["errors"][0]["extensions"]["code"] == "BODY_TOO_LARGE"
        # with an Idempotency-Key: recorded, then replayed, never answered directly
        recorded = post(server, body, **{"Idempotency-Key": "reads-1"})
        replayed = post(server, body, **{"Idempotency-Key": "reads-1"})
        assert recorded.headers.get(ANSWERED_HEADER.decode()) is None
        assert replayed.headers.get("idempotent-replay") == "true"
        assert recorded.json()["data"] == replayed.json()["data"] == again.json()["data"]


def test_a_forgotten_plan_is_not_answered_from_a_known_request(database_url: str) -> None:
    body = b'{"query": "{ customers(first: 3) { nodes { id } } }"}'
    with live_server(settings_for(database_url)) as server:
        create_customers(server)
        assert post(server, body).headers.get(ANSWERED_HEADER.decode()) is None
        assert post(server, body).headers.get(ANSWERED_HEADER.decode()) == "direct"

        async def forget(state: AppState) -> None:
            assert state.compiled is not None
            entry = state.compiled.cache.peek(("{ customers(first: 3) { nodes { id } } }", None))
            assert entry is not None
            state.compiled.cache.forget(entry, ())  # as after a statement that failed

        server.run(forget)
        answer = post(server, body)
        assert answer.headers.get(ANSWERED_HEADER.decode()) is None  # the resolvers answered
        assert len(answer.json()["data"]["customers"]["nodes"]) == 3


def test_kinds_are_written_into_the_statement_and_anything_else_is_bound() -> None:
    one = queries.customer_where(queries.CustomerQuery(kinds=("client",)))
    two = queries.customer_where(queries.CustomerQuery(kinds=("client", "agenda_contact2")))
    assert "c.kind IN ('client')" in one.sql() and one.args == []
    assert "c.kind IN ('client', 'agenda_contact2')" in two.sql() and two.args == []
    odd = queries.customer_where(queries.CustomerQuery(kinds=("client", "x') OR (1 = 1")))
    assert "c.kind IN ({}, {})" in odd.sql() and odd.args == ["client", "x') OR (1 = 1"]
