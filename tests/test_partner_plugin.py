"""A partner's plugin as installed software: crmgraph-loyalty (plugins/crmgraph-loyalty,
``pip install -e``) is found through its entry point, extends the schema and the
database, and can be switched off and on without losing or breaking anything.
Also: faulty plugins fail cleanly at run time and loudly at start-up, naming
themselves."""

from __future__ import annotations

import asyncio
import importlib.metadata
import re
from typing import Any

import pytest
from piccolo.querystring import QueryString

from crmgraph.app import create_app
from crmgraph.db.engine import make_engine
from crmgraph.registry import Catalog, PluginError, make_plugin_manager
from crmgraph.schema.build import build_schema
from crmgraph.schema.ids import decode_id
from crmgraph.settings import Settings
from crmgraph.testing import IN_CI, live_server, migrate_for, settings_for
from tests.conftest import LiveServer

ENTRY_POINT = "loyalty"
BROKEN = "tests.plugins_for_tests.broken"


@pytest.fixture
def loyalty_installed() -> None:
    names = {ep.name for ep in importlib.metadata.entry_points(group="crmgraph")}
    if ENTRY_POINT not in names:
        message = "crmgraph-loyalty is not installed: pip install -e plugins/crmgraph-loyalty"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


def with_entry_points(database_url: str, **overrides: Any) -> Settings:
    """Settings that load installed plugins, as ``crmgraph serve`` does (the
    test default is built-ins only, so other suites never see them)."""
    return settings_for(database_url, load_entry_points=True, **overrides)


def sql(settings: Settings, statement: str, *args: Any) -> list[dict[str, Any]]:
    """Look at the database directly, behind the API's back."""

    async def run() -> list[dict[str, Any]]:
        rows = await make_engine(settings).run_querystring(QueryString(statement, *args))
        return [dict(row) for row in rows or []]

    return asyncio.run(run())


def create(server: LiveServer, kind: str, name: str, **fields: Any) -> dict[str, Any]:
    payload = server.gql(
        """mutation($input: CreateCustomerInput!) {
          createCustomer(input: $input) { customer { id version } userErrors { message } }
        }""",
        {"input": {"kind": kind, "name": name, **fields}},
    )["createCustomer"]
    assert payload["userErrors"] == [], payload["userErrors"]
    return payload["customer"]


def move(server: LiveServer, customer: dict[str, Any], to_stage: str) -> dict[str, Any]:
    body = server.post(
        """mutation($input: TransitionCustomerInput!) {
          transitionCustomer(input: $input) { customer { version stage } userErrors { message } }
        }""",
        {
            "input": {
                "id": customer["id"],
                "toStage": to_stage,
                "expectedVersion": customer["version"],
            }
        },
    )
    payload = (body.get("data") or {}).get("transitionCustomer")
    if payload and payload["customer"]:
        customer.update(payload["customer"])
    return body


def pk(customer: dict[str, Any]) -> int:
    return decode_id(customer["id"], "Customer")[1]


def listed(server: LiveServer) -> list[tuple[str, str]]:
    nodes = server.gql("{ customers(first: 100) { nodes { name kind } } }")["customers"]["nodes"]
    return sorted((n["name"], n["kind"]) for n in nodes)


def query_fields(server: LiveServer) -> set[str]:
    data = server.gql('{ __type(name: "Query") { fields { name } } }')
    return {f["name"] for f in data["__type"]["fields"]}


def test_installed_partner_plugin_is_discovered_and_can_be_switched_off(
    database_url: str, loyalty_installed: None
) -> None:
    settings = with_entry_points(database_url)
    asyncio.run(migrate_for(settings))

    catalog = Catalog.from_plugin_manager(make_plugin_manager(settings))
    assert ENTRY_POINT in catalog.plugins
    assert {t.descriptor.key: t.plugin for t in catalog.types}["distributor"] == ENTRY_POINT
    assert "crmgraph_loyalty.piccolo_app" in catalog.piccolo_apps
    assert "LOYALTY_APP" in catalog.channels
    pm = make_plugin_manager(settings)
    sdl = build_schema(Catalog.from_plugin_manager(pm), pm)[0].as_str()
    assert re.search(r"type Distributor implements [^{]*\bCustomer\b", sdl)
    # the argument is described, so the SDL prints it on a line of its own
    assert re.search(
        r"loyaltyAccount\(\s*(\"\"\"[^\"]*\"\"\"\s*)?customerId: ID!\s*\): LoyaltyAccount", sdl
    )
    assert "LOYALTY_APP" in sdl
    # its own table, migrated by its own piccolo app
    assert sql(settings, "SELECT COUNT(*) AS n FROM loyalty_account") == [{"n": 0}]
    applied = sql(settings, "SELECT name FROM migration WHERE app_name = {}", "crmgraph_loyalty")
    assert len(applied) == 1

    with live_server(settings) as server:
        client = create(server, "CLIENT", "Ana Shop")
        distributor = create(server, "DISTRIBUTOR", "Iberia Parts", distributor={"territory": "ES"})
        for stage in ("engaged", "negotiating"):
            assert move(server, client, stage)["data"]["transitionCustomer"]["userErrors"] == []
        server.gql(
            """mutation($id: ID!) { logInteraction(input: {customerId: $id, channel: LOYALTY_APP,
                 direction: INBOUND, subject: "order", amount: "99.90"}) { userErrors { message } } }""",
            {"id": client["id"]},
        )
        assert move(server, client, "active")["data"]["transitionCustomer"]["userErrors"] == []
        awarded = server.gql(
            """mutation($id: ID!) { awardLoyaltyPoints(input: {customerId: $id, points: 70,
                 reason: "launch"}) { account { points tier } userErrors { message } } }""",
            {"id": client["id"]},
        )["awardLoyaltyPoints"]
        assert awarded == {"account": {"points": 120, "tier": "BRONZE"}, "userErrors": []}
        assert listed(server) == [("Ana Shop", "CLIENT"), ("Iberia Parts", "DISTRIBUTOR")]

    # Restarted without the plugin: the core serves on, the plugin's data stays put.
    disabled = with_entry_points(database_url, disabled_plugins=(ENTRY_POINT,))
    off_pm = make_plugin_manager(disabled)
    assert off_pm.is_blocked(ENTRY_POINT)
    assert off_pm.get_plugin(ENTRY_POINT) is None
    off = Catalog.from_plugin_manager(off_pm)
    assert "distributor" not in {t.descriptor.key for t in off.types}
    assert "crmgraph_loyalty.piccolo_app" not in off.piccolo_apps
    with live_server(disabled) as server:
        assert "loyaltyAccount" not in query_fields(server)
        assert server.gql('{ __type(name: "Distributor") { name } }')["__type"] is None
        create(server, "CLIENT", "Bruno Bikes")
        # the distributor's kind is unknown now: hidden, not an error
        assert listed(server) == [("Ana Shop", "CLIENT"), ("Bruno Bikes", "CLIENT")]
        hidden = server.gql(
            "query($id: ID!) { customer(id: $id) { id } }", {"id": distributor["id"]}
        )
        assert hidden == {"customer": None}
        # and the client may become loyal: the points rule left with its plugin
        assert move(server, client, "loyal")["data"]["transitionCustomer"]["userErrors"] == []
    assert sql(disabled, "SELECT customer_id, points, tier FROM loyalty_account") == [
        {"customer_id": pk(client), "points": 120, "tier": "BRONZE"}
    ]
    assert sql(disabled, "SELECT name, kind FROM customer WHERE kind = {}", "distributor") == [
        {"name": "Iberia Parts", "kind": "distributor"}
    ]

    # Enabled again: everything it wrote is back in view.
    with live_server(settings) as server:
        assert listed(server) == [
            ("Ana Shop", "CLIENT"),
            ("Bruno Bikes", "CLIENT"),
            ("Iberia Parts", "DISTRIBUTOR"),
        ]
        account = server.gql(
            "query($id: ID!) { loyaltyAccount(customerId: $id) { points tier } }",
            {"id": client["id"]},
        )
        assert account == {"loyaltyAccount": {"points": 120, "tier": "BRONZE"}}
        back = server.gql(
            "query($id: ID!) { customer(id: $id) { ... on Distributor { name territory stage } } }",
            {"id": distributor["id"]},
        )
        assert back == {
            "customer": {"name": "Iberia Parts", "territory": "ES", "stage": "applicant"}
        }


def test_a_plugin_failing_at_run_time_yields_a_clean_error(database_url: str) -> None:
    settings = settings_for(database_url, plugins=(BROKEN,))

    def counts() -> tuple[int, int, int]:
        row = sql(
            settings,
            "SELECT (SELECT COUNT(*) FROM customer) AS c, (SELECT COUNT(*) FROM stage_change) AS s, "
            "(SELECT COUNT(*) FROM event) AS e",
        )[0]
        return row["c"], row["s"], row["e"]

    with live_server(settings) as server:
        before = counts()
        body = server.post(
            """mutation { createCustomer(input: {kind: CLIENT, name: "boom shop"}) {
                 customer { id } userErrors { message } } }"""
        )
        [error] = body["errors"]
        assert error["extensions"] == {"code": "PLUGIN_ERROR", "plugin": BROKEN}
        assert error["message"] == (
            f"plugin '{BROKEN}' failed in crmgraph_validate_customer: "
            "RuntimeError: validator exploded"
        )
        assert body["data"] is None
        assert counts() == before

        # the server keeps serving, the same plugin included
        late = create(server, "CLIENT", "late boom")
        after_create = counts()
        assert after_create == (before[0] + 1, before[1] + 1, before[2] + 1)
        body = move(server, late, "engaged")
        [error] = body["errors"]
        assert error["extensions"]["code"] == "PLUGIN_ERROR"
        assert "crmgraph_after_transition" in error["message"]
        assert BROKEN in error["message"]
        # the stage, its history row and the outbox event all rolled back
        assert counts() == after_create
        stage = server.gql(
            "query($id: ID!) { customer(id: $id) { stage version } }", {"id": late["id"]}
        )
        assert stage == {"customer": {"stage": "interest", "version": 1}}
        assert create(server, "CLIENT", "calm shop")["version"] == 1


def test_a_clashing_type_name_fails_start_up_naming_the_plugin(tmp_path: Any) -> None:
    settings = settings_for(
        f"sqlite:///{tmp_path / 'x.sqlite'}", plugins=("tests.plugins_for_tests.clashing_type",)
    )
    with pytest.raises(PluginError) as caught:
        Catalog.from_plugin_manager(make_plugin_manager(settings))
    assert caught.value.plugin == "tests.plugins_for_tests.clashing_type"
    assert "'Client'" in str(caught.value)
    assert "crmgraph.plugins.client" in str(caught.value)


def test_a_clashing_query_field_fails_start_up_naming_the_plugin(tmp_path: Any) -> None:
    settings = settings_for(
        f"sqlite:///{tmp_path / 'x.sqlite'}", plugins=("tests.plugins_for_tests.clashing_field",)
    )
    with pytest.raises(PluginError) as caught:
        create_app(settings)
    assert caught.value.plugin == "tests.plugins_for_tests.clashing_field"
    assert "Query.customers is already defined by 'crmgraph core'" in str(caught.value)
