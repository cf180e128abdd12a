"""CRMGRAPH_DATABASE_READ_URL (PostgreSQL): which reads the replica answers.

Two migrated databases stand in for a primary and its replica (no streaming
replication: the "replica" is told apart by holding different rows). A
query's reads, compiled (view and direct path) or through resolvers, come
from the replica; a mutation writes to the primary and its payload reads
the primary; ``X-CRMGraph-Read: primary`` sends a query to the primary.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from crmgraph.db.replica import only_reads
from crmgraph.testing import LiveServer, fresh_postgres_database, live_server, settings_for
from tests.helpers import CREATE

LIST = "query { customers(first: 20) { nodes { name } } }"
PRIMARY = {"X-CRMGraph-Read": "primary"}


@pytest.fixture
def primary_and_replica(pg_template: str) -> Iterator[tuple[str, str]]:
    with (
        fresh_postgres_database(pg_template) as primary,
        fresh_postgres_database(pg_template) as replica,
    ):
        with live_server(settings_for(replica)) as on_replica:
            create(on_replica, "Only On The Replica")
        yield primary, replica


def create(server: LiveServer, name: str) -> dict[str, Any]:
    payload = server.gql(CREATE, {"input": {"kind": "CLIENT", "name": name}})["createCustomer"]
    assert payload["userErrors"] == [], payload["userErrors"]
    return payload["customer"]


def names(
    server: LiveServer, headers: dict[str, str] | None = None, query: str = LIST
) -> tuple[list[str], str]:
    """The listed names, and which path answered (direct, or the view)."""
    response = server.http.post("/graphql", json={"query": query}, headers=headers or {})
    body = response.json()
    assert "errors" not in body, body
    listed = [node["name"] for node in body["data"]["customers"]["nodes"]]
    return listed, response.headers.get("x-crmgraph-answered", "view")


@pytest.mark.parametrize("engine", ["postgres"])
@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "resolvers"])
def test_queries_read_the_replica_and_writes_the_primary(
    primary_and_replica: tuple[str, str], engine: str, compiled: bool
) -> None:
    primary, replica = primary_and_replica
    settings = settings_for(primary, database_read_url=replica, compiled_reads=compiled)
    with live_server(settings) as server:
        expected_paths = ["view", "direct"] if compiled else ["view", "view"]
        answers = [names(server) for _ in range(2)]
        assert answers == [(["Only On The Replica"], path) for path in expected_paths]

        written = create(server, "Written To The Primary")  # the payload read the primary
        assert written["name"] == "Written To The Primary" and written["version"] == 1

        assert names(server)[0] == ["Only On The Replica"]  # the replica has not caught up
        # the direct path knows the document by now, and honours the header too
        forced = names(server, PRIMARY)
        assert forced == (["Written To The Primary"], "direct" if compiled else "view")
        first_time = names(server, PRIMARY, query=LIST.replace("first: 20", "first: 21"))
        assert first_time == (["Written To The Primary"], "view")

        ready = server.http.get("/readyz").json()
        assert ready["replica"] == "ok"


@pytest.mark.parametrize(
    ("sql", "reads"),
    [
        ("SELECT id FROM customer WHERE id = {}", True),
        ("  with c AS (SELECT 1) SELECT * FROM c", True),
        ("SELECT id FROM customer WHERE id = {} FOR UPDATE", False),
        ("SELECT id FROM customer FOR NO KEY UPDATE", False),
        ("WITH moved AS (UPDATE customer SET kind = {} RETURNING id) SELECT * FROM moved", False),
        ("WITH gone AS (DELETE FROM note RETURNING id) SELECT count(*) FROM gone", False),
        ("SELECT nextval('customer_id_seq')", False),
        ("SELECT pg_advisory_xact_lock(hashtext({}))", False),
        ("INSERT INTO team (name) VALUES ({})", False),
    ],
)
def test_only_statements_that_read_may_go_to_the_replica(sql: str, reads: bool) -> None:
    assert only_reads(sql) is reads
