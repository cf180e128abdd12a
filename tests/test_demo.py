"""The demo data set on a real SQLite file and a fresh PostgreSQL database:
every type present, lifecycle state consistent with a history of declared
transitions, data the API itself would accept, UTC timestamps, deterministic
for a seed, and fast enough to seed 3000 customers on start-up."""

from __future__ import annotations

import datetime
import json
import shutil
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import phonenumbers
import pytest

from crmgraph import validation
from crmgraph.customer_types import (
    Attribute,
    CustomerType,
    Lifecycle,
    Phase,
    Stage,
    Transition,
)
from crmgraph.db.engine import Database, StatementCounter, current_counter, make_engine
from crmgraph.db.tables import CORE_TABLES
from crmgraph.demo import DemoSummary, has_data, plan_demo, seed_demo
from crmgraph.hookspecs import hookimpl
from crmgraph.plugin_calls import PluginFailure
from crmgraph.registry import Catalog, make_plugin_manager
from crmgraph.settings import Settings
from crmgraph.testing import settings_for
from tests.conftest import fresh_database
from tests.plugins_for_tests import demo_rows

CUSTOMERS = 200
SEED = 11
NOW = datetime.datetime(2026, 6, 1, 12, 0, tzinfo=datetime.UTC)
OLDEST = NOW - datetime.timedelta(days=4 * 365)  # users joined before the first customer
TWO_YEARS_AGO = NOW - datetime.timedelta(days=730)

# A partner's type that exercises every attribute type, an unreachable stage
# and a conversion into another type.
SHOP = CustomerType(
    key="partner_shop",
    graphql_name="PartnerShop",
    description="A shop selling our products under licence.",
    attributes=(
        Attribute("code", str, required=True, max_length=5),
        Attribute("motto", str, max_length=12),
        Attribute("tier", str, choices=("GOLD", "SILVER")),
        Attribute("is_franchise", bool),
        Attribute("score", float, min_value=0, max_value=10),
        Attribute("staff", int, min_value=1),
        Attribute("credit_limit", Decimal, max_value=5000),
        Attribute("renewal_date", datetime.date),
    ),
    lifecycle=Lifecycle(
        stages=(
            Stage("applied", "Applied", Phase.ENGAGEMENT),
            Stage("trial", "Trial", Phase.ACQUISITION),
            Stage("signed", "Signed", Phase.RETENTION),
            Stage("closed", "Closed", Phase.ENDED),
            Stage("limbo", "Never reached", Phase.ENDED),
        ),
        initial="applied",
        transitions=(
            Transition("applied", "trial"),
            Transition("trial", "signed"),
            Transition("trial", "closed"),
            Transition("signed", "closed", convert_to="client", convert_stage="active"),
        ),
    ),
)


class ShopPlugin:
    @hookimpl
    def crmgraph_customer_types(self) -> list[CustomerType]:
        return [SHOP]


@dataclass
class Seeded:
    db: Database
    catalog: Catalog
    summary: DemoSummary
    was_empty: bool


def catalog_for(settings: Settings, *extra: object) -> Catalog:
    return Catalog.from_plugin_manager(make_plugin_manager(settings, extra_plugins=extra))


async def open_db(database_url: str, plugins: tuple[str, ...] = ()) -> tuple[Database, Settings]:
    settings = settings_for(database_url, plugins=plugins)
    db = Database(make_engine(settings), CORE_TABLES)
    await db.start(settings)
    return db, settings


@asynccontextmanager
async def seeded_db(
    database_url: str,
    customers: int = CUSTOMERS,
    seed: int = SEED,
    *extra: object,
    plugins: tuple[str, ...] = (),
) -> AsyncIterator[Seeded]:
    db, settings = await open_db(database_url, plugins)
    try:
        pm = make_plugin_manager(settings, extra_plugins=extra)
        catalog = Catalog.from_plugin_manager(pm)
        was_empty = not await has_data(db)
        summary = await seed_demo(
            db, catalog, customers=customers, seed=seed, now=NOW, plugin_manager=pm
        )
        yield Seeded(db, catalog, summary, was_empty)
    finally:
        await db.stop()


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def module_database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    path = tmp_path_factory.mktemp("demo") / "crm.sqlite"
    with fresh_database(request.param, request, path) as url:
        yield url


@pytest.fixture(scope="module")
async def seeded(module_database_url: str) -> AsyncIterator[Seeded]:
    """One seeded database per engine, shared by the module's tests that only
    read it (the test that seeds a second one takes ``own_seeded``)."""
    async with seeded_db(module_database_url) as result:
        yield result


@pytest.fixture
async def own_seeded(database_url: str) -> AsyncIterator[Seeded]:
    async with seeded_db(database_url) as result:
        yield result


@pytest.fixture
def other_database_url(
    database_url: str, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[str]:
    """A second fresh database on the same engine as ``database_url``."""
    engine = "sqlite" if database_url.startswith("sqlite") else "postgres"
    with fresh_database(engine, request, tmp_path / "other.sqlite") as url:
        yield url


async def rows(db: Database, sql: str, *args: Any) -> list[dict[str, Any]]:
    return await db.fetch(sql, *args)


async def count(db: Database, table: str) -> int:
    return int((await db.fetch(f"SELECT COUNT(*) AS n FROM {table}"))[0]["n"])


# -- consistency, shared by the core catalog and the extended one ---------------


def lifecycle_of(catalog: Catalog, kind: str) -> Lifecycle:
    descriptor = catalog.customer_type(kind)
    assert descriptor is not None, kind
    return descriptor.lifecycle


async def check_roles(db: Database, catalog: Catalog) -> None:
    customers = await rows(db, "SELECT id, kind FROM customer")
    roles = await rows(db, "SELECT customer, kind, stage, phase FROM customer_role")
    by_customer: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for role in roles:
        by_customer[role["customer"]].append(role)
        stage = lifecycle_of(catalog, role["kind"]).stage(role["stage"])
        assert stage is not None, role
        assert stage.phase.value == role["phase"], role
    for customer in customers:
        own = [r for r in by_customer[customer["id"]] if r["kind"] == customer["kind"]]
        assert len(own) == 1, (customer, by_customer[customer["id"]])
        kinds = [r["kind"] for r in by_customer[customer["id"]]]
        assert len(kinds) == len(set(kinds)), kinds


def replay(catalog: Catalog, history: list[dict[str, Any]]) -> tuple[str, dict[str, str], int]:
    """Walk a customer's stage changes like the lifecycle engine would and
    return its final kind, the stage it holds in each kind and how many
    further roles it took on (``addRole``: a kind it never was, entered at
    its first stage)."""
    first = history[0]
    start = catalog.customer_type(first["kind"])
    assert start is not None
    assert (first["from_stage"], first["reason"]) == (None, "created")
    assert first["to_stage"] == start.lifecycle.initial
    kind, stages = first["kind"], {first["kind"]: first["to_stage"]}
    converting: Transition | None = None
    added = 0
    for change in history[1:]:
        if change["reason"] == "role added" and converting is None:
            assert change["kind"] not in stages and change["from_stage"] is None, change
            assert change["to_stage"] == lifecycle_of(catalog, change["kind"]).initial, change
            added += 1
        elif converting is not None:
            target = catalog.customer_type(converting.convert_to or "")
            assert target is not None and change["kind"] == target.key, change
            assert change["to_stage"] == converting.convert_stage or target.lifecycle.initial
            assert change["from_stage"] == stages.get(target.key), change
            kind, converting = target.key, None
        else:
            assert change["kind"] == kind and change["from_stage"] == stages[kind], change
            lifecycle = lifecycle_of(catalog, kind)
            transition = lifecycle.transition(change["from_stage"], change["to_stage"])
            assert transition is not None, change  # only declared transitions
            converting = transition if transition.convert_to else None
        stages[change["kind"]] = change["to_stage"]
    assert converting is None, history
    return kind, stages, added


async def check_histories(db: Database, catalog: Catalog) -> int:
    """Every history replays to the customer's kind and role stages; returns
    how many customers changed type on the way."""
    changes = await rows(
        db,
        "SELECT customer, kind, from_stage, to_stage, reason FROM stage_change "
        "ORDER BY customer, at, id",
    )
    histories: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for change in changes:
        histories[change["customer"]].append(change)
    customers = {r["id"]: r["kind"] for r in await rows(db, "SELECT id, kind FROM customer")}
    roles: dict[int, dict[str, str]] = defaultdict(dict)
    for role in await rows(db, "SELECT customer, kind, stage FROM customer_role"):
        roles[role["customer"]][role["kind"]] = role["stage"]
    assert set(histories) == set(customers)
    converted = 0
    for pk, history in histories.items():
        kind, stages, added = replay(catalog, history)
        assert kind == customers[pk]
        assert stages == roles[pk]  # every chain ends at the role's current stage
        converted += len(stages) - added > 1
    return converted


async def check_attributes(db: Database, catalog: Catalog) -> None:
    for customer in await rows(db, "SELECT id, kind, attributes FROM customer"):
        stored = customer["attributes"]
        values = json.loads(stored) if isinstance(stored, str) else stored
        descriptor = catalog.customer_type(customer["kind"])
        assert descriptor is not None
        typed = descriptor.decode_attributes(values)
        errors = validation.Errors()
        given = {k: v for k, v in typed.items() if k in values}
        validation.attributes(errors, "attributes", descriptor, given)
        assert not errors, (customer, errors.problems)


async def check_further_roles(db: Database, catalog: Catalog) -> None:
    """Parties holding further roles, each role's attributes its kind's, valid."""
    found = await rows(
        db,
        "SELECT r.customer, r.kind, r.attributes FROM customer_role r JOIN customer c "
        "ON c.id = r.customer AND r.kind <> c.kind WHERE r.added_at IS NOT NULL",
    )
    assert len({r["customer"] for r in found}) >= 4, found
    for role in found:
        stored = role["attributes"]
        values = json.loads(stored) if isinstance(stored, str) else stored
        descriptor = catalog.customer_type(role["kind"])
        assert descriptor is not None and descriptor.secondary_role
        errors = validation.Errors()
        typed = descriptor.decode_attributes(values)
        validation.attributes(errors, "attributes", descriptor, {k: typed[k] for k in values})
        assert not errors, (role, errors.problems)
    assert any(role["attributes"] not in ("{}", {}) for role in found)


async def check_consistency(db: Database, catalog: Catalog) -> int:
    await check_roles(db, catalog)
    await check_attributes(db, catalog)
    await check_further_roles(db, catalog)
    return await check_histories(db, catalog)


# -- the core catalog, on both engines ------------------------------------------


async def test_seeds_only_an_empty_database(seeded: Seeded) -> None:
    assert seeded.was_empty
    assert await has_data(seeded.db)


async def test_summary_matches_the_tables(seeded: Seeded) -> None:
    summary = seeded.summary
    expected = {
        "crm_user": summary.users,
        "customer": summary.customers,
        "contact": summary.contacts,
        "interaction": summary.interactions,
        "need": summary.needs,
        "relationship": summary.relationships,
        "stage_change": summary.stage_changes,
    }
    assert {table: await count(seeded.db, table) for table in expected} == expected
    assert summary.customers == CUSTOMERS and summary.users == 8
    assert summary.interactions > CUSTOMERS and summary.relationships > 0
    assert str(summary).startswith(f"{CUSTOMERS} customers")


async def test_every_registered_type_is_present(seeded: Seeded) -> None:
    kinds = {r["kind"] for r in await rows(seeded.db, "SELECT DISTINCT kind FROM customer")}
    assert kinds == {t.key for t in seeded.catalog.customer_types}


async def test_lifecycle_state_matches_a_history_of_declared_transitions(seeded: Seeded) -> None:
    await check_consistency(seeded.db, seeded.catalog)
    stages = await rows(seeded.db, "SELECT DISTINCT kind, stage FROM customer_role")
    assert len(stages) > len(seeded.catalog.customer_types)  # not everyone sits at the start


async def test_most_customers_have_an_owner(seeded: Seeded) -> None:
    users = await rows(seeded.db, "SELECT id, email, role FROM crm_user")
    assert {u["role"] for u in users} <= {"admin", "manager", "agent", "viewer"}
    owners = await rows(seeded.db, "SELECT owner FROM customer")
    owned = [r["owner"] for r in owners if r["owner"] is not None]
    assert len(owned) > 0.7 * len(owners)
    assert set(owned) <= {u["id"] for u in users}


async def test_phones_and_emails_are_what_the_api_accepts(seeded: Seeded) -> None:
    db = seeded.db
    phones = [
        r["phone"]
        for table in ("customer", "contact")
        for r in await rows(db, f"SELECT phone FROM {table} WHERE phone IS NOT NULL")
    ]
    emails = [
        r["email"]
        for table in ("crm_user", "customer", "contact")
        for r in await rows(db, f"SELECT email FROM {table} WHERE email IS NOT NULL")
    ]
    assert len(phones) > CUSTOMERS and len(emails) > CUSTOMERS
    for phone in phones:
        parsed = phonenumbers.parse(phone)
        assert phonenumbers.is_valid_number(parsed), phone
        assert phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164) == phone
    assert any(p.startswith("+34") for p in phones) and any(p.startswith("+1") for p in phones)
    for email in emails:
        assert email.count("@") == 1
        errors = validation.Errors()
        assert validation.email(errors, "email", email) == email, errors.problems
    assert len(set(emails)) == len(emails)


async def test_activity_is_well_formed(seeded: Seeded) -> None:
    db, catalog = seeded.db, seeded.catalog
    interactions = await rows(db, "SELECT * FROM interaction")
    assert {i["channel"] for i in interactions} <= set(catalog.channels)
    assert {i["direction"] for i in interactions} == {"INBOUND", "OUTBOUND"}
    assert {i["satisfaction"] for i in interactions} - {None} <= {1, 2, 3, 4, 5}
    amounts = [Decimal(str(i["amount"])) for i in interactions if i["amount"] is not None]
    assert amounts and all(a > 0 for a in amounts)
    needs = await rows(db, "SELECT status, priority, due_date FROM need")
    assert {n["status"] for n in needs} == {"OPEN", "IN_PROGRESS", "MET", "DROPPED"}
    assert {n["priority"] for n in needs} == {"LOW", "MEDIUM", "HIGH", "URGENT"}
    primaries = await rows(
        db,
        "SELECT customer, SUM(CASE WHEN is_primary THEN 1 ELSE 0 END) AS n "
        "FROM contact GROUP BY customer",
    )
    assert primaries and all(p["n"] == 1 for p in primaries)
    links = await rows(db, "SELECT from_customer, to_customer, kind FROM relationship")
    assert {link["kind"] for link in links} <= {k.key for k in catalog.relationship_kinds}
    assert all(link["from_customer"] != link["to_customer"] for link in links)


async def test_customers_bought_before_moving_into_a_paying_phase(seeded: Seeded) -> None:
    db, catalog = seeded.db, seeded.catalog
    first_order: dict[int, datetime.datetime] = {}
    for order in await rows(
        db, "SELECT customer, occurred_at FROM interaction WHERE amount IS NOT NULL"
    ):
        at = first_order.get(order["customer"], order["occurred_at"])
        first_order[order["customer"]] = min(at, order["occurred_at"])
    paying = 0
    for change in await rows(db, "SELECT customer, kind, to_stage, at, reason FROM stage_change"):
        phase = lifecycle_of(catalog, change["kind"]).stage(change["to_stage"]).phase  # type: ignore[union-attr]
        if change["reason"] != "created" and phase.value in ("RETENTION", "EXPANSION"):
            paying += 1
            assert first_order.get(change["customer"], NOW) <= change["at"], change
    assert paying > 0


TIMESTAMPS = {
    "crm_user": ("created_at",),
    "customer": ("created_at", "updated_at"),
    "customer_role": ("entered_at",),
    "contact": ("created_at", "updated_at"),
    "interaction": ("occurred_at", "created_at"),
    "need": ("created_at", "updated_at"),
    "relationship": ("created_at",),
    "stage_change": ("at",),
}


async def test_timestamps_are_utc_and_in_the_past(seeded: Seeded) -> None:
    db = seeded.db
    for table, columns in TIMESTAMPS.items():
        for column in columns:
            values = [r["v"] for r in await rows(db, f"SELECT {column} AS v FROM {table}")]
            assert values, (table, column)
            for value in values:
                assert value.utcoffset() == datetime.timedelta(0), (table, column, value)
                assert OLDEST <= value <= NOW, (table, column, value)
            if db.is_sqlite:  # the stored text, which is what ORDER BY compares
                raw = await rows(db, f"SELECT CAST({column} AS TEXT) AS v FROM {table}")
                assert all(r["v"].endswith("+00:00") for r in raw), (table, column)
    created = await rows(db, "SELECT created_at FROM customer")
    assert min(r["created_at"] for r in created) >= TWO_YEARS_AGO
    late = await rows(
        db,
        "SELECT COUNT(*) AS n FROM interaction i JOIN customer c ON c.id = i.customer "
        "WHERE i.occurred_at < c.created_at",
    )
    assert late[0]["n"] == 0


DUMPS = {
    "crm_user": "name, email, role, created_at",
    "customer": "kind, name, email, phone, owner, attributes, version, created_at, updated_at",
    "customer_role": "customer, kind, stage, phase, entered_at",
    "stage_change": "customer, kind, from_stage, to_stage, at, reason",
    "contact": "customer, name, email, phone, job_title, is_primary",
    "interaction": "customer, channel, direction, occurred_at, subject, amount",
    "need": "customer, title, status, priority, volume, due_date",
    "relationship": "from_customer, to_customer, kind",
}


async def dump(db: Database) -> dict[str, list[dict[str, Any]]]:
    return {
        table: await rows(db, f"SELECT {columns} FROM {table} ORDER BY id")
        for table, columns in DUMPS.items()
    }


async def test_same_seed_gives_the_same_data(own_seeded: Seeded, other_database_url: str) -> None:
    async with seeded_db(other_database_url) as again:
        assert again.summary == own_seeded.summary
        assert await dump(again.db) == await dump(own_seeded.db)


def test_another_seed_gives_other_data() -> None:
    catalog = catalog_for(settings_for("sqlite:///unused.sqlite"))
    first, second = (plan_demo(catalog, 50, seed, NOW) for seed in (1, 2))
    assert [c.fields["name"] for c in first.customers] != [
        c.fields["name"] for c in second.customers
    ]


# -- a partner's type ------------------------------------------------------------


async def test_a_plugin_type_gets_demo_data_too(database_url: str) -> None:
    async with seeded_db(database_url, 400, SEED, ShopPlugin()) as seeded:
        db = seeded.db
        assert seeded.catalog.customer_type("partner_shop") is not None
        converted = await check_consistency(db, seeded.catalog)
        assert converted > 0  # shops and prospects walked into clients
        shops = await rows(db, "SELECT attributes FROM customer WHERE kind = {}", "partner_shop")
        assert shops
        limbo = await rows(db, "SELECT id FROM customer_role WHERE stage = {}", "limbo")
        assert not limbo  # no declared transition leads there


# -- a plugin's rows, through crmgraph_seed_demo ---------------------------------

DEMO_ROWS = "tests.plugins_for_tests.demo_rows"
BROKEN_DEMO_ROWS = "tests.plugins_for_tests.broken_demo_rows"


async def plugin_notes(db: Database) -> list[dict[str, Any]]:
    return await rows(
        db,
        "SELECT n.customer, n.author, n.created_at, c.owner, c.kind, "
        "c.created_at AS customer_created FROM note n JOIN customer c ON c.id = n.customer "
        "WHERE n.body = {} ORDER BY n.id",
        demo_rows.BODY,
    )


async def test_a_plugin_adds_its_rows_through_its_hook(
    database_url: str, other_database_url: str
) -> None:
    async with seeded_db(database_url, plugins=(DEMO_ROWS,)) as seeded:
        notes = await plugin_notes(seeded.db)
        owned_clients = await rows(
            seeded.db, "SELECT id FROM customer WHERE kind = {} AND owner IS NOT NULL", "client"
        )
        # after the core rows: every owned client is there to get its note
        assert sorted(n["customer"] for n in notes) == sorted(c["id"] for c in owned_clients)
        assert len(notes) > 10
        for note in notes:
            assert note["author"] == note["owner"] and note["kind"] == "client"
            assert note["customer_created"] <= note["created_at"] <= NOW
        await check_consistency(seeded.db, seeded.catalog)
    async with seeded_db(other_database_url, plugins=(DEMO_ROWS,)) as again:
        assert await plugin_notes(again.db) == notes  # the plugin's rng is seeded too


async def test_a_plugin_failing_in_the_hook_names_itself_and_leaves_nothing(
    database_url: str,
) -> None:
    with pytest.raises(PluginFailure) as failed:
        async with seeded_db(database_url, 50, SEED, plugins=(BROKEN_DEMO_ROWS,)):
            pass
    assert failed.value.plugin == BROKEN_DEMO_ROWS
    assert str(failed.value) == (
        f"plugin {BROKEN_DEMO_ROWS!r} failed in crmgraph_seed_demo: "
        "LookupError: no loyalty tier for the demo"
    )
    db, _ = await open_db(database_url)
    try:
        assert not await has_data(db)  # the seed's one transaction rolled back
        assert await count(db, "crm_user") == 0
    finally:
        await db.stop()


# -- batching ----------------------------------------------------------------------


async def test_1000_customers_seed_in_batched_statements(
    tmp_path: Path, sqlite_template: Path
) -> None:
    """Seeding is batched: the statement count grows with rows / batch size,
    not with rows (counted, not timed; speed is bench/'s business).
    1,000 customers (~14,000 rows, 55 statements) rather than 3,000 (~42,000
    rows, 145): the bound is a ratio and the ~10 statements that do not grow
    weigh more at this size, so a seed writing a statement per row, or per
    fewer than ~100 rows, fails here as it did at 3,000, in a third of the time."""
    path = tmp_path / "big.sqlite"
    shutil.copyfile(sqlite_template, path)
    db, settings = await open_db(f"sqlite:///{path}")
    counter = StatementCounter()
    token = current_counter.set(counter)
    try:
        summary = await seed_demo(db, catalog_for(settings), customers=1000)
    finally:
        current_counter.reset(token)
        await db.stop()
    assert summary.customers == 1000
    rows_written = (
        summary.users + summary.customers * 2 + summary.contacts + summary.interactions
        + summary.needs + summary.relationships + summary.stage_changes
    )  # fmt: skip
    assert counter.count < rows_written / 100, (counter.count, rows_written)
