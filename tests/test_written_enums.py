"""Channels and directions of an interaction filter are written into the
statement (issue 21, ``queries.written_in``), like kinds: PostgreSQL's generic
plan of the relation filter then knows how many interactions they hold. The
answers stay those of the filter, on both engines, through the resolvers and
through the compiled statement; anything that is not an enum value is bound.
"""

from __future__ import annotations

from crmgraph.db import queries
from crmgraph.testing import LiveServer, live_server, settings_for

# customer name -> interactions (channel, direction, occurred at)
HISTORY = {
    "Mail in": [("EMAIL", "INBOUND", "2026-03-01T10:00:00+00:00")],
    "Phone out": [("PHONE", "OUTBOUND", "2026-03-02T10:00:00+00:00")],
    "Old mail": [("EMAIL", "OUTBOUND", "2025-01-01T10:00:00+00:00")],
    "Store only": [("STORE", "INBOUND", "2026-03-03T10:00:00+00:00")],
    "Nothing": [],
}
RELATED = (
    "query($filter: InteractionFilter) { customers(first: 10, filter: { hasInteraction: "
    "$filter }) { nodes { name interactions(first: 5, filter: $filter) { nodes { channel "
    "direction } } } } }"
)


def log(server: LiveServer) -> None:
    for name, interactions in HISTORY.items():
        done = server.post(
            "mutation($input: CreateCustomerInput!) { createCustomer(input: $input) "
            "{ customer { id } userErrors { message } } }",
            {"input": {"kind": "CLIENT", "name": name, "allowDuplicate": True}},
        )["data"]["createCustomer"]
        assert done["userErrors"] == [], done
        for channel, direction, at in interactions:
            logged = server.post(
                "mutation($input: LogInteractionInput!) { logInteraction(input: $input) "
                "{ userErrors { message } } }",
                {
                    "input": {
                        "customerId": done["customer"]["id"],
                        "channel": channel,
                        "direction": direction,
                        "subject": name,
                        "occurredAt": at,
                    }
                },
            )
            assert logged["data"]["logInteraction"]["userErrors"] == [], logged


def test_enum_values_are_written_in_and_anything_else_is_bound() -> None:
    match = queries.InteractionMatch(channels=("EMAIL", "PHONE"), directions=("INBOUND",))
    where = queries.Where()
    queries.interaction_conditions(where, match, "i")
    assert where.sql() == "i.channel IN ('EMAIL', 'PHONE') AND i.direction IN ('INBOUND')"
    assert where.args == []
    odd = queries.Where()
    queries.interaction_conditions(
        odd, queries.InteractionMatch(channels=("EMAIL", "x' OR 1=1")), "i"
    )
    assert odd.sql() == "i.channel IN ({}, {})" and odd.args == ["EMAIL", "x' OR 1=1"]


def test_the_relation_filter_answers_the_same_with_values_written_in(database_url: str) -> None:
    cases = [
        (
            {"channels": ["EMAIL", "PHONE"], "since": "2026-01-01T00:00:00+00:00"},
            ["Phone out", "Mail in"],
        ),
        ({"channels": ["EMAIL"]}, ["Old mail", "Mail in"]),
        ({"directions": ["INBOUND"]}, ["Store only", "Mail in"]),
        ({"channels": ["EMAIL", "PHONE"], "directions": ["OUTBOUND"]}, ["Old mail", "Phone out"]),
        ({"channels": ["CHAT"]}, []),
    ]
    with live_server(settings_for(database_url)) as server:
        log(server)
        for filters, names in cases:
            for _ in range(7):  # the resolvers, then the compiled statement, past 5 executions
                nodes = server.post(RELATED, {"filter": filters})["data"]["customers"]["nodes"]
                assert sorted(n["name"] for n in nodes) == sorted(names), filters
                for node in nodes:
                    found = node["interactions"]["nodes"]
                    assert found, (filters, node)
                    for interaction in found:
                        assert interaction["channel"] in filters.get(
                            "channels", [interaction["channel"]]
                        )
                        assert interaction["direction"] in filters.get(
                            "directions", [interaction["direction"]]
                        )
