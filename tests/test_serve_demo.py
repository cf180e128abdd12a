"""The README's first command, end to end: `crmgraph serve --demo` in a real
process migrates, seeds and serves; the demo data answers and pages cleanly."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers import free_port, stop, wait_ready

DEMO_CUSTOMERS = 300


@pytest.fixture
def demo_server(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    port = free_port()
    env = {
        **os.environ,
        "CRMGRAPH_DATABASE_URL": f"sqlite:///{tmp_path / 'demo.sqlite'}",
        "CRMGRAPH_LOAD_ENTRY_POINTS": "0",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "crmgraph", "serve", "--demo", "--port", str(port),
         "--demo-customers", str(DEMO_CUSTOMERS), "--log-level", "warning"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    keys: dict[str, str] = {}
    try:
        for line in process.stdout:  # type: ignore[union-attr]  # printed before serving
            found = re.search(r"demo (\w+) key.*: (crm_\S+)", line)
            if found:
                keys[found[1]] = found[2]
            if "GraphiQL at" in line:
                break
        assert set(keys) == {"admin", "agent", "viewer"}, f"serve --demo printed {keys}"
        wait_ready(process, url, process.stdout.read, attempts=1200)  # type: ignore[union-attr]
        yield url, keys
    finally:
        stop(process, 30)


def test_serve_demo_answers_and_pages(demo_server: tuple[str, dict[str, str]]) -> None:
    url, keys = demo_server
    key = keys["admin"]
    assert httpx.post(f"{url}/graphql", json={"query": "{ __typename }"}).status_code == 401
    query = """query($after: String) { customers(first: 100, after: $after) {
        edges { node { id name kind stage } } pageInfo { hasNextPage endCursor } totalCount } }"""
    with httpx.Client(base_url=url, timeout=60, headers={"Authorization": f"Bearer {key}"}) as http:
        first = http.post(
            "/graphql",
            json={
                "query": "{ customers(first: 5) { edges { node { id name } } pageInfo { hasNextPage endCursor } } }"
            },
        ).json()
        assert len(first["data"]["customers"]["edges"]) == 5
        assert first["data"]["customers"]["pageInfo"]["hasNextPage"] is True
        seen: list[str] = []
        kinds: set[str] = set()
        after = None
        for _ in range(DEMO_CUSTOMERS):
            page = http.post(
                "/graphql", json={"query": query, "variables": {"after": after}}
            ).json()
            conn = page["data"]["customers"]
            seen += [e["node"]["id"] for e in conn["edges"]]
            kinds |= {e["node"]["kind"] for e in conn["edges"]}
            if not conn["pageInfo"]["hasNextPage"]:
                break
            after = conn["pageInfo"]["endCursor"]
        assert len(seen) == len(set(seen)) == conn["totalCount"] == DEMO_CUSTOMERS
        schema_kinds = http.post("/graphql", json={"query": "{ customerKinds { kind } }"}).json()
        assert kinds == {
            k["kind"] for k in schema_kinds["data"]["customerKinds"]
        }  # every kind seeded
        page = http.get("/graphql", headers={"Accept": "text/html"})
        assert page.status_code == 200 and "GraphiQL" in page.text
        assert key in page.text  # the headers editor starts with the demo key

    def total(role: str) -> int:
        body = httpx.post(
            f"{url}/graphql",
            json={"query": "{ customers { totalCount } }"},
            headers={"Authorization": f"Bearer {keys[role]}"},
            timeout=60,
        ).json()
        return body["data"]["customers"]["totalCount"]

    # the printed keys show the roles: an agent sees only their customers, a viewer all
    assert 0 < total("agent") < total("viewer") == DEMO_CUSTOMERS
