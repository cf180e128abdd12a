"""API keys: stored as hashes, bound to users, managed on the CLI; unknown
and revoked keys get 401 with no data; anonymous access only when allowed."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

from crmgraph import auth
from crmgraph.app import with_state
from crmgraph.testing import live_server, settings_for

QUERY = {"query": "{ customers(first: 1) { totalCount } }"}


def cli(database_url: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "CRMGRAPH_DATABASE_URL": database_url, "CRMGRAPH_LOAD_ENTRY_POINTS": "0"}
    return subprocess.run(
        [sys.executable, "-m", "crmgraph", *args],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def stored_hashes(database_url: str) -> list[str]:
    rows = asyncio.run(
        with_state(
            settings_for(database_url),
            lambda state: state.db.fetch("SELECT secret_hash FROM api_key"),
        )
    )
    return [r["secret_hash"] for r in rows]


def test_keys_from_the_cli_authenticate_until_revoked(database_url: str) -> None:
    made = cli(database_url, "users", "create", "--name", "Ana", "--email", "ana@x.example",
               "--role", "agent")  # fmt: skip
    assert made.returncode == 0, made.stderr
    key = cli(database_url, "keys", "create", "--email", "ana@x.example", "--name", "laptop")
    assert key.returncode == 0, key.stderr
    token = key.stdout.strip()
    prefix, secret = auth.split_key(token)  # type: ignore[misc]
    assert stored_hashes(database_url) == [auth.hash_secret(secret)]  # never the secret itself
    listing = cli(database_url, "keys", "list").stdout
    assert prefix in listing and "ana@x.example" in listing and secret not in listing

    with live_server(settings_for(database_url, anonymous=False)) as server:
        good = server.http.post(
            "/graphql", json=QUERY, headers={"Authorization": f"Bearer {token}"}
        )
        assert good.status_code == 200 and good.json()["data"]["customers"]["totalCount"] == 0
        for headers in (
            {},
            {"Authorization": "Bearer crm_000000000000_nope"},
            {"Authorization": f"Bearer {token}x"},
            {"Authorization": f"Basic {token}"},
        ):
            refused = server.http.post("/graphql", json=QUERY, headers=headers)
            assert refused.status_code == 401
            assert "data" not in refused.json()
            assert refused.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        assert cli(database_url, "keys", "revoke", prefix).returncode == 0
        revoked = server.http.post(
            "/graphql", json=QUERY, headers={"Authorization": f"Bearer {token}"}
        )
        assert revoked.status_code == 401  # refused on the very next request
        assert server.http.get("/healthz").status_code == 200  # health checks need no key
    assert cli(database_url, "keys", "revoke", prefix).returncode == 2
    assert cli(database_url, "keys", "create", "--email", "ghost@x.example").returncode == 2


def test_anonymous_only_when_the_setting_allows(database_url: str) -> None:
    with live_server(settings_for(database_url, anonymous=False)) as server:
        assert server.http.post("/graphql", json=QUERY).status_code == 401
        page = server.http.get("/graphql", headers={"Accept": "text/html"})
        assert page.status_code == 200  # the GraphiQL page loads; its requests need the key
    with live_server(settings_for(database_url, anonymous=True)) as server:
        assert server.http.post("/graphql", json=QUERY).status_code == 200


def test_idempotency_keys_are_scoped_per_api_key(database_url: str) -> None:
    for email in ("a@x.example", "b@x.example"):
        cli(database_url, "users", "create", "--name", email, "--email", email)
    tokens = [cli(database_url, "keys", "create", "--email", e).stdout.strip()
              for e in ("a@x.example", "b@x.example")]  # fmt: skip
    create = {"query": 'mutation { createCustomer(input: {kind: CLIENT, name: "Same"}) '
              "{ customer { id } } }"}  # fmt: skip
    with live_server(settings_for(database_url, anonymous=False)) as server:
        ids = set()
        for token in tokens:
            response = server.http.post(
                "/graphql", json=create,
                headers={"Authorization": f"Bearer {token}", "Idempotency-Key": "k1"},
            )  # fmt: skip
            ids.add(response.json()["data"]["createCustomer"]["customer"]["id"])
        assert len(ids) == 2  # the same key string from two callers is two requests
