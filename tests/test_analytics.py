"""Analytics on a small data set whose every number is worked out by hand in
the comments, on both engines, through a real server.

As of 2026-07-01 00:00 UTC (the period's end), six customers:
- P1: prospect created 01-10; new -> contacted 01-20 -> qualified 02-09 ->
  converted 02-19, which made it a client (active since 02-19). Owned by the agent.
- P2: prospect created 01-15; new -> contacted 01-19 -> disqualified 01-29.
- P3: prospect created 02-01; new -> contacted 02-21.
- P4: prospect created 03-01; new.
- C1: client created 01-05; interest -> engaged 01-15 -> negotiating 02-04 ->
  active 02-14 -> churned 05-15.
- C2: client created 02-10; interest -> engaged 02-20.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from crmgraph.analytics import rules, scores
from crmgraph.analytics.facts import facts_ctes, shape
from crmgraph.analytics.scope import AnalyticsScope
from crmgraph.analytics.sql import Sql
from crmgraph.app import with_state
from crmgraph.db import queries, writes
from crmgraph.demo import seed_demo
from crmgraph.testing import LiveServer, live_server, settings_for, user_key
from tests.conftest import fresh_database
from tests.helpers import insert_customer

AS_OF = "2026-07-01T00:00:00+00:00"
METRIC_PLUGIN = "tests.plugins_for_tests.period_metric"


def at(day: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(f"2026-{day}T00:00:00+00:00")


HISTORY: dict[str, tuple[str, list[tuple[str, str, str]]]] = {
    # name: (created, [(kind, stage, day entered)]); its type now is the last one entered
    "P1": (
        "01-10",
        [
            ("prospect", "new", "01-10"),
            ("prospect", "contacted", "01-20"),
            ("prospect", "qualified", "02-09"),
            ("prospect", "converted", "02-19"),
            ("client", "active", "02-19"),
        ],
    ),
    "P2": (
        "01-15",
        [
            ("prospect", "new", "01-15"),
            ("prospect", "contacted", "01-19"),
            ("prospect", "disqualified", "01-29"),
        ],
    ),
    "P3": (
        "02-01",
        [("prospect", "new", "02-01"), ("prospect", "contacted", "02-21")],
    ),
    "P4": ("03-01", [("prospect", "new", "03-01")]),
    "C1": (
        "01-05",
        [
            ("client", "interest", "01-05"),
            ("client", "engaged", "01-15"),
            ("client", "negotiating", "02-04"),
            ("client", "active", "02-14"),
            ("client", "churned", "05-15"),
        ],
    ),
    "C2": (
        "02-10",
        [("client", "interest", "02-10"), ("client", "engaged", "02-20")],
    ),
}

# (customer, channel, day, satisfaction, outcome, amount)
INTERACTIONS = [
    ("C1", "EMAIL", "01-06", 4, "resolved", None),
    ("C1", "PHONE", "02-14", 5, "order_placed", 1200),
    ("P1", "PHONE", "02-19", 5, "order_placed", 3000),
    ("P1", "EMAIL", "03-10", 2, "complaint", None),
    ("P1", "EMAIL", "06-20", 1, "complaint", None),
    ("P1", "STORE", "06-25", 2, "order_placed", 800),
    ("C2", "WEB", "02-11", 3, None, None),
    ("P3", "PHONE", "02-21", None, None, None),
]

# (customer, category, unit, volume, status, due, created)
NEEDS = [
    ("P1", "supplies", "kg", 10.0, "OPEN", "06-01", "03-01"),
    ("P1", "supplies", "kg", 5.0, "MET", None, "03-02"),
    ("C2", "services", "hours", 8.0, "OPEN", "08-01", "03-03"),
]


async def seed(
    state: Any,
    history: dict[str, tuple[str, list[tuple[str, str, str]]]] = HISTORY,
    interactions: list[tuple] = INTERACTIONS,
    needs: list[tuple] = NEEDS,
) -> dict[str, int]:
    db = state.db
    ids: dict[str, int] = {}
    for name, (created, moves) in history.items():
        entered = [(kind, stage, at(day)) for kind, stage, day in moves]
        ids[name] = await insert_customer(state, name, at(created), entered)
    for name, channel, day, satisfaction, outcome, amount in interactions:
        await writes.insert(
            db,
            "interaction",
            {
                "customer": ids[name],
                "channel": channel,
                "direction": "INBOUND",
                "occurred_at": at(day),
                "subject": "s",
                "outcome": outcome,
                "satisfaction": satisfaction,
                "amount": amount,
                "created_at": at(day),
            },
        )
    for name, category, unit, volume, status, due, created in needs:
        await writes.insert(
            db,
            "need",
            {
                "customer": ids[name],
                "title": "t",
                "category": category,
                "unit": unit,
                "volume": volume,
                "status": status,
                "due_date": at(due).date() if due else None,
                "created_at": at(created),
                "updated_at": at(created),
            },
        )
    return ids


@contextlib.contextmanager
def seeded_server(database_url: str) -> Iterator[tuple[LiveServer, dict[str, int], str]]:
    settings = settings_for(database_url, plugins=(METRIC_PLUGIN,))
    ids = asyncio.run(with_state(settings, seed))
    with live_server(settings) as server:
        yield server, ids, database_url


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def crm(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LiveServer, dict[str, int], str]]:
    """One seeded database and server per engine, shared by the module's
    tests that only read it (a test that writes takes ``own_crm``)."""
    path = tmp_path_factory.mktemp("analytics") / "crm.sqlite"
    with fresh_database(request.param, request, path) as url, seeded_server(url) as crm:
        yield crm


@pytest.fixture
def own_crm(database_url: str) -> Iterator[tuple[LiveServer, dict[str, int], str]]:
    """The seeded database and server for one test alone."""
    with seeded_server(database_url) as crm:
        yield crm


def analytics(server: LiveServer, selection: str, args: str = "", key: str | None = None) -> Any:
    period = f'period: {{to: "{AS_OF}"}}'
    query = f"{{ analytics({period}{', ' + args if args else ''}) {{ {selection} }} }}"
    return server.gql(query, key=key)["analytics"]


def stage_rows(funnel: dict, kind: str) -> dict[str, dict]:
    kinds = {k["kind"]: k["stages"] for k in funnel["kinds"]}
    return {s["stage"]: s for s in kinds[kind]}


FUNNEL = """funnel {
  kinds { kind stages { stage entered current advanced droppedOff conversionRate dropOffRate
          medianDays transitions { toStage count rate } } }
  phases { phase entered current advanced droppedOff conversionRate dropOffRate } }"""


def test_lifecycle_funnel(crm: tuple[LiveServer, dict[str, int], str]) -> None:
    server, _, _ = crm
    funnel = analytics(server, FUNNEL)["funnel"]
    prospect = stage_rows(funnel, "prospect")
    # new: P1 P2 P3 P4 entered; three went on to contacted (stays 10, 4, 20 days)
    assert prospect["new"] == {
        "stage": "new",
        "entered": 4,
        "current": 1,
        "advanced": 3,
        "droppedOff": 0,
        "conversionRate": 0.75,
        "dropOffRate": 0.0,
        "medianDays": 10.0,
        "transitions": [{"toStage": "contacted", "count": 3, "rate": 0.75}],
    }
    # contacted: P1 qualified (20 days), P2 disqualified (10 days), P3 still there
    contacted = prospect["contacted"]
    assert (contacted["entered"], contacted["current"]) == (3, 1)
    assert (contacted["advanced"], contacted["droppedOff"]) == (1, 1)
    assert (contacted["conversionRate"], contacted["dropOffRate"]) == (0.3333, 0.3333)
    assert contacted["medianDays"] == 15.0
    assert contacted["transitions"] == [
        {"toStage": "disqualified", "count": 1, "rate": 0.3333},
        {"toStage": "qualified", "count": 1, "rate": 0.3333},
    ]
    # qualified -> converted is a conversion: it counts as advancing, not dropping off
    assert prospect["qualified"]["advanced"] == 1
    assert prospect["qualified"]["medianDays"] == 10.0
    assert prospect["converted"]["current"] == 1
    assert prospect["disqualified"]["current"] == 1
    client = stage_rows(funnel, "client")
    assert [client[s]["entered"] for s in ("interest", "engaged", "negotiating", "active")] == [
        2,
        2,
        1,
        2,
    ]
    # active: C1 churned after 90 days (02-14 -> 05-15), P1 still active
    assert client["active"]["droppedOff"] == 1
    assert client["active"]["current"] == 1
    assert client["active"]["medianDays"] == 90.0
    assert client["churned"]["current"] == 1
    phases = {p["phase"]: p for p in funnel["phases"]}
    # ENGAGEMENT: six customers; P1 and C1 reached acquisition, P2 was lost;
    # P3, P4 and C2 are still there
    assert phases["ENGAGEMENT"] == {
        "phase": "ENGAGEMENT",
        "entered": 6,
        "current": 3,
        "advanced": 2,
        "droppedOff": 1,
        "conversionRate": 0.3333,
        "dropOffRate": 0.1667,
    }
    assert (phases["ACQUISITION"]["entered"], phases["ACQUISITION"]["advanced"]) == (2, 2)
    retention = phases["RETENTION"]
    assert (retention["entered"], retention["current"], retention["droppedOff"]) == (2, 1, 1)
    # ENDED now: P2 and C1 (P1's prospect history ended in a conversion; it is a client)
    assert (phases["ENDED"]["entered"], phases["ENDED"]["current"]) == (3, 2)
    assert phases["EXPANSION"]["entered"] == 0


def test_funnel_filtered_by_type_and_period(crm: tuple[LiveServer, dict[str, int], str]) -> None:
    server, _, _ = crm
    query = (
        f'{{ analytics(filter: {{kinds: [PROSPECT]}}, period: {{from: "2026-02-01T00:00:00Z", '
        f'to: "{AS_OF}"}}) {{ funnel {{ kinds {{ kind stages {{ stage entered current }} }} }} }} }}'
    )
    funnel = server.gql(query)["analytics"]["funnel"]
    assert [k["kind"] for k in funnel["kinds"]] == ["prospect"]
    stages = {s["stage"]: s for s in funnel["kinds"][0]["stages"]}
    # entries from February: P3 and P4 entered `new`; P1 qualified and converted, P3 contacted
    assert stages["new"]["entered"] == 2
    assert stages["contacted"]["entered"] == 1
    assert stages["qualified"]["entered"] == 1
    # `current` is a snapshot at the period's end, whenever the stage was entered
    assert stages["new"]["current"] == 1


def test_cohort_retention(crm: tuple[LiveServer, dict[str, int], str]) -> None:
    server, _, _ = crm
    cohorts = analytics(server, "cohorts { month size months { monthOffset active rate } }")
    assert [(c["month"], c["size"]) for c in cohorts["cohorts"]] == [
        ("2026-01", 3),  # C1, P1, P2
        ("2026-02", 2),  # P3, C2
        ("2026-03", 1),  # P4
    ]
    january = [(m["monthOffset"], m["active"], m["rate"]) for m in cohorts["cohorts"][0]["months"]]
    # Jan: C1; Feb: C1 and P1; Mar: P1; Apr, May: nobody; Jun: P1 (period ends 07-01)
    assert january == [
        (0, 1, 0.3333),
        (1, 2, 0.6667),
        (2, 1, 0.3333),
        (3, 0, 0.0),
        (4, 0, 0.0),
        (5, 1, 0.3333),
    ]
    february = [(m["monthOffset"], m["active"]) for m in cohorts["cohorts"][1]["months"]]
    assert february == [(0, 2), (1, 0), (2, 0), (3, 0), (4, 0)]
    assert len(cohorts["cohorts"][2]["months"]) == 4


def test_satisfaction_by_channel_and_moment_of_truth(
    crm: tuple[LiveServer, dict[str, int], str],
) -> None:
    server, _, _ = crm
    rows = "key period rated average satisfiedShare"
    data = analytics(
        server,
        f"byChannel: satisfaction(by: CHANNEL) {{ overall {{ {rows} }} overTime {{ {rows} }} }} "
        f"byOutcome: satisfaction(by: OUTCOME) {{ overall {{ {rows} }} }}",
    )
    overall = {
        r["key"]: (r["rated"], r["average"], r["satisfiedShare"])
        for r in data["byChannel"]["overall"]
    }
    assert overall == {
        "EMAIL": (3, 2.3333, 0.3333),  # 4, 2, 1
        "PHONE": (2, 5.0, 1.0),  # 5, 5 (P3's call was not rated)
        "STORE": (1, 2.0, 0.0),
        "WEB": (1, 3.0, 0.0),
    }
    email = [
        (r["period"], r["rated"], r["average"])
        for r in data["byChannel"]["overTime"]
        if r["key"] == "EMAIL"
    ]
    assert email == [("2026-01", 1, 4.0), ("2026-03", 1, 2.0), ("2026-06", 1, 1.0)]
    outcomes = {
        r["key"]: (r["rated"], r["average"], r["satisfiedShare"])
        for r in data["byOutcome"]["overall"]
    }
    assert outcomes == {
        "complaint": (2, 1.5, 0.0),
        "order_placed": (3, 4.0, 0.6667),  # 5, 5, 2
        "resolved": (1, 4.0, 1.0),
        None: (1, 3.0, 0.0),
    }


def test_revenue_by_segment(crm: tuple[LiveServer, dict[str, int], str]) -> None:
    server, _, _ = crm
    rows = "segment customers purchases revenue averageOrderValue"
    data = analytics(
        server,
        f"byKind: revenue(by: KIND) {{ {rows} }} byChannel: revenue(by: CHANNEL) {{ {rows} }} "
        f"byMonth: revenue(bucket: MONTH) {{ segment revenue }} "
        f"byRfm: revenue(by: RFM_SEGMENT) {{ segment revenue }}",
    )
    assert data["byKind"] == [
        {
            "segment": "client",
            "customers": 2,
            "purchases": 3,
            "revenue": "5000.00",
            "averageOrderValue": "1666.67",
        }
    ]
    assert [(r["segment"], r["revenue"], r["customers"]) for r in data["byChannel"]] == [
        ("PHONE", "4200.00", 2),
        ("STORE", "800.00", 1),
    ]
    assert data["byMonth"] == [
        {"segment": "2026-02", "revenue": "4200.00"},
        {"segment": "2026-06", "revenue": "800.00"},
    ]
    assert data["byRfm"] == [{"segment": "POTENTIAL", "revenue": "5000.00"}]


def test_rfm_segments_and_members(crm: tuple[LiveServer, dict[str, int], str]) -> None:
    server, _, _ = crm
    data = analytics(
        server,
        "rfm { segment customers purchases revenue "
        "members(first: 1) { totalCount pageInfo { hasNextPage endCursor } "
        "edges { node { name } rfm { recency frequency monetary segment } } } }",
    )
    segments = {s["segment"]: s for s in data["rfm"]}
    assert next(iter(segments)) == "NO_PURCHASE" and len(segments) == 8
    assert (segments["NO_PURCHASE"]["customers"], segments["POTENTIAL"]["customers"]) == (4, 2)
    assert segments["CHAMPIONS"]["customers"] == 0
    potential = segments["POTENTIAL"]
    assert (potential["purchases"], potential["revenue"]) == (3, "5000.00")
    # members by id: P1 was inserted before C1
    first = potential["members"]
    assert first["totalCount"] == 2 and first["pageInfo"]["hasNextPage"]
    # P1: last purchase 6 days before (R5), 2 purchases (F2), 3800 (M3)
    assert first["edges"][0] == {
        "node": {"name": "P1"},
        "rfm": {"recency": 5, "frequency": 2, "monetary": 3, "segment": "POTENTIAL"},
    }
    cursor = first["pageInfo"]["endCursor"]
    rest = analytics(
        server,
        f'rfm {{ segment members(first: 5, after: "{cursor}") {{ edges {{ node {{ name }} '
        "rfm { recency frequency monetary } } } }",
    )
    second = next(s for s in rest["rfm"] if s["segment"] == "POTENTIAL")["members"]["edges"]
    # C1: last purchase 02-14, 137 days before (R3), once (F1), 1200 (M3)
    assert second == [
        {"node": {"name": "C1"}, "rfm": {"recency": 3, "frequency": 1, "monetary": 3}}
    ]


def test_churn_risk_list(crm: tuple[LiveServer, dict[str, int], str]) -> None:
    server, _, _ = crm
    selection = (
        "churnRisk(minScore: {}) {{ totalCount edges {{ node {{ name }} "
        "churnRisk {{ score level signals {{ code points }} }} }} }}"
    )
    data = analytics(server, selection.format(30))["churnRisk"]
    # only P1 is retained or expanding; C1 churned (ENDED), the others are leads
    assert data["totalCount"] == 1
    assert data["edges"][0]["node"] == {"name": "P1"}
    assert data["edges"][0]["churnRisk"] == {
        "score": 55,
        "level": "MEDIUM",
        "signals": [
            {"code": "LOW_SATISFACTION", "points": 25},  # 1 and 2 since 04-02: 1.5
            {"code": "FALLING_SATISFACTION", "points": 20},  # 3.5 in the 90 days before
            {"code": "OVERDUE_NEEDS", "points": 10},  # due 06-01, still open
        ],
    }
    assert analytics(server, selection.format(60))["churnRisk"]["totalCount"] == 0


def test_customer_knowledge(crm: tuple[LiveServer, dict[str, int], str]) -> None:
    server, _, _ = crm
    query = f"""{{ customers(first: 10, orderBy: {{field: NAME, direction: ASC}}) {{ nodes {{
      name knowledge(asOf: "{AS_OF}") {{
        asOf interactions interactionsByChannel {{ channel interactions }}
        firstContactAt lastContactAt daysSinceLastContact
        satisfaction {{ rated average recentAverage previousAverage trend }}
        purchases {{ count total lastAt daysSinceLast }}
        rfm {{ recency frequency monetary segment }}
        openNeeds overdueNeeds daysInStage
        churnRisk {{ score level signals {{ code }} }}
        nextBestAction {{ code reason }} }} }} }} }}"""
    data = server.gql(query)
    nodes = {n["name"]: n["knowledge"] for n in data["customers"]["nodes"]}
    p1 = nodes["P1"]
    assert p1["interactions"] == 4
    assert p1["interactionsByChannel"] == [
        {"channel": "EMAIL", "interactions": 2},
        {"channel": "PHONE", "interactions": 1},
        {"channel": "STORE", "interactions": 1},
    ]
    assert p1["firstContactAt"].startswith("2026-02-19T00:00:00")
    assert p1["lastContactAt"].startswith("2026-06-25T00:00:00")
    assert p1["daysSinceLastContact"] == 6.0
    assert p1["satisfaction"] == {
        "rated": 4,
        "average": 2.5,
        "recentAverage": 1.5,
        "previousAverage": 3.5,
        "trend": "DOWN",
    }
    assert p1["purchases"]["count"] == 2 and p1["purchases"]["total"] == "3800.00"
    assert p1["purchases"]["daysSinceLast"] == 6.0
    assert p1["rfm"] == {"recency": 5, "frequency": 2, "monetary": 3, "segment": "POTENTIAL"}
    assert (p1["openNeeds"], p1["overdueNeeds"]) == (1, 1)
    assert p1["daysInStage"] == 132.0  # active since 02-19
    assert p1["churnRisk"]["score"] == 55
    assert p1["nextBestAction"]["code"] == "FOLLOW_UP_NEED"
    c1 = nodes["C1"]
    # churned after buying: win back; quiet since 02-14
    assert c1["nextBestAction"]["code"] == "WIN_BACK"
    assert c1["churnRisk"] == {
        "score": 30,
        "level": "MEDIUM",
        "signals": [{"code": "NO_RECENT_CONTACT"}],
    }
    assert c1["rfm"]["segment"] == "POTENTIAL"
    c2 = nodes["C2"]
    assert c2["rfm"] == {"recency": 0, "frequency": 0, "monetary": 0, "segment": "NO_PURCHASE"}
    assert c2["nextBestAction"]["code"] == "FOLLOW_UP_LEAD"
    assert c2["satisfaction"]["trend"] == "UNKNOWN"
    p4 = nodes["P4"]
    assert p4["interactions"] == 0 and p4["lastContactAt"] is None
    assert p4["daysInStage"] == 122.0  # new since 03-01
    # knowledge costs two statements for a whole page, not two per customer
    knowledge = "query($first: Int) { customers(first: $first) { nodes { knowledge { rfm { segment } } } } }"
    assert server.statements(knowledge, {"first": 1}) == server.statements(knowledge, {"first": 6})
    # without asOf, the whole page is profiled as of one moment
    moments = server.gql("{ customers(first: 10) { nodes { knowledge { asOf } } } }")
    assert len({n["knowledge"]["asOf"] for n in moments["customers"]["nodes"]}) == 1


def test_needs_and_plugin_metric(crm: tuple[LiveServer, dict[str, int], str]) -> None:
    server, _, _ = crm
    data = analytics(
        server,
        "needs { total open overdue byCategory { category unit needs open overdue volume "
        "openVolume } } metrics { key value }",
    )
    assert data["needs"] == {
        "total": 3,
        "open": 2,
        "overdue": 1,
        "byCategory": [
            {
                "category": "supplies",
                "unit": "kg",
                "needs": 2,
                "open": 1,
                "overdue": 1,
                "volume": 15.0,
                "openVolume": 10.0,
            },
            {
                "category": "services",
                "unit": "hours",
                "needs": 1,
                "open": 1,
                "overdue": 0,
                "volume": 8.0,
                "openVolume": 8.0,
            },
        ],
    }
    # the plugin's metric: interactions of customers in scope, in the period
    assert data["metrics"] == [{"key": "interactions_in_period", "value": 8.0}]
    march = server.gql(
        '{ analytics(filter: {kinds: [CLIENT]}, period: {from: "2026-03-01T00:00:00Z", '
        f'to: "{AS_OF}"}}) {{ metrics {{ value }} }} }}'
    )
    assert march["analytics"]["metrics"] == [{"value": 3.0}]  # P1's three since March


def test_agent_sees_analytics_of_own_customers_only(
    own_crm: tuple[LiveServer, dict[str, int], str],
) -> None:
    server, ids, database_url = own_crm  # it gives a customer to a new agent: its own data
    settings = settings_for(database_url)
    key = asyncio.run(user_key(settings, "agent"))
    viewer = server.gql("{ viewer { userId } }", key=key)["viewer"]
    from crmgraph.schema.ids import decode_id

    agent_pk = decode_id(viewer["userId"], "User")[1]

    async def give(state: Any) -> None:
        await state.db.fetch("UPDATE customer SET owner = {} WHERE id = {}", agent_pk, ids["P1"])

    asyncio.run(with_state(settings, give))
    data = analytics(
        server,
        "rfm { segment customers } revenue { segment revenue } "
        "churnRisk { totalCount } needs { total }",
        key=key,
    )
    assert {s["segment"]: s["customers"] for s in data["rfm"] if s["customers"]} == {"POTENTIAL": 1}
    assert data["revenue"] == [{"segment": "client", "revenue": "3800.00"}]
    assert data["churnRisk"]["totalCount"] == 1
    assert data["needs"]["total"] == 2
    by_owner = analytics(
        server,
        "revenue(by: OWNER) { segment revenue }",
        f'filter: {{ownerIds: ["{viewer["userId"]}"]}}',
    )
    assert by_owner["revenue"] == [{"segment": viewer["userId"], "revenue": "3800.00"}]


def test_same_results_on_sqlite_and_postgres(request: pytest.FixtureRequest, tmp_path: Any) -> None:
    """The demo data set (fixed seed and clock) on both engines: every analytics
    answer identical."""
    from tests.conftest import fresh_database

    now = datetime.datetime(2026, 7, 1, tzinfo=datetime.UTC)
    rows = "key period rated average satisfiedShare"
    query = f"""{{ analytics(period: {{to: "{now.isoformat()}"}}) {{
      {FUNNEL}
      cohorts {{ month size months {{ monthOffset active rate }} }}
      channel: satisfaction(by: CHANNEL) {{ overall {{ {rows} }} overTime {{ {rows} }} }}
      outcome: satisfaction(by: OUTCOME, bucket: DAY) {{ overall {{ {rows} }} overTime {{ {rows} }} }}
      kind: revenue(by: KIND) {{ segment customers purchases revenue averageOrderValue }}
      rfmRevenue: revenue(by: RFM_SEGMENT) {{ segment revenue }}
      monthly: revenue(bucket: MONTH) {{ segment revenue }}
      rfm {{ segment customers revenue members(first: 20) {{ totalCount
        edges {{ node {{ id }} rfm {{ recency frequency monetary }} }} }} }}
      churnRisk(first: 50) {{ totalCount edges {{ node {{ id }} churnRisk {{ score signals {{ code }} }} }} }}
      needs {{ total open overdue byCategory {{ category unit needs open overdue volume }} }}
    }}
    customers(first: 30) {{ nodes {{ id knowledge(asOf: "{now.isoformat()}") {{
      interactions interactionsByChannel {{ channel interactions }} daysSinceLastContact
      satisfaction {{ average recentAverage previousAverage trend }}
      purchases {{ count total daysSinceLast }} rfm {{ segment }} daysInStage
      churnRisk {{ score }} nextBestAction {{ code }} }} }} }} }}"""
    answers = []
    for engine in ("sqlite", "postgres"):
        with fresh_database(engine, request, tmp_path / f"{engine}.sqlite") as url:
            settings = settings_for(url)

            async def demo(state: Any) -> None:
                await seed_demo(state.db, state.catalog, customers=400, now=now)

            asyncio.run(with_state(settings, demo))
            with live_server(settings) as server:
                answers.append(server.gql(query))
    sqlite_answer, postgres_answer = answers
    assert sqlite_answer["analytics"]["rfm"][0]["customers"] > 0
    assert sqlite_answer["analytics"]["churnRisk"]["totalCount"] > 0
    assert sqlite_answer == postgres_answer


def test_empty_period_is_refused(crm: tuple[LiveServer, dict[str, int], str]) -> None:
    server, _, _ = crm
    body = server.post(
        '{ analytics(period: {from: "2026-07-01T00:00:00Z", to: "2026-06-01T00:00:00Z"})'
        " { needs { total } } }"
    )
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "period.from" in body["errors"][0]["message"]


def test_reports_cost_what_they_aggregate(crm: tuple[LiveServer, dict[str, int], str]) -> None:
    """Each report declares its cost (an aggregate over the scope), so a query asking
    for many spends the caller's budget accordingly; knowledge costs per customer."""
    server, _, _ = crm
    one = server.post("{ analytics { needs { total } } }")["extensions"]["cost"]["requested"]
    two = server.post("{ analytics { needs { total } cohorts { size } } }")["extensions"]["cost"]
    # the analytics object (1), needs (1 + its declared 100); cohorts, a plain list,
    # counts 10 items of one object each plus its declared 100
    assert one == 1 + 1 + 100
    assert two["requested"] == one + 10 * 1 + 100
    knowledge = "{ customers(first: 10) { nodes { knowledge { interactions } } } }"
    plain = "{ customers(first: 10) { nodes { id } } }"
    with_knowledge = server.post(knowledge)["extensions"]["cost"]["requested"]
    without = server.post(plain)["extensions"]["cost"]["requested"]
    assert with_knowledge - without == 10 * (1 + 5)


DETOURS = {
    "D1": (
        "01-01",
        [
            ("client", "interest", "01-01"),
            ("client", "engaged", "01-02"),
            ("client", "negotiating", "01-03"),
            ("client", "active", "01-04"),
            ("client", "at_risk", "02-01"),
            ("client", "active", "03-01"),
        ],
    ),
    "L1": (
        "01-01",
        [
            ("prospect", "new", "01-01"),
            ("prospect", "disqualified", "01-05"),
            ("prospect", "contacted", "01-10"),
        ],
    ),
}


def test_detours_and_reopened_records_are_not_progress(database_url: str) -> None:
    settings = settings_for(database_url)
    asyncio.run(with_state(settings, lambda state: seed(state, DETOURS, [], [])))
    with live_server(settings) as server:
        funnel = analytics(server, FUNNEL)["funnel"]
    client = stage_rows(funnel, "client")
    # active -> at_risk is a detour, not progress; at_risk -> active is a recovery
    assert (client["active"]["entered"], client["active"]["advanced"]) == (2, 0)
    assert client["active"]["transitions"] == [{"toStage": "at_risk", "count": 1, "rate": 0.5}]
    assert (client["at_risk"]["advanced"], client["at_risk"]["droppedOff"]) == (0, 0)
    assert client["negotiating"]["advanced"] == 1
    prospect = stage_rows(funnel, "prospect")
    assert prospect["new"]["droppedOff"] == 1
    # re-opening a lost lead is shown as a move, not counted as progress
    assert prospect["disqualified"]["advanced"] == 0
    assert prospect["disqualified"]["transitions"] == [
        {"toStage": "contacted", "count": 1, "rate": 1.0}
    ]
    phases = {p["phase"]: p for p in funnel["phases"]}
    assert (phases["ENDED"]["entered"], phases["ENDED"]["advanced"]) == (1, 0)
    assert (phases["RETENTION"]["entered"], phases["RETENTION"]["advanced"]) == (1, 0)


DEMO_NOW = datetime.datetime(2026, 7, 1, tzinfo=datetime.UTC)


async def scored_by_id(state: Any, scope: AnalyticsScope) -> dict[int, dict[str, Any]]:
    rows = await facts_ctes(scope).add(" SELECT * FROM scored").fetch(state.db)
    return {r["id"]: shape(r) for r in rows}


async def every_page(
    state: Any, scope: AnalyticsScope, condition: Sql, order: str
) -> tuple[list, set]:
    """Every page of ``scores.scored_page`` (7 rows each, by keyset): the rows in
    order, and the totals the pages reported."""
    rows: list[dict[str, Any]] = []
    totals: set[int] = set()
    after = None
    while True:
        page = await scores.scored_page(state.db, scope, condition, order, 7, after)
        rows += page.rows
        totals.add(page.total)
        if not page.has_next:
            return rows, totals
        last = page.rows[-1]
        after = (last["churn_score"], last["id"])


def test_filtered_scopes_and_pages_agree_with_every_customer(database_url: str) -> None:
    """The facts of a filtered scope (computed once and joined to each
    per-customer read) equal those of the same customers computed for every
    customer (read without that join), over all time (the rollup) and over
    90 days (the interactions); churn and segment pages walked by keyset list
    exactly the customers the facts rank, in order, with every fact and the
    right total."""

    async def work(state: Any) -> None:
        await seed_demo(state.db, state.catalog, customers=300, now=DEMO_NOW)
        for starts in (None, DEMO_NOW - datetime.timedelta(days=90)):
            every = AnalyticsScope.create(state.db, queries.CustomerQuery(), starts, DEMO_NOW)
            everyone = await scored_by_id(state, every)
            assert len(everyone) > 250
            owner = next(f["owner"] for f in everyone.values() if f["owner"] is not None)
            some = sorted(everyone)[::7]
            filters = [  # (filter, the fact it filters on, the values it keeps)
                (queries.CustomerQuery(kinds=("client",)), "kind", {"client"}),
                (queries.CustomerQuery(owner_ids=(owner,)), "owner", {owner}),
                (queries.CustomerQuery(phases=rules.CHURN_PHASES), "phase", {*rules.CHURN_PHASES}),
                (queries.CustomerQuery(ids=tuple(some)), "id", {*some}),
            ]
            listed = 0
            for customers, fact, kept in filters:
                scope = replace(every, customers=customers)
                expected = {pk: f for pk, f in everyone.items() if f[fact] in kept}
                assert expected, customers
                assert await scored_by_id(state, scope) == expected, customers

                churn_scope, condition = scores.churn_candidates(scope, 30)
                at_risk = [
                    f
                    for f in expected.values()
                    if f["phase"] in rules.CHURN_PHASES and f["churn_score"] >= 30
                ]
                at_risk.sort(key=lambda f: (-f["churn_score"], f["id"]))
                rows, totals = await every_page(state, churn_scope, condition, "churn")
                assert [r["id"] for r in rows] == [f["id"] for f in at_risk], customers
                assert rows == at_risk
                assert totals == {len(at_risk)}
                listed += len(at_risk)
            assert listed > 14  # more than two pages in all

            segments = Counter(f["rfm_segment"] for f in everyone.values())
            largest = segments.most_common(1)[0][0]
            members = sorted(
                (f for f in everyone.values() if f["rfm_segment"] == largest),
                key=lambda f: f["id"],
            )
            assert len(members) > 14
            condition = scores.segment_members(largest)
            rows, totals = await every_page(state, every, condition, "segment")
            assert rows == members
            assert totals == {len(members)}

    asyncio.run(with_state(settings_for(database_url), work))
