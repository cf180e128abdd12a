"""API keys: stored as hashes, bound to users, managed on the CLI; unknown
and revoked keys get 401 with no data; anonymous access only when allowed."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from typing import Any

import pytest

from crmgraph import auth
from crmgraph.app import AppState, with_state
from crmgraph.db.engine import StatementCounter, current_counter
from crmgraph.principal_cache import PrincipalCache
from crmgraph.testing import live_server, require_redis, run_sql, settings_for
from tests.helpers import add_people, cli_in_process

QUERY = {"query": "{ customers(first: 1) { totalCount } }"}


def cli(database_url: str, *args: str, redis_url: str = "") -> subprocess.CompletedProcess:
    env = {**os.environ, "CRMGRAPH_DATABASE_URL": database_url, "CRMGRAPH_LOAD_ENTRY_POINTS": "0",
           "CRMGRAPH_REDIS_URL": redis_url}  # fmt: skip
    return subprocess.run(
        [sys.executable, "-m", "crmgraph", *args],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def stored_hashes(database_url: str) -> list[str]:
    rows = run_sql(settings_for(database_url), "SELECT secret_hash FROM api_key")
    return [r["secret_hash"] for r in rows]


@pytest.mark.parametrize("cache", ["no principal cache", "principal cache and Redis"])
def test_keys_from_the_cli_authenticate_until_revoked(database_url: str, cache: str) -> None:
    # Without Redis a cached principal outlives a revocation made by another
    # process for up to CRMGRAPH_API_KEY_CACHE_SECONDS (tested below); with it,
    # the CLI tells the server at once.
    redis_url = require_redis() if "Redis" in cache else ""
    overrides: dict[str, Any] = (
        {"redis_url": redis_url, "api_key_cache_seconds": 60}
        if redis_url
        else {"api_key_cache_seconds": 0}
    )
    # The commands run in this process (cli_in_process), except the revocation
    # the server must hear of over Redis: in process it would clear the
    # server's principal cache itself. tests/test_cli_start runs `python -m
    # crmgraph` as a process of its own.
    made = cli_in_process(database_url, "users", "create", "--name", "Ana",
                          "--email", "ana@x.example", "--role", "agent")  # fmt: skip
    assert made.returncode == 0, made.stderr
    key = cli_in_process(
        database_url, "keys", "create", "--email", "ana@x.example", "--name", "laptop"
    )
    assert key.returncode == 0, key.stderr
    token = key.stdout.strip()
    prefix, secret = auth.split_key(token)  # type: ignore[misc]
    assert stored_hashes(database_url) == [auth.hash_secret(secret)]  # never the secret itself
    # What does not depend on the cache is checked once per engine
    if not redis_url:
        listing = cli_in_process(database_url, "keys", "list").stdout
        assert prefix in listing and "ana@x.example" in listing and secret not in listing

    with live_server(settings_for(database_url, anonymous=False, **overrides)) as server:
        for _ in range(2):  # the second one from the cache, when there is one
            good = server.http.post(
                "/graphql", json=QUERY, headers={"Authorization": f"Bearer {token}"}
            )
            assert good.status_code == 200
            assert good.json()["data"]["customers"]["totalCount"] == 0
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
        revoke = cli if redis_url else cli_in_process  # over Redis: from another process
        assert revoke(database_url, "keys", "revoke", prefix, redis_url=redis_url).returncode == 0
        revoked = server.http.post(
            "/graphql", json=QUERY, headers={"Authorization": f"Bearer {token}"}
        )
        assert revoked.status_code == 401  # refused on the very next request
        assert server.http.get("/healthz").status_code == 200  # health checks need no key
    if not redis_url:
        assert cli_in_process(database_url, "keys", "revoke", prefix).returncode == 2
        ghost = cli_in_process(database_url, "keys", "create", "--email", "ghost@x.example")
        assert ghost.returncode == 2


def test_anonymous_only_when_the_setting_allows(database_url: str) -> None:
    with live_server(settings_for(database_url, anonymous=False)) as server:
        assert server.http.post("/graphql", json=QUERY).status_code == 401
        page = server.http.get("/graphql", headers={"Accept": "text/html"})
        assert page.status_code == 200  # the GraphiQL page loads; its requests need the key
    with live_server(settings_for(database_url, anonymous=True)) as server:
        assert server.http.post("/graphql", json=QUERY).status_code == 200


def test_idempotency_keys_are_scoped_per_api_key(database_url: str) -> None:
    create = {"query": 'mutation { createCustomer(input: {kind: CLIENT, name: "Same"}) '
              "{ customer { id } } }"}  # fmt: skip
    with live_server(settings_for(database_url, anonymous=False)) as server:
        # two agents' keys, made in process (the CLI's keys are tested above)
        people = {"a": "agent", "b": "agent"}
        tokens = server.run(lambda state: add_people(state, people, "x.example"))[0].values()
        ids = set()
        for token in tokens:
            response = server.http.post(
                "/graphql", json=create,
                headers={"Authorization": f"Bearer {token}", "Idempotency-Key": "k1"},
            )  # fmt: skip
            ids.add(response.json()["data"]["createCustomer"]["customer"]["id"])
        assert len(ids) == 2  # the same key string from two callers is two requests


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def counted(work: Any) -> tuple[Any, int]:
    counter = StatementCounter()
    token = current_counter.set(counter)
    try:
        return await work, counter.count
    finally:
        current_counter.reset(token)


def test_principal_cache_lookups_revocations_and_bounds(database_url: str) -> None:
    """A cached key costs no statement; a revocation in this process applies
    at once, one made elsewhere (a bare UPDATE here) when the entry expires;
    wrong secrets and unknown keys are never cached; the cache is bounded."""
    clock = FakeClock()

    async def scenario(state: AppState) -> None:
        await auth.create_user(state.db, "Ana", "ana@x.example", "agent")
        tokens = [await auth.create_key(state.db, "ana@x.example", f"k{i}") for i in range(3)]
        cache = PrincipalCache(5, max_entries=2, clock=clock)
        first, statements = await counted(auth.authenticate(state.db, tokens[0], cache))
        assert first is not None and first.name == "Ana" and statements == 1
        again, statements = await counted(auth.authenticate(state.db, tokens[0], cache))
        assert again == first and statements == 0

        prefix, secret = auth.split_key(tokens[0])  # type: ignore[misc]
        for bad in (f"crm_{prefix}_{secret}x", "crm_000000000000_nope", "nonsense"):
            assert await auth.authenticate(state.db, bad, cache) is None
        assert len(cache) == 1  # refused keys take no room

        # revoked by another process: served from the cache until the entry expires
        await state.db.fetch(
            "UPDATE api_key SET revoked_at = {} WHERE prefix = {}", auth.writes.now(), prefix
        )
        clock.now += 4.9
        assert await auth.authenticate(state.db, tokens[0], cache) == first
        clock.now += 0.2
        assert await auth.authenticate(state.db, tokens[0], cache) is None

        # revoked in this process: refused on the very next lookup
        second_prefix = auth.split_key(tokens[1])[0]  # type: ignore[index]
        assert await auth.authenticate(state.db, tokens[1], cache) is not None
        assert await auth.revoke_key(state.db, second_prefix)
        revoked, statements = await counted(auth.authenticate(state.db, tokens[1], cache))
        assert revoked is None and statements == 1

        # a lookup that read the row before a revocation does not store it
        generation = cache.generation
        cache.forget("someone-else")
        cache.put(second_prefix, "stale", first, generation)
        assert cache.get(second_prefix, "stale") is None

        # least recently used out first
        await auth.create_user(state.db, "Bo", "bo@x.example", "viewer")
        others = [await auth.create_key(state.db, "bo@x.example", f"b{i}") for i in range(2)]
        for token in (tokens[2], *others):
            assert await auth.authenticate(state.db, token, cache) is not None
        assert len(cache) == 2
        _, statements = await counted(auth.authenticate(state.db, tokens[2], cache))
        assert statements == 1  # evicted, looked up again

    asyncio.run(with_state(settings_for(database_url), scenario))


def test_principal_cache_forgets_teams_when_membership_changes(database_url: str) -> None:
    async def scenario(state: AppState) -> None:
        await auth.create_user(state.db, "Ana", "ana@x.example", "agent")
        token = await auth.create_key(state.db, "ana@x.example", "laptop")
        await auth.create_team(state.db, "north")
        cache = PrincipalCache(60)
        before = await auth.authenticate(state.db, token, cache)
        assert before is not None and before.team_ids == frozenset()
        await auth.add_team_member(state.db, "north", "ana@x.example")
        after = await auth.authenticate(state.db, token, cache)
        assert after is not None and len(after.team_ids) == 1

    asyncio.run(with_state(settings_for(database_url), scenario))
