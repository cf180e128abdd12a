"""Analytics per role (issue 24), on both engines: a party is counted in the
funnel of each kind it holds, by that role's own stages, and once in party
totals (revenue, RFM, cohorts without a type); ending a role takes its open
stay out of the ``current`` counts from the moment it ended, while its
entries stay history (a deleted party, by contrast, leaves the default
scope as a whole); a type's cohort is of the parties' first entries into
it (a client who becomes a guarantor in March is in March's guarantor
cohort).

Dated history, as of 2026-07-01 (``test_role_cohorts_and_ended_roles_over_time``):
- Q: client created 01-10: interest 01-10, engaged 02-01; guarantor role
  added 03-05 (proposed), verified 04-10, the role ended 05-20.
- G: guarantor created 03-12: proposed 03-12.
- C: client created 01-20: interest 01-20.
"""

from __future__ import annotations

import asyncio
import datetime
from typing import Any

from crmgraph.analytics import cohorts, funnel
from crmgraph.analytics.scope import AnalyticsScope
from crmgraph.app import AppState, with_state
from crmgraph.db import queries, stays, writes
from crmgraph.testing import LiveServer, settings_for
from tests.helpers import create_customer, insert_customer, log_interaction

ROLE = """mutation($input: {name}Input!) {{ {field}(input: $input) {{
  customer {{ version }} userErrors {{ field message code }} }} }}"""

MOVE = """mutation($input: TransitionCustomerInput!) { transitionCustomer(input: $input) {
  customer { version } userErrors { field message code } } }"""

LINK = """mutation($input: LinkCustomersInput!) { linkCustomers(input: $input) {
  relationship { id } userErrors { field message code } } }"""

DELETE = """mutation($id: ID!, $version: Int!) {
  deleteCustomer(input: {id: $id, expectedVersion: $version}) { userErrors { code } } }"""

REPORTS = """query($filter: CustomerFilter) { analytics(filter: $filter) {
  funnel { kinds { kind stages { stage entered current advanced } }
           phases { phase entered current advanced } }
  cohorts { month size }
  revenue(by: KIND) { segment customers revenue }
  rfm { customers } } }"""


def role(server: LiveServer, field: str, values: dict[str, Any]) -> int:
    name = field[0].upper() + field[1:]
    payload = server.gql(ROLE.format(name=name, field=field), {"input": values})[field]
    assert payload["userErrors"] == [], payload["userErrors"]
    return payload["customer"]["version"]


def reports(server: LiveServer, **filter: Any) -> dict[str, Any]:
    found = server.gql(REPORTS, {"filter": filter or None})["analytics"]
    stages = {
        (k["kind"], s["stage"]): (s["entered"], s["current"], s["advanced"])
        for k in found["funnel"]["kinds"]
        for s in k["stages"]
        if s["entered"] or s["current"]
    }
    phases = {
        p["phase"]: (p["entered"], p["current"], p["advanced"])
        for p in found["funnel"]["phases"]
        if p["entered"] or p["current"]
    }
    return {
        "stages": stages,
        "phases": phases,
        "cohort sizes": sum(c["size"] for c in found["cohorts"]),
        "revenue": [(r["segment"], r["customers"], r["revenue"]) for r in found["revenue"]],
        "rfm customers": sum(s["customers"] for s in found["rfm"]),
    }


def test_a_role_counts_in_its_funnel_and_the_party_once_in_totals(server: LiveServer) -> None:
    ana = create_customer(server, name="Ana Roles", client={"segment": "CONSUMER"})["id"]
    bo = create_customer(server, name="Bo Borrower")["id"]
    log_interaction(server, ana, amount="100.00")
    log_interaction(server, bo, amount="50.00")
    version = role(
        server,
        "addRole",
        {"customerId": ana, "kind": "GUARANTOR", "expectedVersion": 1,
         "guarantor": {"guaranteedAmount": "5000"}},
    )  # fmt: skip
    link = {"fromId": ana, "toId": bo, "kind": "guarantees"}
    assert server.gql(LINK, {"input": link})["linkCustomers"]["userErrors"] == []
    moved = server.gql(
        MOVE,
        {"input": {"id": ana, "kind": "GUARANTOR", "toStage": "verified",
                   "expectedVersion": version}},
    )["transitionCustomer"]  # fmt: skip
    assert moved["userErrors"] == []
    version = moved["customer"]["version"]

    held = reports(server)
    assert held["stages"] == {
        ("client", "interest"): (2, 2, 0),  # Ana and Bo, by the client lifecycle
        ("guarantor", "proposed"): (1, 0, 1),  # Ana's role, moved on
        ("guarantor", "verified"): (1, 1, 0),
    }
    assert held["phases"] == {
        # Ana entered ENGAGEMENT in two roles: one party; her guarantor role advanced
        "ENGAGEMENT": (2, 2, 1),
        "ACQUISITION": (1, 1, 0),
    }
    # party totals: Ana once, under her primary kind
    party = {"cohort sizes": 2, "rfm customers": 2, "revenue": [("client", 2, "150.00")]}
    assert {k: held[k] for k in party} == party
    both = reports(server, kinds=["CLIENT", "GUARANTOR"])
    assert {k: both[k] for k in party} == party
    guarantors = reports(server, kinds=["GUARANTOR"])
    assert guarantors["stages"] == {k: v for k, v in held["stages"].items() if k[0] == "guarantor"}
    assert (guarantors["cohort sizes"], guarantors["revenue"]) == (1, [("client", 1, "100.00")])

    # ended: no longer current in its stage nor its phase; its entries stay history
    role(server, "endRole", {"customerId": ana, "kind": "GUARANTOR", "expectedVersion": version})
    ended = reports(server)
    assert ended["stages"] == {
        ("client", "interest"): (2, 2, 0),
        ("guarantor", "proposed"): (1, 0, 1),
        ("guarantor", "verified"): (1, 0, 0),
    }
    assert ended["phases"] == {"ENGAGEMENT": (2, 2, 1), "ACQUISITION": (1, 0, 0)}
    # she joined the guarantor cohort and stays in it; she holds no guarantor role now
    after = reports(server, kinds=["GUARANTOR"])
    assert (after["cohort sizes"], after["revenue"], after["rfm customers"]) == (1, [], 0)

    # a deleted party leaves every count of the default scope, history included
    deleted = server.gql(DELETE, {"id": bo, "version": 1})["deleteCustomer"]
    assert deleted["userErrors"] == []
    gone = reports(server)
    assert gone["stages"][("client", "interest")] == (1, 1, 0)
    assert (gone["cohort sizes"], gone["revenue"]) == (1, [("client", 1, "100.00")])
    assert reports(server, deleted="ALL")["stages"][("client", "interest")] == (2, 2, 0)


def day(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(f"2026-{text}T00:00:00+00:00")


async def add_dated_role(
    db: Any, pk: int, entries: list[tuple[str, str]], ended: str | None
) -> None:
    """A guarantor role as addRole, transitionCustomer and endRole write it,
    at the days given."""
    for (stage, when), previous in zip(entries, [None, *entries], strict=False):
        await writes.insert(db, "stage_change", {
            "customer": pk, "kind": "guarantor", "to_stage": stage, "at": day(when),
            "from_stage": previous[0] if previous else None,
        })  # fmt: skip
    await stays.record_stays(db, [pk])
    phase = {"proposed": "ENGAGEMENT", "verified": "ACQUISITION"}[entries[-1][0]]
    await writes.insert(db, "customer_role", {
        "customer": pk, "kind": "guarantor", "stage": entries[-1][0], "phase": phase,
        "entered_at": day(entries[-1][1]), "added_at": day(entries[0][1]),
        "ended_at": day(ended) if ended else None,
    })  # fmt: skip


def test_role_cohorts_and_ended_roles_over_time(database_url: str) -> None:
    async def work(state: AppState) -> None:
        db, catalog = state.db, state.catalog
        q = await insert_customer(
            state, "Q", day("01-10"), [("client", "interest", day("01-10")),
                                       ("client", "engaged", day("02-01"))]
        )  # fmt: skip
        await add_dated_role(db, q, [("proposed", "03-05"), ("verified", "04-10")], "05-20")
        await insert_customer(state, "G", day("03-12"), [("guarantor", "proposed", day("03-12"))])
        await insert_customer(state, "C", day("01-20"), [("client", "interest", day("01-20"))])

        async def cohort_sizes(*kinds: str) -> list[tuple[str, int]]:
            scope = AnalyticsScope.create(
                db, queries.CustomerQuery(kinds=kinds), None, day("07-01")
            )
            return [(c.month, c.size) for c in await cohorts.cohort_retention(db, scope, catalog)]

        # Q joined the guarantor cohort in March, when it became one; once per report
        assert await cohort_sizes() == [("2026-01", 2), ("2026-03", 1)]
        assert await cohort_sizes("guarantor") == [("2026-03", 2)]
        assert await cohort_sizes("client") == [("2026-01", 2)]
        assert await cohort_sizes("client", "guarantor") == [("2026-01", 2), ("2026-03", 1)]
        # every type named (a GraphQL filter asking for none): each party at its creation
        every = tuple(t.key for t in catalog.customer_types)
        assert await cohort_sizes(*every) == [("2026-01", 2), ("2026-03", 1)]

        async def counts(as_of: str) -> tuple[Any, ...]:
            scope = AnalyticsScope.create(db, queries.CustomerQuery(), None, day(as_of))
            found = await funnel.lifecycle_funnel(db, catalog, scope)
            stages = {(k.kind, s.stage): s for k in found.kinds for s in k.stages}
            verified = stages[("guarantor", "verified")]
            proposed = stages[("guarantor", "proposed")]
            phases = {p.phase: (p.entered, p.current, p.advanced) for p in found.phases}
            return (
                (proposed.entered, proposed.current, proposed.advanced),
                (verified.entered, verified.current),
                phases["ENGAGEMENT"],
                phases["ACQUISITION"],
            )

        # before the role ended it is current; after, history only
        assert await counts("05-01") == ((2, 1, 1), (1, 1), (3, 3, 1), (1, 1, 0))
        assert await counts("07-01") == ((2, 1, 1), (1, 0), (3, 3, 1), (1, 0, 0))

    asyncio.run(with_state(settings_for(database_url), work))
