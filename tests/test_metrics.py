"""``GET /metrics`` (issue 22): a real server over its socket, scraped and
parsed with prometheus-client's own parser.

Counters are the process's (prometheus-client keeps them per process, and
this suite starts many apps in one), so each test reads what its own
requests added: a scrape before, a scrape after, or operation names of its own.
"""

from __future__ import annotations

import datetime
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.requests import Request

from crmgraph.app import AppState
from crmgraph.compiled.direct import ANSWERED_HEADER
from crmgraph.observability.metrics import (
    MetricsEndpoint,
    OperationNames,
    Readings,
    is_loopback,
)
from crmgraph.observability.request_facts import RequestFacts
from crmgraph.testing import LiveServer, live_server, new_user_key, settings_for
from tests.helpers import create_customer, free_port, poll, stop, wait_ready
from tests.test_webhooks import FAST, Receiver, create_webhook

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
def metered(database_url: str) -> Iterator[LiveServer]:
    settings = settings_for(database_url, metrics=True, max_query_depth=4, max_body_bytes=4096)
    with live_server(settings, socket=True) as server:
        yield server


def scrape(url: str, token: str | None = None) -> Samples:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = httpx.get(f"{url}/metrics", headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def post(url: str, query: str) -> httpx.Response:
    return httpx.post(f"{url}/graphql", json={"query": query}, timeout=30)


def test_a_query_is_counted_by_name_then_a_repeat_as_answered_directly(
    metered: LiveServer,
) -> None:
    url = metered.url
    name = f"Metered{uuid.uuid4().hex[:8]}"
    query = f"query {name} {{ customers(first: 3) {{ nodes {{ id name }} }} }}"
    before = scrape(url)
    first, second = post(url, query), post(url, query)
    assert "errors" not in first.json() and "errors" not in second.json()
    assert first.headers.get(ANSWERED_HEADER.decode()) != "direct"
    assert second.headers.get(ANSWERED_HEADER.decode()) == "direct"
    after = scrape(url)
    requests = "crmgraph_requests_total"
    assert value(after, requests, operation=name, outcome="ok", answered_by="full") == 1
    assert value(after, requests, operation=name, outcome="ok", answered_by="direct") == 1
    for path in ("full", "direct"):
        count = "crmgraph_request_duration_seconds_count"
        labels = {"answered_by": path, "operation_type": "query"}
        assert value(after, count, **labels) - value(before, count, **labels) >= 1
    costs = value(after, "crmgraph_query_cost_count") - value(before, "crmgraph_query_cost_count")
    assert costs == 2  # the direct answer's cost too


def test_a_too_deep_query_and_a_too_large_body_are_counted_as_refusals(
    metered: LiveServer,
) -> None:
    url = metered.url
    deep = "{ customers(first: 1) { nodes { owner { teams { members { name } } } } } }"
    before = scrape(url)
    for _ in range(2):  # the second is refused from the validation cache
        errors = post(url, deep).json()["errors"]
        assert errors[0]["extensions"]["code"] == "QUERY_TOO_DEEP"
    assert post(url, "{ __typename }" + " " * 5000).status_code == 413
    after = scrape(url)
    assert delta(before, after, "crmgraph_refusals_total", code="BODY_TOO_LARGE") == 1
    refusals = "crmgraph_refusals_total"
    assert (
        value(after, refusals, code="QUERY_TOO_DEEP")
        - value(before, refusals, code="QUERY_TOO_DEEP")
        == 2
    )


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def test_a_rate_limited_query_is_counted_as_a_refusal_after_direct_answers(
    database_url: str,
) -> None:
    """The direct path refuses nothing itself: what it would refuse it hands
    to the view, which refuses it, and that is what is counted."""
    query = "{ customers(first: 5) { nodes { id } } }"  # costs 6
    settings = settings_for(database_url, metrics=True, rate_limit_cost=15)
    with live_server(settings, socket=True) as server:
        before = scrape(server.url)
        answers = [post(server.url, query) for _ in range(3)]
        after = scrape(server.url)
    assert answers[0].json()["extensions"]["cost"]["requested"] == 6
    assert [a.headers.get(ANSWERED_HEADER.decode()) for a in answers[:2]] == [None, "direct"]
    assert answers[2].json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
    assert delta(before, after, "crmgraph_refusals_total", code="RATE_LIMITED") == 1


def test_unauthenticated_and_forbidden_requests_are_counted(database_url: str) -> None:
    settings = settings_for(database_url, metrics=True, anonymous=False)
    salary = "{ customers(first: 5) { nodes { id ... on Employee { salary } } } }"
    with live_server(settings, socket=True) as server:
        viewer = server.run(lambda state: new_user_key(state, "viewer"))
        before = scrape(server.url)
        assert post(server.url, "{ __typename }").status_code == 401
        for _ in range(2):
            response = httpx.post(
                f"{server.url}/graphql",
                json={"query": salary},
                headers={"Authorization": f"Bearer {viewer}"},
                timeout=30,
            )
            assert response.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
        after = scrape(server.url)
    refusals = "crmgraph_refusals_total"
    assert delta(before, after, refusals, code="UNAUTHENTICATED") == 1
    assert delta(before, after, refusals, code="FORBIDDEN") == 2
    refused = {"outcome": "refused", "answered_by": "none", "operation": "unknown"}
    assert delta(before, after, "crmgraph_requests_total", **refused) == 1  # the 401


def test_levels_pool_subscriptions_and_outbox_lag(metered: LiveServer) -> None:
    samples = scrape(metered.url)
    assert ("crmgraph_live_subscriptions", frozenset()) in samples
    assert value(samples, "crmgraph_outbox_lag_seconds") >= 0
    pool = {"pool": "primary"}
    if metered.engine == "postgres":
        assert value(samples, "crmgraph_db_pool_connections", **pool) >= 1
        assert value(samples, "crmgraph_db_pool_max_connections", **pool) >= 1
        assert value(samples, "crmgraph_db_pool_waiting", **pool) == 0
        assert ("crmgraph_db_pool_connections_in_use", frozenset(pool.items())) in samples
    else:  # SQLite has no pool to report
        assert not any(name.startswith("crmgraph_db_pool") for name, _ in samples)


def test_a_read_replica_pool_is_reported_beside_the_primary(database_url: str) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("a read replica is a PostgreSQL setting")
    # the same database as the "replica": its pool is what is under test
    settings = settings_for(
        database_url, metrics=True, database_read_url=database_url, pool_max_size=4
    )
    with live_server(settings, socket=True) as server:
        samples = scrape(server.url)
    for pool in ("primary", "replica"):
        assert value(samples, "crmgraph_db_pool_max_connections", pool=pool) == 4
        assert value(samples, "crmgraph_db_pool_connections", pool=pool) >= 1


def test_outbox_lag_is_the_age_of_the_oldest_undelivered_event(metered: LiveServer) -> None:
    written = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=120)

    async def stall_and_write(state: AppState) -> None:
        await state.events.stop()  # nothing delivers it while the test looks
        await state.db.fetch(
            "INSERT INTO event (type, payload, created_at, attempts) VALUES ({}, {}, {}, 0)",
            "test.metrics_lag",
            "{}",
            written,
        )

    metered.run(stall_and_write)
    lag = value(scrape(metered.url), "crmgraph_outbox_lag_seconds")
    assert 120 <= lag < 120 + 60


def test_webhook_deliveries_are_counted_by_outcome(database_url: str) -> None:
    receiver = Receiver()
    settings = settings_for(database_url, metrics=True, **{**FAST, "webhook_max_attempts": 2})
    deliveries = "crmgraph_webhook_deliveries_total"
    try:
        with live_server(settings, socket=True) as server:
            create_webhook(server, receiver.url, ["customer.created"])
            before = scrape(server.url)

            def counted(outcome: str) -> bool:
                return delta(before, scrape(server.url), deliveries, outcome=outcome) >= 1

            create_customer(server, name="Delivered")
            poll("a delivery counted as succeeded", lambda: counted("succeeded"))
            receiver.answer = lambda request: 503
            create_customer(server, name="Refused Twice")
            poll("a delivery counted as failed", lambda: counted("failed"))
            after = scrape(server.url)
    finally:
        receiver.close()
    for outcome in ("succeeded", "retrying", "failed"):  # the second try was the last
        assert delta(before, after, deliveries, outcome=outcome) == 1, outcome


def test_metrics_off_is_404(database_url: str) -> None:
    with live_server(settings_for(database_url), socket=True) as server:
        assert httpx.get(f"{server.url}/metrics", timeout=30).status_code == 404


def test_a_token_is_required_when_set(database_url: str) -> None:
    settings = settings_for(database_url, metrics=True, metrics_token="metrics-s3cret")
    with live_server(settings, socket=True) as server:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic x"}):
            response = httpx.get(f"{server.url}/metrics", headers=headers, timeout=30)
            assert response.status_code == 401
            assert response.headers["www-authenticate"].startswith("Bearer")
        # a request counted first: the counter has no sample until one is (a
        # fresh process's, when this test is the first of its worker)
        assert post(server.url, "{ __typename }").status_code == 200
        assert "crmgraph_requests_total" in str(scrape(server.url, "metrics-s3cret"))


def request_from(host: str, headers: dict[str, str] | None = None) -> Request:
    scope: dict[str, Any] = {
        "type": "http",
        "method": "GET",
        "path": "/metrics",
        "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
        "client": (host, 40000),
    }
    return Request(scope)


async def no_lag() -> float:
    return 0.0


def test_without_a_token_only_loopback_clients_are_answered() -> None:
    endpoint = MetricsEndpoint(None, Readings(dict, lambda: 0, no_lag))
    assert endpoint.refusal(request_from("127.0.0.1")) is None
    assert endpoint.refusal(request_from("::1")) is None
    refused = endpoint.refusal(request_from("10.1.2.3"))
    assert refused is not None and refused.status_code == 403
    assert is_loopback("127.0.0.53") and not is_loopback("128.0.0.1") and not is_loopback(None)
    with_token = MetricsEndpoint("t", Readings(dict, lambda: 0, no_lag))
    assert with_token.refusal(request_from("10.1.2.3", {"Authorization": "Bearer t"})) is None


def test_operation_names_are_bounded() -> None:
    names = OperationNames(limit=2)

    def label(name: str | None, kind: str | None = "query", outcome: str = "ok") -> str:
        facts = RequestFacts("id", "POST", "/graphql", operation_name=name, operation_type=kind)
        facts.outcome = outcome
        return names.label(facts)

    assert label(None) == "anonymous" and label(None, None) == "unknown"
    assert label("Refused", outcome="refused") == "other"  # a refusal admits no name
    assert (label("A"), label("B"), label("C"), label("A")) == ("A", "B", "other", "A")
    assert label("X" * 101) == "other"


def test_several_workers_add_up_in_multiprocess_mode(database_url: str, tmp_path: Path) -> None:
    """``crmgraph serve --workers 2`` with PROMETHEUS_MULTIPROC_DIR: whichever
    worker a scrape reaches, it reports both workers' numbers."""
    port, prom = free_port(), tmp_path / "prometheus"
    prom.mkdir()
    env = {
        **os.environ,
        "CRMGRAPH_DATABASE_URL": database_url,
        "CRMGRAPH_LOAD_ENTRY_POINTS": "0",
        "CRMGRAPH_ANONYMOUS": "1",
        "CRMGRAPH_METRICS": "1",
        "CRMGRAPH_POOL_MAX_SIZE": "3",
        "PROMETHEUS_MULTIPROC_DIR": str(prom),
    }
    log = tmp_path / "serve.log"
    with log.open("a") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "crmgraph", "serve", "--port", str(port), "--workers", "2",
             "--log-level", "warning"],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(process, url, log.read_text, attempts=1200)
        if database_url.startswith("postgresql"):  # each worker writes its pool when it starts
            pool = {"pool": "primary"}
            poll(
                "both workers' pools",
                lambda: value(scrape(url), "crmgraph_db_pool_max_connections", **pool) == 6,
            )
        name = f"Workers{uuid.uuid4().hex[:8]}"
        for _ in range(20):  # a new connection each: the workers share them out
            assert "errors" not in post(url, f"query {name} {{ __typename }}").json()
        for _ in range(6):
            counted = scrape(url)
            total = sum(
                value(
                    counted,
                    "crmgraph_requests_total",
                    operation=name,
                    outcome="ok",
                    answered_by=path,
                )
                for path in ("full", "direct")
            )
            assert total == 20
            assert ("crmgraph_live_subscriptions", frozenset()) in counted
            assert not any(metric.startswith("process_") for metric, _ in counted)
        assert {p.name.split("_")[0] for p in prom.iterdir()} >= {"counter", "histogram"}
    finally:
        stop(process, 30)
