"""The direct path (crmgraph.compiled.direct) against the full request path, on both engines.

Two real servers on one seeded database, both with compiled reads: one
answers a document the full path has answered before straight from the HTTP
request, the other (``direct_reads=False``) always goes through strawberry's
view and extensions. Every request is sent to both in the same order, so the
two rate-limit budgets see the same charges: the answers must be the same
bytes' worth of JSON (data, errors, the statement count, the cost and the
budget left), and the direct server must have answered every repeated
compilable query itself (it says so in a debugging header).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from crmgraph.auth import ROLES
from crmgraph.compiled.direct import ANSWERED_HEADER
from crmgraph.testing import LiveServer, live_server, settings_for, user_key
from tests.conftest import fresh_database
from tests.test_compiled_reads import CORPUS, MIXED, compiles, seeded_servers

# a budget no test spends: the limiter runs and reports what is left; windows
# are aligned on the clock, and a day makes one starting between the two
# servers' answers to a request (which then disagree on what is left) unlikely
LIMITED = {"rate_limit_cost": 10**9, "rate_limit_window_seconds": 86_400}


@dataclass
class Answer:
    status: int
    body: Any
    direct: bool
    retry_after: str | None


@dataclass
class Servers:
    engine: str
    direct: LiveServer
    view: LiveServer
    keys: dict[str, str]

    def both(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        role: str = "admin",
        *,
        content: bytes | None = None,
    ) -> tuple[Answer, Answer]:
        """The direct server's answer, then the view's, to the same request."""
        headers = {"Authorization": f"Bearer {self.keys[role]}"}
        if content is None:
            content = httpx.Request(
                "POST", "/", json={"query": query, "variables": variables or {}}
            ).content
        headers["Content-Type"] = "application/json"
        return tuple(  # type: ignore[return-value]
            answer(server.http.post("/graphql", content=content, headers=headers))
            for server in (self.direct, self.view)
        )


def answer(response: httpx.Response) -> Answer:
    try:
        body = comparable(response.json())
    except ValueError:
        body = response.text
    return Answer(
        response.status_code,
        body,
        response.headers.get(ANSWERED_HEADER.decode()) == "direct",
        response.headers.get("retry-after"),
    )


def comparable(body: Any) -> Any:
    """The answer without the seconds to the budget's reset, which the clock moves."""
    if not isinstance(body, dict):
        return body
    rate = body.get("extensions", {}).get("cost", {}).get("rateLimit")
    if rate is not None:
        rate.pop("resetInSeconds")
    for error in body.get("errors") or ():
        if error.get("extensions", {}).get("code") == "RATE_LIMITED":
            error.pop("message")  # it says when to retry, in seconds
            error["extensions"].pop("retryAfterSeconds")
    return body


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def servers(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Servers]:
    with seeded_servers(request, tmp_path_factory, "direct_reads", **LIMITED) as (
        direct,
        view,
        keys,
    ):
        yield Servers(request.param, direct, view, keys)


@pytest.mark.parametrize("role", ROLES)
def test_repeated_queries_are_answered_directly_with_the_same_json(
    servers: Servers, role: str
) -> None:
    answered_directly = 0
    for query, variables in CORPUS + MIXED:
        context = f"{servers.engine} as {role}: {query} {variables}"
        first, first_view = servers.both(query, variables, role)
        again, again_view = servers.both(query, variables, role)
        assert first.body == first_view.body, context
        assert again.body == again_view.body, context
        assert not first_view.direct and not again_view.direct
        fully_compiled = (query, variables) in CORPUS and compiles(query, variables, servers.engine)
        if fully_compiled and not first.body.get("errors"):
            assert again.direct, context
            reads = 1 if "customer" in query or "node(" in query else 0
            assert again.body["extensions"]["sqlStatements"] == reads, context
            answered_directly += 1
        else:  # errors, or fields computed in Python: the view answers every time
            assert not again.direct, context
    assert answered_directly >= 20


def test_a_guarded_field_is_refused_to_a_caller_after_others_were_answered_directly(
    servers: Servers,
) -> None:
    query = "{ customers(first: 5) { nodes { id ... on Employee { salary } } } }"
    for _ in range(2):
        direct, view = servers.both(query, role="admin")
    assert direct.direct and direct.body == view.body
    refused, refused_view = servers.both(query, role="viewer")
    assert refused.body == refused_view.body and not refused.direct
    assert refused.body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


def test_each_caller_gets_rows_of_their_own_scope(servers: Servers) -> None:
    query = "{ customers(first: 50) { totalCount nodes { id owner { id } team { name } } } }"
    seen = {}
    for role in ("admin", "agent"):
        for _ in range(2):
            direct, view = servers.both(query, role=role)
            assert direct.body == view.body
        assert direct.direct
        seen[role] = direct.body["data"]["customers"]["totalCount"]
    assert 0 < seen["agent"] < seen["admin"]


def test_new_variables_and_a_cost_over_the_limit_go_to_the_view(servers: Servers) -> None:
    page = "customers(first: $first) { nodes { id interactions(first: $inner) { nodes { id } } } }"
    query = f"query($first: Int, $inner: Int) {{ a: {page} b: {page} c: {page} }}"
    for variables, direct_again in (
        ({"first": 3, "inner": 2}, True),
        ({"first": 4, "inner": 2}, True),
        ({"first": 100, "inner": 100}, False),  # 3 x 10,201: over the limit, refused
        ({"first": 1000, "inner": 1}, False),  # a page size a resolver refuses
    ):
        first, first_view = servers.both(query, variables)
        again, again_view = servers.both(query, variables)
        assert first.body == first_view.body and again.body == again_view.body
        assert not first.direct, "variables never seen are checked by the view first"
        assert again.direct is direct_again, variables
        assert bool(again.body.get("errors")) is not direct_again


def test_malformed_and_batched_requests_get_the_views_answer(servers: Servers) -> None:
    for content in (
        b"{not json",
        b'[{"query": "{ __typename }"}, {"query": "{ __typename }"}]',
        b'{"query": 5}',
        b'{"query": "{ __typename }", "variables": [1]}',
        b'{"variables": {}}',
    ):
        for _ in range(2):
            direct, view = servers.both("", content=content)
            assert (direct.status, direct.body) == (view.status, view.body), content
            assert not direct.direct


def test_the_rate_limit_refuses_direct_answers_like_the_view(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    query = "{ customers(first: 10) { nodes { id name } } }"
    with fresh_database("sqlite", request, tmp_path / "crm.sqlite") as url:
        settings = settings_for(url)
        key = asyncio.run(user_key(settings, "agent"))
        with live_server(settings) as probe:
            cost = probe.post(query, key=key)["extensions"]["cost"]["requested"]
        budget = 4 * cost + cost // 2  # room for four answers
        limited = {"rate_limit_cost": budget, "rate_limit_window_seconds": 86_400}
        with (
            live_server(settings_for(url, **limited)) as direct,
            live_server(settings_for(url, direct_reads=False, **limited)) as view,
        ):
            headers = {"Authorization": f"Bearer {key}"}
            runs = []
            for server in (direct, view):
                runs.append(
                    [
                        answer(server.http.post("/graphql", json={"query": query}, headers=headers))
                        for _ in range(6)
                    ]
                )
    direct_run, view_run = runs
    assert [a.body for a in direct_run] == [a.body for a in view_run]
    assert [a.direct for a in direct_run] == [False, True, True, True, False, False]
    codes = [
        (a.body.get("errors") or [{}])[0].get("extensions", {}).get("code") for a in direct_run
    ]
    assert codes == [None] * 4 + ["RATE_LIMITED"] * 2
    assert direct_run[-1].retry_after is not None
    assert direct_run[3].body["extensions"]["cost"]["rateLimit"]["remaining"] == budget - 4 * cost
