"""The compiled read path against the resolver path, on both engines.

One database per engine is seeded (demo data, plus values that are hard to
print exactly: whole-second timestamps, REAL volumes, quotes and accents in
names, soft-deleted customers, customers of an agent and of their team) and
two real servers run on it, one with compiled reads and one without. Every
query of a hand-written corpus and a few hundred generated ones (fixed seed)
is sent to both, as every role: the answers must be the same JSON (data,
errors and extensions but the statement count; data also printed the same,
keys in the same order), and the compiled server must
have answered with one statement whenever the query is compilable.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from crmgraph_loyalty import ledger

from crmgraph.app import AppState, with_state
from crmgraph.auth import ROLES, Principal
from crmgraph.compiled import extension
from crmgraph.db import text_keys
from crmgraph.db.queries import CUSTOMER_FROM
from crmgraph.demo import seed_demo
from crmgraph.operations.actor import Actor
from crmgraph.operations.customers import Transition, transition_customer
from crmgraph.operations.interactions import NewInteraction, log_interaction
from crmgraph.operations.roles import (
    NewRole,
    RoleEnd,
    add_role,
    combination_problems,
    end_role,
    held_kinds,
    is_held,
)
from crmgraph.privacy.consent import SOURCES, ConsentStatement, record
from crmgraph.schema.ids import decode_id, encode_id
from crmgraph.testing import LiveServer, live_server, migrate_for, settings_for, user_key
from tests.conftest import fresh_database

NOW = datetime.datetime(2025, 6, 1, 12, 0, tzinfo=datetime.UTC)
TEAM = "compiled-team"
# a partner plugin (a customer type, its own table and root fields) and root
# fields computed in Python, for mixed queries
PLUGINS = ("crmgraph_loyalty.plugin", "tests.plugins_for_tests.compiled_mix")


@dataclass
class Pair:
    """Two servers on one database: compiled reads on and off."""

    engine: str
    compiled: LiveServer
    resolved: LiveServer
    keys: dict[str, str]

    def both(
        self, query: str, variables: dict[str, Any] | None = None, role: str = "admin"
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        key = self.keys[role]
        return (
            self.compiled.post(query, variables, key=key),
            self.resolved.post(query, variables, key=key),
        )

    def same(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        role: str = "admin",
        compiles: bool = True,
    ) -> dict[str, Any]:
        """Both servers' answers, which must be equal; the compiled one in one
        statement (none for ``{ __typename }``) when ``compiles`` and the query
        succeeded."""
        compiled, resolved = self.both(query, variables, role)
        context = f"{self.engine} as {role}: {query} {variables}"
        assert without_count(compiled) == without_count(resolved), context
        # the same bytes: keys in the same order, 21.0 not read as 21
        assert json.dumps(compiled.get("data")) == json.dumps(resolved.get("data")), context
        if compiles and not compiled.get("errors"):
            # one statement; none when nothing is read ({ __typename })
            expected = 1 if "customer" in query or "node" in query else 0
            assert compiled["extensions"]["sqlStatements"] == expected, context
        return compiled


def without_count(body: dict[str, Any]) -> dict[str, Any]:
    extensions = {k: v for k, v in body.get("extensions", {}).items() if k != "sqlStatements"}
    return {**body, "extensions": extensions}


async def seed(state: AppState) -> None:
    db = state.db
    await seed_demo(db, state.catalog, customers=45, seed=11, now=NOW)
    agent = (await db.fetch("SELECT id FROM crm_user WHERE email LIKE 'agent-%'"))[0]["id"]
    team = (await db.fetch("SELECT id FROM team WHERE name = {}", TEAM))[0]["id"]
    ids = [r["id"] for r in await db.fetch("SELECT id FROM customer ORDER BY id")]
    for pk in ids[::5]:
        await db.fetch("UPDATE customer SET owner = {} WHERE id = {}", agent, pk)
    for pk in ids[1::4]:
        await db.fetch("UPDATE customer SET team = {} WHERE id = {}", team, pk)
    for pk in ids[2::7]:
        await db.fetch("UPDATE customer SET deleted_at = updated_at WHERE id = {}", pk)
    whole = datetime.datetime(2025, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
    await db.fetch("UPDATE interaction SET occurred_at = {} WHERE id % 9 = 0", whole)
    await db.fetch("UPDATE customer SET created_at = {} WHERE id = {}", whole, ids[3])
    # non-ASCII, quotes, control characters and a line separator: cursors over names
    names = [
        'Ñandú "Quote" \\ back/slash — ü',
        "O'Brien & Søn",
        "Zoë 東京",
        "Emoji 😀\ttab",
        "ünï\u2028cödé\x01",
    ]
    for pk, name in zip(ids[4::10], names, strict=False):
        await db.fetch("UPDATE customer SET name = {} WHERE id = {}", name, pk)
    # names in other scripts and cases, accents sorted as read (Álvarez before
    # Torres): search and order by the folded copies (crmgraph.db.text_keys)
    scripts = ["Asesoría Álvarez", "ASESORIA TORRES", "Иван Петров", "петров и сыновья"]
    for pk, name in zip(ids[5::10], scripts, strict=False):
        await db.fetch("UPDATE customer SET name = {} WHERE id = {}", name, pk)
    contact = (await db.fetch("SELECT MIN(id) AS id FROM contact"))[0]["id"]
    await db.fetch("UPDATE contact SET name = {} WHERE id = {}", "Мария Łukasiewicz", contact)
    await text_keys.refresh_text_keys(db, "customer", ids)  # raw writes: refresh their copies
    await text_keys.refresh_text_keys(db, "contact", [contact])
    # merges: 6 into 7 into 8 (an ID stands for the end of its chain); 9 into nothing
    for merged, survivor in ((ids[6], ids[7]), (ids[7], ids[8]), (ids[9], 999_999)):
        await db.fetch(
            "UPDATE customer SET merged_into = {}, deleted_at = updated_at WHERE id = {}",
            survivor,
            merged,
        )
    for value, need in zip((0.1, 1e-7, 123456.789, 2.5), (1, 2, 3, 4), strict=True):
        await db.fetch("UPDATE need SET volume = {} WHERE id = {}", value, need)
    # read by fields computed in Python: loyalty accounts, consents (one
    # withdrawn after its grant), an erased customer, interaction purposes
    async with db.transaction():
        for pk, points in zip(ids[::6], (10, 700, 2500, 40, 90, 5, 1200, 60), strict=False):
            await ledger.award(db, pk, points)
        for i, pk in enumerate(ids[::3]):
            for granted in (True, False)[: 1 + i % 2]:
                statement = ConsentStatement(
                    pk, None, "EMAIL", "MARKETING", granted, "WEB_FORM", None, NOW
                )
                await record(db, statement)
        # contacts' own statements: several per (contact, channel, purpose), on
        # different moments (fractions of a second, whole seconds), some with evidence
        contacts = await db.fetch("SELECT id, customer FROM contact ORDER BY id LIMIT 15")
        moments = (NOW - datetime.timedelta(days=3, microseconds=250), NOW, NOW)
        kinds = (("PHONE", "SERVICE"), ("EMAIL", "MARKETING"), ("PHONE", "SERVICE"))
        for i, contact in enumerate(contacts):
            for j, (channel, purpose) in enumerate(kinds[: 1 + i % 3]):
                statement = ConsentStatement(
                    contact["customer"],
                    contact["id"],
                    channel,
                    purpose,
                    (i + j) % 2 == 0,
                    SOURCES[(i + j) % len(SOURCES)],
                    f"form-{i}-{j}" if j != 1 else None,
                    moments[j],
                )
                await record(db, statement)
    # recorded by a user (else null), and a channel whose plugin was removed (OTHER)
    user = (await db.fetch("SELECT id FROM crm_user ORDER BY id LIMIT 1"))[0]["id"]
    await db.fetch("UPDATE consent_change SET recorded_by = {} WHERE id % 3 = 0", user)
    await db.fetch("UPDATE consent_change SET channel = 'FAX' WHERE id % 7 = 0")
    await db.fetch("UPDATE customer SET erased_at = updated_at WHERE id = {}", ids[11])
    await db.fetch("UPDATE interaction SET purpose = 'MARKETING' WHERE id % 4 = 0")
    await db.fetch("UPDATE interaction SET purpose = 'SERVICE' WHERE id % 4 = 1")
    await seed_roles(state)


# further roles given to live customers, every n-th from an offset: (n,
# offset, kind, its attribute inputs, as GraphQL hands them to the core)
LEAP_DAY = datetime.date(2024, 2, 29)
ADDED_ROLES: tuple[tuple[int, int, str, dict[str, Any]], ...] = (
    (3, 0, "guarantor", {"guaranteed_amount": Decimal("12500.50"), "guarantee_type": "BANK"}),
    (
        4,
        1,
        "employee",
        {"salary": Decimal("4200"), "hire_date": datetime.date(2021, 3, 4), "job_title": "Analyst"},
    ),
    (5, 2, "competitor", {"market_share": Decimal("12.5"), "agreement_signed_on": LEAP_DAY}),
    (6, 3, "beneficiary", {"share_percent": Decimal("33.33"), "relation_to_holder": "Niece"}),
    (7, 4, "client", {"segment": "ENTERPRISE", "annual_revenue": Decimal("1000000")}),
    (8, 5, "distributor", {"territory": "Norte", "contract_ends_on": datetime.date(2027, 1, 31)}),
)


async def seed_roles(state: AppState) -> None:
    """Parties with further roles, through the core (crmgraph.operations)
    as an admin: typed attributes (amounts, dates, enums, a guarded salary),
    on customers the agent sees and others; every sixth beneficiary role
    ended (not shown); a prospect holding a supplier role converted to a
    client (its prospect row stays behind, not a role). Then what only raw
    writes make: a role of a kind no plugin loads, a stage its lifecycle
    lacks, a whole-second moment, an amount stored as a JSON number."""
    db, catalog, pm = state.db, state.catalog, state.plugin_manager
    admin = (await db.fetch("SELECT id FROM crm_user WHERE role = 'admin' ORDER BY id"))[0]
    actor = Actor(state.policy.access(Principal(admin["id"], "Seed", "admin")))
    live = await db.fetch(
        "SELECT id, kind FROM customer WHERE deleted_at IS NULL AND erased_at IS NULL "
        "AND merged_into IS NULL ORDER BY id"
    )

    async def version(pk: int) -> int:
        return (await db.fetch("SELECT version FROM customer WHERE id = {}", pk))[0]["version"]

    for i, row in enumerate(live):
        held = await held_kinds(db, row)
        for every, offset, kind, attributes in ADDED_ROLES:
            if i % every != offset or kind in held or combination_problems(catalog, kind, held):
                continue
            new = NewRole(row["id"], kind, await version(row["id"]), {kind: attributes})
            await add_role(db, catalog, pm, actor, new)
            held.append(kind)
            if kind == "beneficiary" and i % 2:
                end = RoleEnd(row["id"], kind, await version(row["id"]))
                await end_role(db, catalog, pm, actor, end)
    prospect = next(r["id"] for r in live if r["kind"] == "prospect")
    await add_role(db, catalog, pm, actor, NewRole(prospect, "supplier", await version(prospect)))
    await convert(state, actor, prospect)
    some = [r["id"] for r in live[::9]]
    await db.fetch(
        "INSERT INTO customer_role (customer, kind, stage, phase, entered_at, attributes, "
        "added_at) VALUES ({}, 'fax_partner', 'active', 'RETENTION', {}, {}, {})",
        some[0],
        NOW,
        "{}",
        NOW,
    )
    whole = datetime.datetime(2025, 2, 3, 4, 5, 6, tzinfo=datetime.UTC)
    await db.fetch(
        "UPDATE customer_role SET stage = 'legacy', entered_at = {}, added_at = {} "
        "WHERE customer = {} AND kind = 'guarantor'",
        whole,
        whole,
        some[1],
    )
    await db.fetch(
        "UPDATE customer_role SET attributes = {} WHERE customer = {} AND kind = 'guarantor'",
        '{"guaranteed_amount": 1500}',
        some[2],
    )


async def convert(state: AppState, actor: Actor, pk: int) -> None:
    """Walk prospect ``pk`` to ``converted`` (a client), with the
    interaction and purchase its guards ask for."""
    db, catalog, pm = state.db, state.catalog, state.plugin_manager
    purchase = {
        "channel": "EMAIL",
        "direction": "INBOUND",
        "subject": "Order",
        "amount": Decimal("99.00"),
    }
    await log_interaction(db, catalog, pm, actor, NewInteraction(pk, None, purchase))
    after = {"new": "contacted", "contacted": "qualified", "disqualified": "contacted"}
    while True:
        row = (
            await db.fetch(
                f"SELECT c.kind, c.version, r.stage FROM {CUSTOMER_FROM} WHERE c.id = {{}}", pk
            )
        )[0]
        if row["kind"] != "prospect":
            return
        move = Transition(pk, after.get(row["stage"], "converted"), row["version"])
        await transition_customer(db, catalog, pm, actor, move)


@contextlib.contextmanager
def seeded_database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, dict[str, str]]]:
    """A database of ``request.param``'s engine with PLUGINS' tables and
    ``seed``'s rows, and an API key per role: (URL, keys)."""
    path: Path = tmp_path_factory.mktemp("compiled") / "crm.sqlite"
    with fresh_database(request.param, request, path) as url:
        settings = settings_for(url, plugins=PLUGINS)
        asyncio.run(migrate_for(settings))  # the loyalty plugin's table
        keys = {
            role: asyncio.run(user_key(settings, role, (TEAM,) if role == "agent" else ()))
            for role in ROLES
        }
        asyncio.run(with_state(settings, seed))
        yield url, keys


@contextlib.contextmanager
def seeded_servers(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    flag: str,
    **common: Any,
) -> Iterator[tuple[LiveServer, LiveServer, dict[str, str]]]:
    """Two live servers on one ``seeded_database``, the setting ``flag`` on
    in the first and off in the second: (on, off, keys)."""
    with (
        seeded_database(request, tmp_path_factory) as (url, keys),
        live_server(settings_for(url, plugins=PLUGINS, **common, **{flag: True})) as on,
        live_server(settings_for(url, plugins=PLUGINS, **common, **{flag: False})) as off,
    ):
        yield on, off, keys


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def pair(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Pair]:
    with seeded_servers(request, tmp_path_factory, "compiled_reads") as (compiled, resolved, keys):
        yield Pair(request.param, compiled, resolved, keys)


# ---------------------------------------------------------------------------
# The hand-written corpus

CUSTOMER_FIELDS = (
    "__typename id kind name email phone stage stageLabel phase stageEnteredAt version "
    "createdAt updatedAt deletedAt"
)
EVERY_TYPE = """
  ... on Client { segment industry taxId website annualRevenue preferredLanguage }
  ... on Prospect { source estimatedValue interest }
  ... on Supplier { rating taxId category paymentTermsDays }
  ... on Employee { jobTitle department hireDate }
  ... on Competitor { marketShare strengths weaknesses agreementSignedOn }
  ... on Guarantor { guaranteedAmount guaranteeType documentId }
  ... on Beneficiary { sharePercent relationToHolder }
  ... on AgendaContact { agendaCategory: category notesShort }
"""
ROLE_FIELDS = "__typename kind primary stage stageLabel phase stageEnteredAt addedAt"
EVERY_ROLE = """
  ... on ClientRole { segment industry taxId website annualRevenue preferredLanguage }
  ... on ProspectRole { source estimatedValue interest }
  ... on SupplierRole { rating taxId category paymentTermsDays }
  ... on EmployeeRole { jobTitle department hireDate }
  ... on CompetitorRole { marketShare strengths weaknesses agreementSignedOn }
  ... on GuarantorRole { guaranteedAmount guaranteeType documentId }
  ... on BeneficiaryRole { sharePercent relationToHolder }
  ... on AgendaContactRole { agendaCategory: category notesShort }
  ... on DistributorRole { territory discountPercent contractEndsOn }
"""
STAGE_CHANGE = "__typename id customerId kind fromStage toStage at byId reason"
ROLE_LIST = f"roles {{ {ROLE_FIELDS} {EVERY_ROLE} stageHistory {{ {STAGE_CHANGE} }} }}"
CONSENT = (
    "__typename id customerId contactId channel purpose granted source evidence at "
    "recordedBy { __typename id name email role createdAt }"
)
RELATIONS = f"""
  owner {{ __typename id name email role createdAt }}
  team {{ __typename id name }}
  contacts {{ __typename id customerId name email phone jobTitle isPrimary notes createdAt
              updatedAt }}
  needs {{ __typename id customerId title description category consumptionType volume unit
          priority status dueDate createdAt updatedAt }}
  interactions(first: 4) {{
    __typename totalCount: __typename
    edges {{ __typename cursor node {{ __typename id customerId contactId channel direction
            occurredAt subject notes outcome satisfaction amount createdAt }} }}
    nodes {{ id }}
    pageInfo {{ __typename hasNextPage hasPreviousPage startCursor endCursor }}
  }}
  consents {{ {CONSENT} }}
  history: consentHistory {{ {CONSENT} }}
  {ROLE_LIST}
"""

# node(id:) of these types takes the resolver path (compiled: Customer only)
OTHER_NODE_TYPES = (
    "User",
    "Team",
    "Contact",
    "Need",
    "Interaction",
    "StageChange",
    "CustomerMerge",
)

CORPUS: list[tuple[str, dict[str, Any]]] = [
    ("{ __typename }", {}),
    (
        "query($first: Int) { customers(first: $first) { edges { node { id name email "
        "interactions(first: 5) { edges { node { id subject occurredAt channel } } } } } } }",
        {"first": 50},
    ),
    (
        f"{{ customers(first: 30) {{ totalCount edges {{ cursor node {{ {CUSTOMER_FIELDS} "
        f"{EVERY_TYPE} {RELATIONS} }} }} pageInfo {{ hasNextPage hasPreviousPage startCursor "
        "endCursor } } }",
        {},
    ),
    (
        "query($f: CustomerFilter, $o: CustomerOrder) { customers(first: 15, filter: $f, "
        "orderBy: $o) { totalCount nodes { id name createdAt updatedAt } "
        "pageInfo { endCursor hasNextPage } } }",
        {"f": {"deleted": "ALL"}, "o": {"field": "UPDATED_AT", "direction": "ASC"}},
    ),
    (
        "fragment Who on Customer { id name ...Where } fragment Where on Customer { stage phase } "
        "fragment Money on Client { annualRevenue segment } "
        "query { a: customers(first: 5) { edges { node { ...Who ...Money alias: name } } } "
        "b: customers(first: 3, orderBy: {field: NAME, direction: ASC}) { nodes { ...Who } } }",
        {},
    ),
    (
        "query($yes: Boolean!, $no: Boolean!) { customers(first: 8) { edges { node { "
        "id name @include(if: $yes) email @skip(if: $yes) phone @include(if: $no) "
        "contacts @skip(if: $no) { name } ... on Client @include(if: $yes) { segment } } } } }",
        {"yes": True, "no": False},
    ),
    (
        '{ customers(filter: {search: "zzz-nobody"}) { totalCount edges { cursor node { id } } '
        "nodes { id } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }",
        {},
    ),
    ('{ customers(filter: {search: "zzz-nobody"}) { totalCount } }', {}),
    # nothing read from a page's rows: one object, however many rows the page has
    (
        "{ customers(first: 5) { pageInfo { hasPreviousPage __typename } } "
        "more: customers(first: 30) { nodes { id interactions(first: 4) { "
        "pageInfo { hasPreviousPage } } } } }",
        {},
    ),
    # search in any script and case, order by name as read, cursors over folded names
    (
        "query($f: CustomerFilter, $o: CustomerOrder) { customers(first: 10, filter: $f, "
        "orderBy: $o) { totalCount edges { cursor node { id name } } } }",
        {"f": {"search": "ПЕТРОВ"}, "o": {"field": "NAME", "direction": "ASC"}},
    ),
    (
        "query($f: CustomerFilter, $o: CustomerOrder) { customers(first: 10, filter: $f, "
        "orderBy: $o) { totalCount edges { cursor node { id name } } } }",
        {"f": {"search": "asesoria"}, "o": {"field": "NAME", "direction": "DESC"}},
    ),
    (
        "query($f: CustomerFilter) { customers(first: 10, filter: $f) { totalCount nodes { id } } }",
        {"f": {"contactSearch": "МАРИЯ LUKASIEWICZ"}},
    ),
    ('{ customers(filter: {search: "\u200b"}) { totalCount } }', {}),
    ("{ customers { totalCount __typename } none: customers(first: 0) { __typename } }", {}),
    (
        "query($d: DeletedState!) { customers(filter: {deleted: $d}) { totalCount } "
        "customer(id: 1) { id } }",
        {"d": "ALL"},
    ),
    (
        "{ customers(first: 3) { nodes { interactions(first: 2) { __typename } } } }",
        {},
    ),
    (
        "{ customers(first: 0) { totalCount edges { node { id } } "
        "pageInfo { hasNextPage startCursor endCursor } } }",
        {},
    ),
    (
        "query($f: CustomerFilter) { customers(first: 40, filter: $f) { totalCount "
        "nodes { id name deletedAt } } }",
        {"f": {"deleted": "DELETED"}},
    ),
    (
        "query($f: CustomerFilter) { customers(first: 40, filter: $f) { totalCount nodes { id } } }",
        {"f": {"kinds": ["CLIENT", "PROSPECT"], "phases": ["ACQUISITION", "RETENTION"]}},
    ),
    (
        "query($f: CustomerFilter) { customers(first: 40, filter: $f) { totalCount nodes { id } } }",
        {"f": {"hasInteraction": {"channels": ["EMAIL", "PHONE"], "directions": ["INBOUND"]}}},
    ),
    (
        "query($f: CustomerFilter) { customers(first: 40, filter: $f) { totalCount nodes { id } } }",
        {"f": {"hasOpenNeed": True, "contactSearch": "a", "search": "e"}},
    ),
    (
        "query($f: CustomerFilter) { customers(first: 40, filter: $f) { totalCount nodes { id } } }",
        {"f": {"hasOpenNeed": False, "createdAfter": "2024-06-01T00:00:00+00:00"}},
    ),
    (
        "query($s: [NeedStatus!], $i: InteractionFilter) { customers(first: 20) { nodes { id "
        "needs(status: $s) { title status } interactions(first: 2, filter: $i) "
        "{ pageInfo { hasNextPage endCursor } nodes { channel amount } } } } }",
        {"s": ["OPEN", "MET"], "i": {"channels": ["EMAIL"], "since": "2024-01-01T00:00:00Z"}},
    ),
    *(
        (
            "query($id: ID!) { customer(id: $id) { __typename id name deletedAt "
            f"{EVERY_TYPE} {RELATIONS} }} again: customer(id: $id) {{ id }} }}",
            {"id": encode_id(type_name, pk)},
        )
        for type_name, pk in [("Customer", n) for n in (1, 2, 4, 5, 6, 7, 8, 9, 10, 46, 999)]
        + [("User", 1), ("Contact", 1)]
    ),
    ('{ customer(id: "not base64!") { id } }', {}),
    # node(id:) of a customer compiles as customer(id:) does (merged chains, the
    # caller's row scope: each role sees its own customers); an ID of another
    # type is answered by the resolvers; an invalid one is null
    *(
        (
            "query($id: ID!) { node(id: $id) { __typename id ... on Customer { name "
            f"deletedAt {EVERY_TYPE} {RELATIONS} }} ... on Interaction {{ subject }} "
            "... on Node { again: id } } customer(id: $id) { id } }",
            {"id": encode_id(type_name, pk)},
        )
        for type_name, pk in [("Customer", n) for n in (1, 2, 4, 5, 6, 7, 8, 9, 10, 12, 46, 999)]
        + [(type_name, 1) for type_name in OTHER_NODE_TYPES]
    ),
    *(
        ("query($id: ID!) { node(id: $id) { id } }", {"id": invalid})
        for invalid in ("not base64!", "V2ViaG9vazox", "Q3VzdG9tZXI6MA==", "Q3VzdG9tZXI6LTE=")
    ),
    # nodes(ids:) of customers: as node(id:) each, in the order asked, duplicates
    # repeated, null for a missing, invisible or invalid ID; an ID of another
    # type: the resolvers answer; more IDs than a page: TOO_MANY_IDS (resolvers)
    *(
        (
            "query($ids: [ID!]!) { nodes(ids: $ids) { __typename id ... on Customer { name "
            f"deletedAt {EVERY_TYPE} {RELATIONS} }} ... on Node {{ again: id }} }} "
            "n: nodes(ids: $ids) { id } }",
            {"ids": ids},
        )
        for ids in (
            [encode_id("Customer", n) for n in (8, 1, 6, 2, 999, 9, 12, 1, 46, 4, 5, 7, 10)]
            + ["not base64!", "V2ViaG9vazox", "Q3VzdG9tZXI6MA=="],
            [encode_id("Customer", n) for n in range(1, 47)],
            [],
            ["not base64!"],
            [encode_id("Customer", 3), encode_id("Contact", 1)],
        )
    ),
    (
        "query($ids: [ID!]!) { nodes(ids: $ids) { id } }",
        {"ids": [encode_id("Customer", n % 45 + 1) for n in range(101)]},
    ),
    (
        '{ nodes(ids: ["Q3VzdG9tZXI6Mw==", "Q3VzdG9tZXI6NA=="]) { id } '
        'customer(id: "Q3VzdG9tZXI6NA==") { name } }',
        {},
    ),
    # guarded fields: refused for roles without the permission, on both paths alike
    (
        "{ customers(first: 40) { nodes { id roles { kind ... on EmployeeRole { salary "
        "bonusTarget hireDate } ... on AgendaContactRole { birthday } } } } }",
        {},
    ),
    (
        "{ customers(first: 20) { nodes { id ... on Employee { salary bonusTarget } "
        "... on AgendaContact { birthday } contacts { birthday homeAddress } } } }",
        {},
    ),
    (
        "{ customers(first: 20) { nodes { id ... on AgendaContact { birthday } } } }",
        {},
    ),
    # arguments a resolver refuses: the resolver path answers, with its error
    ("{ customers(first: 1000) { nodes { id } } }", {}),
    ('{ customers(after: "not-a-cursor") { nodes { id } } }', {}),
    ('{ customers(filter: {ownerIds: ["bad"]}) { nodes { id } } }', {}),
    ("{ customers(first: 3) { nodes { id interactions(first: -1) { nodes { id } } } } }", {}),
]


# Fields computed in Python beside compiled ones: the statement builds the
# columns and relations, the executor resolves the rest (per object, batched).
KNOWLEDGE = (
    'knowledge(asOf: "2025-06-01T12:00:00Z") { asOf interactions firstContactAt '
    "daysSinceLastContact openNeeds interactionsByChannel { channel interactions } }"
)
PYTHON_FIELDS = {
    "allowedTransitions": "allowedTransitions { toStage label phase allowed reasons convertsTo }",
    "knowledge": KNOWLEDGE,
    "relationships": "relationships { id kind createdAt }",
    "merges": "merges { id }",
    "notes": "notes(first: 2) { edges { cursor node { id } } pageInfo { hasNextPage } }",
    "tasks": "tasks(first: 2) { edges { node { id } } }",
}
MIXED: list[tuple[str, dict[str, Any]]] = [
    (
        "query($first: Int) { customers(first: $first, filter: {deleted: ALL}) { totalCount "
        f"edges {{ cursor node {{ {CUSTOMER_FIELDS} erasedAt {EVERY_TYPE} {RELATIONS} "
        f"stageHistory {{ {STAGE_CHANGE} }} "
        f"{' '.join(PYTHON_FIELDS.values())} }} }} "
        "pageInfo { hasNextPage endCursor } } }",
        {"first": 30},
    ),
    (
        "{ customers(first: 12) { nodes { id name ... on Client { segment "
        f"{PYTHON_FIELDS['allowedTransitions']} }} ... on Prospect {{ source }} }} }} }}",
        {},
    ),
    (
        "fragment K on Customer { id knowledge: consents { granted } } "
        "query { a: customers(first: 5) { edges { node { ...K name } } } "
        "b: customers(first: 4, orderBy: {field: UPDATED_AT, direction: ASC}) "
        "{ nodes { ...K stage } } viewer { role permissions } "
        "mixLongestNames(first: 4) { id name owner { name } } mixRefusal }",
        {},
    ),
    *(
        (
            "query($id: ID!) { customer(id: $id) { __typename id name erasedAt "
            f"{PYTHON_FIELDS['allowedTransitions']} consents {{ {CONSENT} }} "
            f"interactions(first: 3) {{ nodes {{ id purpose }} }} }} "
            "loyaltyAccount(customerId: $id) { points tier customer { id name } } }",
            {"id": encode_id("Customer", pk)},
        )
        for pk in (1, 6, 7, 12, 999)
    ),
    (
        "query($id: ID!) { node(id: $id) { id ... on Customer { name "
        f"{PYTHON_FIELDS['allowedTransitions']} {PYTHON_FIELDS['knowledge']} }} }} }}",
        {"id": encode_id("Customer", 8)},
    ),
    # a role field computed in Python (its guards): the whole roles list is the
    # executor's, the rest of the page the statement's
    (
        "{ customers(first: 12, filter: {deleted: ALL}) { nodes { id name roles { kind "
        f"stage ... on GuarantorRole {{ guaranteedAmount }} {PYTHON_FIELDS['allowedTransitions']} "
        "} contacts { name } } } }",
        {},
    ),
    # a fallback field's error: notes refuses its page size; notes is non-null,
    # so the error nulls the customer, which nulls the list up to the root
    ("{ customers(first: 3) { nodes { id notes(first: 1000) { edges { cursor } } } } }", {}),
    # a nullable root field computed in Python fails alone, with its path
    ("{ customers(first: 2) { nodes { id name } } mixRefusal again: mixRefusal }", {}),
    # nodes(ids:) of customers with fields computed in Python (nulls kept in place)
    (
        "query($ids: [ID!]!) { nodes(ids: $ids) { id ... on Customer { name "
        f"{PYTHON_FIELDS['allowedTransitions']} {PYTHON_FIELDS['merges']} }} }} }}",
        {"ids": [encode_id("Customer", n) for n in (6, 999, 2, 12, 2, 1)] + ["not base64!"]},
    ),
]


def compiles(query: str, variables: dict[str, Any], engine: str) -> bool:
    """Whether the compiled server answers this corpus entry in one statement
    (the same on both engines since SQLite writes cursors over names too)."""
    other_nodes = {encode_id(type_name, 1) for type_name in OTHER_NODE_TYPES}
    asked = [variables.get("id"), *variables.get("ids", ())]
    by_id = "node(" in query or "nodes(" in query
    return not (by_id and any(i in other_nodes for i in asked))


@pytest.mark.parametrize("role", ROLES)
def test_corpus_gives_the_same_json_as_resolvers(pair: Pair, role: str) -> None:
    for query, variables in CORPUS:
        pair.same(query, variables, role, compiles(query, variables, pair.engine))


@pytest.mark.parametrize("role", ROLES)
def test_mixed_queries_give_the_same_json_as_resolvers(pair: Pair, role: str) -> None:
    for query, variables in MIXED:
        compiled, resolved = pair.both(query, variables, role)
        assert without_count(compiled) == without_count(resolved), f"{role}: {query}"


def test_pages_walked_with_cursors_are_the_same(pair: Pair) -> None:
    query = (
        "query($after: String, $o: CustomerOrder) { customers(first: 7, after: $after, "
        "orderBy: $o, filter: {deleted: ALL}) { edges { cursor node { id name "
        "interactions(first: 2) { pageInfo { endCursor hasNextPage } nodes { id } } } } "
        "pageInfo { hasNextPage hasPreviousPage endCursor } } }"
    )
    for field in ("CREATED_AT", "UPDATED_AT", "NAME"):
        for direction in ("ASC", "DESC"):
            order = {"field": field, "direction": direction}
            after, seen = None, 0
            while True:
                variables = {"after": after, "o": order}
                body = pair.same(query, variables, "agent")
                page = body["data"]["customers"]
                seen += len(page["edges"])
                if not page["pageInfo"]["hasNextPage"]:
                    break
                after = page["pageInfo"]["endCursor"]
            assert seen > 0
    # a customer's interactions, page after page from the compiled cursors
    nested = (
        "query($after: String) { customers(first: 50) { nodes { id "
        "interactions(first: 2, after: $after) { edges { cursor node { id occurredAt } } "
        "pageInfo { hasNextPage endCursor } } } } }"
    )
    after = None
    for _ in range(4):
        body = pair.same(nested, {"after": after})
        busiest = max(
            body["data"]["customers"]["nodes"], key=lambda n: len(n["interactions"]["edges"])
        )
        after = busiest["interactions"]["pageInfo"]["endCursor"]
        if after is None:
            break


# ---------------------------------------------------------------------------
# Generated queries


class Generator:
    """Random valid selections over the compilable fields (a fixed seed)."""

    USER = ("id", "name", "email", "role", "createdAt", "__typename")
    CONTACT = [
        "id",
        "customerId",
        "name",
        "email",
        "phone",
        "jobTitle",
        "isPrimary",
        "notes",
        "createdAt",
        "updatedAt",
        "__typename",
        "birthday",
    ]
    NEED = [
        "id",
        "customerId",
        "title",
        "description",
        "category",
        "consumptionType",
        "volume",
        "unit",
        "priority",
        "status",
        "dueDate",
        "createdAt",
        "updatedAt",
        "__typename",
    ]
    INTERACTION = [
        "id",
        "customerId",
        "contactId",
        "channel",
        "direction",
        "occurredAt",
        "subject",
        "notes",
        "outcome",
        "satisfaction",
        "amount",
        "createdAt",
        "__typename",
    ]
    CONSENT = [
        "id",
        "customerId",
        "contactId",
        "channel",
        "purpose",
        "granted",
        "source",
        "evidence",
        "at",
        "__typename",
        "recordedBy { id name }",
    ]
    TYPES = {
        "Client": "segment industry taxId website annualRevenue preferredLanguage",
        "Prospect": "source estimatedValue interest",
        "Supplier": "rating taxId category paymentTermsDays",
        "Beneficiary": "sharePercent relationToHolder",
        "Employee": "jobTitle department hireDate salary",
        "Competitor": "marketShare strengths agreementSignedOn",
        # not category: a String on Supplier, an enum here (fields must not conflict)
        "AgendaContact": "birthday notesShort",
        "Guarantor": "guaranteedAmount guaranteeType documentId",
    }
    # the role types' attributes, by role type (as TYPES: no conflicting fields)
    ROLE_TYPES = {
        **{f"{name}Role": fields for name, fields in TYPES.items()},
        "DistributorRole": "territory discountPercent contractEndsOn",
    }

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.aliases = 0
        self.mixed = False

    def pick(self, names: list[str] | tuple[str, ...], low: int = 1) -> list[str]:
        count = self.rng.randint(low, min(len(names), 6))
        return self.rng.sample(list(names), count)

    def name(self, field: str) -> str:
        if self.rng.random() < 0.1:
            self.aliases += 1
            return f"x{self.aliases}: {field}"
        return field

    def scalars(self, names: list[str] | tuple[str, ...]) -> str:
        return " ".join(self.name(n) for n in self.pick(names))

    def interactions(self) -> str:
        args = [f"first: {self.rng.randint(0, 5)}"]
        if self.rng.random() < 0.3:
            channel = self.rng.choice(["EMAIL", "PHONE", "MEETING"])
            args.append(f"filter: {{channels: [{channel}]}}")
        parts = []
        if self.rng.random() < 0.7:
            cursor = "cursor " if self.rng.random() < 0.5 else ""
            parts.append(f"edges {{ {cursor}node {{ {self.scalars(self.INTERACTION)} }} }}")
        if self.rng.random() < 0.3:
            parts.append(f"nodes {{ {self.scalars(self.INTERACTION)} }}")
        if self.rng.random() < 0.5 or not parts:
            info = ["hasNextPage", "hasPreviousPage", "startCursor", "endCursor"]
            parts.append(f"pageInfo {{ {' '.join(self.pick(info))} }}")
        return f"interactions({', '.join(args)}) {{ {' '.join(parts)} }}"

    def roles(self) -> str:
        parts = [self.scalars(ROLE_FIELDS.split())]
        for type_name in self.rng.sample(list(self.ROLE_TYPES), self.rng.randint(0, 3)):
            fields = self.scalars(self.ROLE_TYPES[type_name].split())
            parts.append(f"... on {type_name} {{ {fields} }}")
        if self.rng.random() < 0.3:
            parts.append(f"stageHistory {{ {self.scalars(STAGE_CHANGE.split())} }}")
        return f"roles {{ {' '.join(parts)} }}"

    def customer(self, depth: int = 0) -> str:
        base = CUSTOMER_FIELDS.split()
        parts = [self.scalars(base)]
        for type_name in self.rng.sample(list(self.TYPES), self.rng.randint(0, 3)):
            parts.append(f"... on {type_name} {{ {self.scalars(self.TYPES[type_name].split())} }}")
        relations = {
            "owner": lambda: f"owner {{ {self.scalars(self.USER)} }}",
            "team": lambda: "team { id name }",
            "contacts": lambda: f"contacts {{ {self.scalars(self.CONTACT)} }}",
            "needs": lambda: f"needs {{ {self.scalars(self.NEED)} }}",
            "interactions": self.interactions,
            "consents": lambda: f"consents {{ {self.scalars(self.CONSENT)} }}",
            "consentHistory": lambda: f"consentHistory {{ {self.scalars(self.CONSENT)} }}",
            "roles": self.roles,
        }
        for relation in self.rng.sample(list(relations), self.rng.randint(0, 3)):
            parts.append(relations[relation]())
        if self.rng.random() < 0.2:
            parts.append("... on Customer @include(if: $flag) { id createdAt }")
        if self.rng.random() < 0.25:
            self.mixed = True
            parts.append(PYTHON_FIELDS[self.rng.choice(sorted(PYTHON_FIELDS))])
        return " ".join(parts)

    def filter(self) -> dict[str, Any]:
        options: dict[str, Any] = {
            "kinds": [self.rng.choice(["CLIENT", "PROSPECT", "EMPLOYEE", "SUPPLIER"])],
            "phases": [self.rng.choice(["ENGAGEMENT", "ACQUISITION", "RETENTION"])],
            "search": self.rng.choice(["a", "e", "Ñ", "o'b", "%", "_", "ПЕТРОВ", "álv"]),
            "deleted": self.rng.choice(["ACTIVE", "DELETED", "ALL"]),
            "hasOpenNeed": self.rng.choice([True, False]),
            "hasInteraction": {"channels": [self.rng.choice(["EMAIL", "PHONE"])]},
            "contactSearch": self.rng.choice(["a", "z", "мАрИя"]),
        }
        keys = self.rng.sample(list(options), self.rng.randint(0, 2))
        return {k: options[k] for k in keys}

    def query(self) -> tuple[str, dict[str, Any], bool]:
        """A query, its variables and whether it selects fields computed in Python."""
        self.mixed = False
        order = {
            "field": self.rng.choice(["CREATED_AT", "UPDATED_AT", "NAME"]),
            "direction": self.rng.choice(["ASC", "DESC"]),
        }
        parts = []
        if self.rng.random() < 0.3:
            parts.append("totalCount")
        cursor = self.rng.random() < 0.4
        if self.rng.random() < 0.8:
            parts.append(f"edges {{ {'cursor ' if cursor else ''}node {{ {self.customer()} }} }}")
        else:
            parts.append(f"nodes {{ {self.customer()} }}")
        if self.rng.random() < 0.4:
            parts.append("pageInfo { hasNextPage endCursor }")
        variables = {
            "first": self.rng.randint(0, 25),
            "f": self.filter(),
            "o": order,
            "flag": self.rng.random() < 0.5,
        }
        root = ""
        if self.rng.random() < 0.15:
            self.mixed = True
            root = self.rng.choice(["viewer { role }", "mixLongestNames(first: 2) { id name }"])
        query = (
            "query($first: Int, $f: CustomerFilter, $o: CustomerOrder, $flag: Boolean!) { "
            f"customers(first: $first, filter: $f, orderBy: $o) {{ {' '.join(parts)} }} {root} }}"
        )
        return query, variables, self.mixed


GENERATED = 240


def test_generated_queries_give_the_same_json_as_resolvers(pair: Pair) -> None:
    generator = Generator(seed=2024)
    mixed = 0
    for i in range(GENERATED):
        query, variables, python = generator.query()
        role = ROLES[i % len(ROLES)]
        mixed += python
        pair.same(query, variables, role, compiles=not python)
    assert mixed > GENERATED // 5  # fields computed in Python in a good share of them


# ---------------------------------------------------------------------------
# Statements, fallback, limits


def test_a_compiled_query_is_one_statement_whatever_the_page_size(pair: Pair) -> None:
    query = (
        "query($first: Int) { customers(first: $first, filter: {deleted: ALL}) { totalCount "
        "edges { node { id owner { name } team { name } contacts { name } needs { title } "
        "interactions(first: 5) { nodes { subject } } consents { channel purpose granted } "
        "consentHistory { at recordedBy { name } } } } } }"
    )
    for first in (1, 10, 50):
        body = pair.same(query, {"first": first})
        assert len(body["data"]["customers"]["edges"]) == min(first, 45)
        assert body["extensions"]["sqlStatements"] == 1


def test_a_list_with_roles_is_one_statement_whatever_the_page_size(pair: Pair) -> None:
    """``Customer.roles`` compiles: every customer's roles, their typed
    attributes and their own histories in the page's one statement, as the
    resolvers answer them, for every caller. The roles shown are exactly
    those held (read here from the rows with ``is_held``): the primary kind
    first, then those added and not ended, of the kinds loaded."""
    query = (
        "query($first: Int) { customers(first: $first, filter: {deleted: ALL}) { "
        f"nodes {{ id kind {ROLE_LIST} }} }} }}"
    )
    for role in ROLES_OF_USERS:
        for first in (1, 10, 50):
            body = pair.same(query, {"first": first}, role)
            assert body["extensions"]["sqlStatements"] == 1
    body = pair.same(query, {"first": 50})
    nodes = {decode_id(n["id"])[1]: n for n in body["data"]["customers"]["nodes"]}
    held, ended, left = pair.compiled.run(held_roles)
    assert {pk: [r["kind"] for r in n["roles"]] for pk, n in nodes.items()} == held
    assert ended and all(kind not in held[pk] for pk, kind in ended)
    roles = [r for n in nodes.values() for r in n["roles"]]
    assert max(len(n["roles"]) for n in nodes.values()) >= 3
    assert any(
        (r["__typename"], r.get("guaranteedAmount"), r.get("guaranteeType"), r["primary"])
        == ("GuarantorRole", "12500.50", "BANK", False)
        for r in roles
    )
    assert any(r.get("hireDate") == "2021-03-04" and not r["primary"] for r in roles)
    assert any(r["stageLabel"] == "legacy" for r in roles)
    # the converted prospect: a client keeping its supplier role; the
    # prospect row the conversion left is history, not a role
    converted = [
        [(r["kind"], r["primary"]) for r in nodes[pk]["roles"]]
        for pk, kind in left
        if kind == "PROSPECT" and pk in nodes
    ]
    assert any(kinds[0] == ("CLIENT", True) and ("SUPPLIER", False) in kinds for kinds in converted)
    assert all("PROSPECT" not in {kind for kind, _ in kinds} for kinds in converted)
    # a role field computed in Python (allowedTransitions runs the guards): the
    # roles go to the executor, the page and its contacts stay one statement
    mixed = (
        "{ customers(first: 30) { nodes { id contacts { name } "
        "roles { kind allowedTransitions { toStage allowed } } } } }"
    )
    compiled, resolved = pair.both(mixed)
    assert without_count(compiled) == without_count(resolved)
    assert compiled["extensions"]["sqlStatements"] < resolved["extensions"]["sqlStatements"]


def test_what_every_type_reads_is_read_once_per_customer(
    pair: Pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A customer of every type with its relations and its roles of every
    type: on PostgreSQL each nested read that every type selects is written
    once in the statement, not once per type (a statement of ~430 KB that
    took 90-370 ms to plan was ~50 KB and ~6 ms to run). SQLite's parser
    stack is too shallow for the extra level: it keeps one copy per type."""
    statements: list[str] = []
    fetch = extension.fetch_json

    async def recording(db: Any, dialect: Any, sql: str, args: list[Any]) -> str:
        statements.append(sql)
        return await fetch(db, dialect, sql, args)

    monkeypatch.setattr(extension, "fetch_json", recording)
    query = f"{{ customers(first: 20) {{ nodes {{ id {EVERY_TYPE} {RELATIONS} }} }} }}"
    body = pair.same(query)
    assert len(body["data"]["customers"]["nodes"]) == 20
    (sql,) = statements
    reads = [sql.count(f"FROM {table} ") for table in ("customer_role", "contact", "need")]
    if pair.engine == "postgres":
        assert reads == [1, 1, 1]
        assert sql.count("FROM stage_change ") == 1  # a role's history, below roles
    else:
        assert min(reads) > 1


ROLES_OF_USERS = ("admin", "agent")


async def held_roles(
    state: AppState,
) -> tuple[dict[int, list[str]], list[tuple[int, str]], list[tuple[int, str]]]:
    """Each customer's roles held, as ``Customer.roles`` lists them (GraphQL
    kind names); the (customer, kind) of every role ended, and of every row
    a conversion left (of another kind, never added)."""
    loaded = {d.key for d in state.catalog.customer_types}
    rows = await state.db.fetch(
        "SELECT r.id, r.customer, r.kind, r.added_at, r.ended_at, c.kind AS primary_kind "
        "FROM customer_role r JOIN customer c ON c.id = r.customer ORDER BY r.id"
    )
    held: dict[int, list[str]] = {}
    for row in sorted(rows, key=lambda r: (r["kind"] != r["primary_kind"], r["id"])):
        kinds = held.setdefault(row["customer"], [])
        if row["kind"] in loaded and is_held(row, row["primary_kind"]):
            kinds.append(row["kind"].upper())
    ended = [(r["customer"], r["kind"].upper()) for r in rows if r["ended_at"] is not None]
    left = [
        (r["customer"], r["kind"].upper())
        for r in rows
        if r["kind"] != r["primary_kind"] and r["added_at"] is None
    ]
    return held, ended, left


def test_fields_computed_in_python_cost_their_batches_whatever_the_page_size(
    pair: Pair,
) -> None:
    """The statement builds the columns, relations and stage history; the
    executor resolves the fields computed in Python, each through its
    DataLoader: one statement plus one batch per such field, for 1 customer
    as for 40 (the resolver path pays for the page and its relations too)."""
    python = ("knowledge", "relationships", "merges", "notes", "tasks")
    query = (
        "query($first: Int) { customers(first: $first, filter: {deleted: ALL}) { totalCount "
        "edges { node { id name owner { name } contacts { name } stageHistory { toStage } "
        "interactions(first: 3) { nodes { subject purpose } } "
        f"{' '.join(PYTHON_FIELDS[name] for name in python)} }} }} }} }}"
    )
    counts = set()
    for first in (1, 10, 40):
        compiled, resolved = pair.both(query, {"first": first})
        assert without_count(compiled) == without_count(resolved)
        assert len(compiled["data"]["customers"]["edges"]) == first
        counts.add(compiled["extensions"]["sqlStatements"])
        assert compiled["extensions"]["sqlStatements"] < resolved["extensions"]["sqlStatements"]
    # one batch each; knowledge's is two statements (the facts, then the
    # channels; no analytics settings for it since 2b68b95)
    assert counts == {1 + len(python) - 1 + 2}, counts


def test_a_plugin_root_field_beside_a_compiled_list(pair: Pair) -> None:
    query = (
        "{ customers(first: 20) { nodes { id name } } "
        "mixLongestNames(first: 3) { __typename id name owner { name } } }"
    )
    compiled, resolved = pair.both(query)
    assert without_count(compiled) == without_count(resolved)
    assert len(compiled["data"]["mixLongestNames"]) == 3
    # the list in one statement, the plugin's field as its resolver reads it
    # (its customers' owners through the user DataLoader)
    assert compiled["extensions"]["sqlStatements"] == 3


def test_limits_still_refuse(pair: Pair) -> None:
    deep = "{ customers { nodes { interactions { nodes { id } } } } }"
    costly = "customers(first: 100) { nodes { interactions(first: 100) { nodes { id } } } }"
    too_costly = "{ " + " ".join(f"c{i}: {costly}" for i in range(3)) + " }"
    aliases = "{ " + " ".join(f"a{i}: __typename" for i in range(40)) + " }"
    for query in (too_costly, aliases):
        compiled, resolved = pair.both(query)
        assert compiled == resolved
        assert compiled["errors"] and compiled["data"] is None
    compiled, resolved = pair.both(deep)
    assert without_count(compiled) == without_count(resolved)
    assert compiled["extensions"]["cost"] == resolved["extensions"]["cost"]
