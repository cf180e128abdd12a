"""Fragment bombs and their cousins: small documents that stand for huge ones
are refused with a clear error, quickly, while the server keeps answering.

``fragment Fi { ...F(i-1) ...F(i-1) }`` 29 levels deep is 300 tokens that
expand to 2^30 field selections; the depth and alias rules once expanded every
spread and hung the worker. One rule now measures depth, aliases, expanded
selections and same-name repeats with each fragment measured once
(:func:`crmgraph.schema.limits.document_sizes`) and refuses before any other
rule walks the document; graphql-core's overlapping-fields rule runs on a
small work budget behind it.

How "quickly" is checked, in two ways: a count that does not depend on the
clock (the measure visits each selection node of the document at most once,
however large the expansion), and the wall-clock time of each refusal over a
real socket, under 0.5 s: ten times the issue's 50 ms, because this machine's
two cores are shared by several test runs at once (measured in process, each
document new to the caches: 6 to 10 ms for the fragment bombs, 35 to 70 ms for
the three of 1,700 to 2,700 tokens, most of it parsing); before the fix the
fragment bomb never answered.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from graphql import FieldNode, FragmentSpreadNode, InlineFragmentNode, Visitor, parse, visit

from crmgraph.schema.limits import QueryLimits, document_sizes
from crmgraph.testing import LiveServer

LIMITS = QueryLimits()
REFUSAL_SECONDS = 0.5  # the issue's 50 ms, with a margin for a shared machine


def fragment_bomb(levels: int = 29) -> str:
    """The issue's document: each fragment spreads the previous one twice."""
    fragments = ["fragment F0 on Customer { id name }"] + [
        f"fragment F{i} on Customer {{ ...F{i - 1} ...F{i - 1} }}" for i in range(1, levels + 1)
    ]
    return f"{{ customers(first: 1) {{ nodes {{ ...F{levels} }} }} }}\n" + "\n".join(fragments)


def aliased_bomb(levels: int = 29) -> str:
    """The bomb with an alias in every level: aliases double with the selections."""
    fragments = ["fragment A0 on Customer { id }"] + [
        f"fragment A{i} on Customer {{ a{i}: name ...A{i - 1} ...A{i - 1} }}"
        for i in range(1, levels + 1)
    ]
    return f"{{ customers(first: 1) {{ nodes {{ ...A{levels} }} }} }}\n" + "\n".join(fragments)


def nested_fan_out(levels: int = 30) -> str:
    """Each fragment spreads the previous one under two related customers."""
    fragments = ["fragment G0 on Customer { id }"] + [
        f"fragment G{i} on Customer {{ relationships {{ "
        f"toCustomer {{ ...G{i - 1} }} fromCustomer {{ ...G{i - 1} }} }} }}"
        for i in range(1, levels + 1)
    ]
    return f"{{ customers(first: 1) {{ nodes {{ ...G{levels} }} }} }}\n" + "\n".join(fragments)


def many_spreads_of_one_big_fragment() -> str:
    big = "fragment Big on Customer { " + "id name email phone " * 60 + "}"
    return "{ customers(first: 1) { nodes { " + "...Big " * 1500 + "} } }\n" + big


def wide_fragment_under_aliases() -> str:
    wide = "fragment Wide on Customer { id name email phone stage kind createdAt updatedAt }"
    pages = " ".join(f"c{i}: customers(first: 1) {{ nodes {{ ...Wide }} }}" for i in range(300))
    return "{ " + pages + " }\n" + wide


def one_response_name_repeated() -> str:
    """No fragment at all: 300 copies of one field, which graphql-core's
    overlapping-fields rule compared pairwise for 3.9 s. The size rule counts
    the pairs and refuses first; graphql-core's own budget (cut to 5,000 units)
    stands behind it for pairs formed through fragments."""
    return "{ " + "customers(first: 1) { nodes { id } } " * 300 + "}"


BOMBS = {
    "fragment bomb": (fragment_bomb(), "QUERY_TOO_LARGE"),
    "aliased fragment bomb": (aliased_bomb(), "TOO_MANY_ALIASES"),
    "nested fragment fan-out": (nested_fan_out(), "QUERY_TOO_DEEP"),
    "many spreads of one big fragment": (many_spreads_of_one_big_fragment(), "QUERY_TOO_LARGE"),
    "wide fragment under many aliases": (wide_fragment_under_aliases(), "TOO_MANY_ALIASES"),
    "one response name repeated": (one_response_name_repeated(), "QUERY_TOO_COMPLEX"),
}


def selection_nodes(query: str) -> int:
    """Fields, inline fragments and spreads as written in the document."""
    count = 0

    class Count(Visitor):
        def enter(self, node: object, *_: object) -> None:
            nonlocal count
            if isinstance(node, (FieldNode, InlineFragmentNode, FragmentSpreadNode)):
                count += 1

    visit(parse(query), Count())
    return count


@pytest.fixture
def client(server: LiveServer) -> Iterator[httpx.Client]:
    """A client of the server's real socket (so /healthz can be polled beside it)."""
    with httpx.Client(base_url=server.url, timeout=60) as http:
        yield http


def refusal(client: httpx.Client, query: str) -> tuple[dict, float]:
    started = time.perf_counter()
    response = client.post("/graphql", json={"query": query})
    elapsed = time.perf_counter() - started
    assert response.status_code == 200, response.text
    return response.json(), elapsed


@pytest.mark.parametrize("name", list(BOMBS))
def test_each_bomb_is_measured_in_one_pass(name: str) -> None:
    """The clock-free bound: the size measure visits each selection node of
    the document at most once, and the expansion it reports is the refused one."""
    query, _ = BOMBS[name]
    [(_, size)] = document_sizes(parse(query, max_tokens=LIMITS.max_tokens))
    assert size.visited <= selection_nodes(query)
    if name == "fragment bomb":
        assert size.selections == 2 + 2**30  # customers, nodes, then F0 2^29 times
        assert size.depth == 2


def test_each_bomb_is_refused_at_once_with_a_clear_error(client: httpx.Client) -> None:
    for name, (query, code) in BOMBS.items():
        body, elapsed = refusal(client, query)
        assert body["data"] is None, (name, body)
        [error] = body["errors"]
        assert error["extensions"]["code"] == code, (name, error)
        assert body["extensions"]["sqlStatements"] == 0, name  # nothing ran
        assert elapsed < REFUSAL_SECONDS, f"{name}: {elapsed * 1000:.0f} ms"


def test_the_server_answers_healthz_while_bombs_arrive(client: httpx.Client) -> None:
    """A poller asks /healthz over and over while every bomb is sent three
    times; it must get answers throughout, none kept waiting long."""
    stop = threading.Event()
    waits: list[float] = []
    failures: list[object] = []

    def poll_healthz() -> None:
        with httpx.Client(base_url=str(client.base_url), timeout=30) as health:
            while not stop.is_set():
                started = time.perf_counter()
                try:
                    status = health.get("/healthz").status_code
                except httpx.HTTPError as exc:
                    failures.append(exc)
                    continue
                waits.append(time.perf_counter() - started)
                if status != 200:
                    failures.append(status)

    poller = threading.Thread(target=poll_healthz, daemon=True)
    poller.start()
    try:
        answered_before = len(waits)
        for _ in range(3):
            for query, code in BOMBS.values():
                body, _ = refusal(client, query)
                assert body["errors"][0]["extensions"]["code"] == code
        deadline = time.monotonic() + 10
        while len(waits) <= answered_before and time.monotonic() < deadline:
            time.sleep(0.01)  # polling a condition with a deadline
    finally:
        stop.set()
        poller.join(timeout=30)
    assert not failures, failures
    assert waits, "/healthz never answered"
    assert max(waits) < 2 * REFUSAL_SECONDS, f"/healthz waited {max(waits) * 1000:.0f} ms"


def test_documents_that_reuse_fragments_sensibly_still_run(server: LiveServer) -> None:
    query = """
    query { customers(first: 2) { nodes { ...Card owner { ...Person } } }
            users { ...Person } }
    fragment Card on Customer { id name ... on Client { segment } }
    fragment Person on User { id name }
    """
    body = server.post(query)
    assert "errors" not in body, body["errors"]


def test_the_expanded_size_limit_is_a_setting(database_url: str) -> None:
    from crmgraph.testing import live_server, settings_for

    query = "{ customers(first: 1) { nodes { ...F } } } fragment F on Customer { id name }"
    with live_server(settings_for(database_url, max_query_selections=3)) as small:
        [error] = small.post(query)["errors"]
        assert error["extensions"] == {
            "code": "QUERY_TOO_LARGE",
            "selections": 4,
            "maxSelections": 3,
        }
    with live_server(settings_for(database_url, max_query_selections=4)) as enough:
        assert "errors" not in enough.post(query)
