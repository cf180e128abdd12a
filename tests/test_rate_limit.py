"""The per-key budget of query cost: in-process for one server, shared through
Redis by several. Windows are a day long so no test run crosses one."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from crmgraph import auth
from crmgraph.app import AppState, with_state
from crmgraph.settings import Settings
from crmgraph.testing import LiveServer, live_server, require_redis, settings_for
from tests.conftest import fresh_database

QUERY = "{ customers(first: 10) { nodes { id } } }"
DAY = 86_400


def make_keys(database_url: str, count: int) -> list[str]:
    """``count`` keys of one new user: the budget is per key, not per user."""

    async def run(state: AppState) -> list[str]:
        email = f"{uuid.uuid4().hex[:8]}@rate.example"
        await auth.create_user(state.db, "Rate", email, "agent")
        return [await auth.create_key(state.db, email, f"k{i}") for i in range(count)]

    return asyncio.run(with_state(settings_for(database_url), run))


def ask(server: LiveServer, key: str) -> tuple[dict[str, Any], dict[str, str]]:
    response = server.http.post(
        "/graphql", json={"query": QUERY}, headers={"Authorization": f"Bearer {key}"}
    )
    assert response.status_code == 200, response.text
    return response.json(), dict(response.headers)


def spend_until_refused(server: LiveServer, key: str, limit: int) -> tuple[int, int, dict, dict]:
    """Ask until refused: (accepted count, cost per query, refusal, headers)."""
    cost = None
    for accepted in range(limit + 1):
        body, headers = ask(server, key)
        if body.get("errors"):
            assert cost is not None
            return accepted, cost, body, headers
        cost = body["extensions"]["cost"]["requested"]
        assert body["extensions"]["cost"]["rateLimit"]["remaining"] == limit - (accepted + 1) * cost
    raise AssertionError("never refused")


def check_refusal(body: dict, headers: dict, limit: int, cost: int, accepted: int) -> None:
    assert body["data"] is None
    error = body["errors"][0]
    ext = error["extensions"]
    assert ext["code"] == "RATE_LIMITED"
    assert (ext["limit"], ext["cost"], ext["windowSeconds"]) == (limit, cost, DAY)
    assert ext["remaining"] == limit - accepted * cost < cost
    assert 0 < ext["retryAfterSeconds"] <= DAY
    assert int(headers["retry-after"]) == ext["retryAfterSeconds"]
    assert f"Retry after {ext['retryAfterSeconds']} s" in error["message"]


def rate_limited(url: str, **overrides: Any) -> Settings:
    return settings_for(
        url, anonymous=False, rate_limit_cost=100, rate_limit_window_seconds=DAY, **overrides
    )


def test_a_key_over_its_budget_is_refused_with_when_to_retry(database_url: str) -> None:
    first, second = make_keys(database_url, 2)
    with live_server(rate_limited(database_url)) as server:
        accepted, cost, body, headers = spend_until_refused(server, first, 100)
        assert accepted == 100 // cost  # exactly as many as fit
        check_refusal(body, headers, 100, cost, accepted)
        again, _ = ask(server, first)  # a refused query spent nothing: still refused the same
        assert again["errors"][0]["extensions"]["remaining"] == 100 - accepted * cost
        fresh, _ = ask(server, second)  # the budget is per key
        assert "errors" not in fresh


@pytest.fixture
def shared_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with fresh_database("sqlite", request, tmp_path / "crm.sqlite") as url:
        yield url


def test_workers_share_one_budget_through_redis(shared_database: str) -> None:
    redis_url = require_redis()
    (key,) = make_keys(shared_database, 1)  # a new key: its budget starts empty in Redis
    settings = rate_limited(shared_database, redis_url=redis_url)
    with contextlib.ExitStack() as stack:
        one = stack.enter_context(live_server(settings))
        two = stack.enter_context(live_server(settings))
        body, _ = ask(one, key)
        cost = body["extensions"]["cost"]["requested"]
        fits = 100 // cost
        for i in range(1, fits):  # the rest of the budget, alternating servers
            body, _ = ask(two if i % 2 else one, key)
            assert "errors" not in body, body
        for server in (one, two):  # spent on both together: both refuse now
            body, headers = ask(server, key)
            check_refusal(body, headers, 100, cost, fits)
