"""The public plugin API: ``crmgraph`` exports everything a plugin needs
(tests/test_plugin_imports.py checks that plugins import nothing else).

- Every name in ``crmgraph.__all__`` resolves; ``import crmgraph`` loads no
  other crmgraph module; the ``TYPE_CHECKING`` imports name the same modules
  as the lazy table.
- Plugin names in export and erasure keys are stable however a plugin is loaded.
- ``keyset_connection`` pages a query with cursors, over the app's database.
- The ``types`` the schema hooks receive carry what ``CoreGraphQLTypes`` and
  ``CustomerFieldTypes`` describe (``load_customer``, ``feature_columns``).
"""

from __future__ import annotations

import ast
import datetime
import inspect
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from graphql import GraphQLError

import crmgraph
from crmgraph.plugin_names import stable_plugin_name
from crmgraph.registry import Catalog, make_plugin_manager
from crmgraph.schema.build import build_schema
from crmgraph.settings import Settings
from crmgraph.testing import LiveServer

ROOT = Path(__file__).resolve().parent.parent


def test_every_public_name_resolves() -> None:
    assert set(crmgraph.__all__) == {*crmgraph._PUBLIC, "TEST_FIXTURES", "__version__"}
    assert len(crmgraph.__all__) == len(set(crmgraph.__all__))
    missing = [name for name in crmgraph.__all__ if getattr(crmgraph, name, None) is None]
    assert missing == []
    assert all(not name.startswith("_") for name in crmgraph._PUBLIC)
    # each comes from the module the table names (not an accidental re-export)
    for name, module in crmgraph._PUBLIC.items():
        assert getattr(sys.modules[module], name) is getattr(crmgraph, name), name
    with pytest.raises(AttributeError, match="no attribute 'not_a_name'"):
        _ = crmgraph.not_a_name  # type: ignore[attr-defined]
    assert crmgraph.TEST_FIXTURES == "crmgraph.testing"


def test_type_checkers_see_the_same_names() -> None:
    tree = ast.parse((ROOT / "crmgraph" / "__init__.py").read_text())
    block = next(
        node
        for node in tree.body
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING"
    )
    seen = {
        alias.name: stmt.module
        for stmt in block.body
        if isinstance(stmt, ast.ImportFrom)
        for alias in stmt.names
    }
    assert seen == crmgraph._PUBLIC


def python_says(code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_import_crmgraph_is_cheap_and_without_cycles() -> None:
    """Importing the package loads none of its modules; every public name,
    resolved first to last or last to first in a fresh interpreter, meets no
    import cycle (an order-dependent cycle shows in one of the two)."""
    loaded = "import sys, crmgraph; print(sorted(m for m in sys.modules if m.split('.')[0] == 'crmgraph'))"
    assert python_says(loaded) == "['crmgraph']"
    for order in ("crmgraph.__all__", "reversed(crmgraph.__all__)"):
        code = f"import crmgraph; print(len([getattr(crmgraph, n) for n in {order}]))"
        assert python_says(code) == str(len(crmgraph.__all__))


def test_plugin_names_in_export_keys_do_not_depend_on_how_it_was_loaded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from crmgraph_loyalty import plugin as loyalty

    by_module = make_plugin_manager(
        Settings(plugins=("crmgraph_loyalty.plugin",), load_entry_points=False)
    )
    by_entry_point = make_plugin_manager(Settings(load_entry_points=True))
    by_object = make_plugin_manager(Settings(load_entry_points=False), extra_plugins=[loyalty])
    registered = {
        "crmgraph_loyalty.plugin": by_module,
        "loyalty": by_entry_point,
        by_object.get_name(loyalty): by_object,
    }
    assert {stable_plugin_name(pm, name) for name, pm in registered.items()} == {"loyalty"}
    # without a declared PLUGIN_NAME: the name of the entry point loading the module
    monkeypatch.delattr(loyalty, "PLUGIN_NAME")
    assert stable_plugin_name(by_module, "crmgraph_loyalty.plugin") == "loyalty"
    # a module in no installed package keeps the name it was registered under
    guard = "tests.plugins_for_tests.privacy_guard"
    pm = make_plugin_manager(Settings(plugins=(guard,), load_entry_points=False))
    assert stable_plugin_name(pm, guard) == guard


class TypesRecorder:
    """A plugin keeping the ``types`` its two schema hooks receive."""

    def __init__(self) -> None:
        self.seen: dict[str, Any] = {}

    @crmgraph.hookimpl
    def crmgraph_customer_fields(self, types: crmgraph.CustomerFieldTypes) -> list[Any]:
        self.seen["customer_fields"] = types
        return []

    @crmgraph.hookimpl
    def crmgraph_graphql(self, types: crmgraph.CoreGraphQLTypes) -> crmgraph.GraphQLContribution:
        self.seen["graphql"] = types
        return crmgraph.GraphQLContribution()


def test_the_schema_hooks_types_carry_what_the_api_describes() -> None:
    recorder = TypesRecorder()
    pm = make_plugin_manager(Settings(load_entry_points=False), extra_plugins=[recorder])
    build_schema(Catalog.from_plugin_manager(pm), pm)
    described = crmgraph.CoreGraphQLTypes
    members = {*described.__annotations__, *(n for n in vars(described) if not n.startswith("_"))}
    graphql_types = recorder.seen["graphql"]
    assert "load_customer" in members
    assert [name for name in sorted(members) if not hasattr(graphql_types, name)] == []
    assert inspect.iscoroutinefunction(graphql_types.load_customer)
    columns = recorder.seen["customer_fields"].feature_columns
    assert list(columns) == ["erased_at"]
    assert isinstance(columns["erased_at"], crmgraph.CustomerField)
    assert columns["erased_at"].name == "erased_at" and columns["erased_at"].annotation is not None


@pytest.fixture
def crmgraph_plugins() -> list[str]:
    return []


def test_keyset_connection_pages_a_query(crmgraph_client: LiveServer) -> None:
    for n in range(5):
        crmgraph_client.gql(
            "mutation($i: CreateCustomerInput!) { createCustomer(input: $i) { customer { id } } }",
            {"i": {"kind": "CLIENT", "name": f"Page {n}"}},
        )

    def page(first: int | None, after: str | None, scope: str = "test:customers") -> Any:
        return crmgraph_client.run(
            lambda state: crmgraph.keyset_connection(
                state.db,
                select="SELECT id, name FROM customer",
                where="name LIKE {}",
                args=("Page %",),
                scope=scope,
                node=lambda row: row["name"],
                first=first,
                after=after,
            )
        )

    names, after, pages = [], None, 0
    while True:
        got = page(2, after)
        names += [edge.node for edge in got.edges]
        pages += 1
        assert got.page_info.has_previous_page is (after is not None)
        if not got.page_info.has_next_page:
            break
        after = got.page_info.end_cursor
    assert (names, pages) == ([f"Page {n}" for n in range(5)], 3)
    assert [e.node for e in page(None, None).edges] == names  # default page size 20
    assert page(0, None).edges == []
    with pytest.raises(GraphQLError, match="`first` must be between 0 and 100"):
        page(101, None)
    with pytest.raises(GraphQLError, match="not a cursor of this list"):
        page(2, page(2, None).page_info.end_cursor, scope="another:list")


def test_linked_parties_come_with_decoded_attributes(crmgraph_client: LiveServer) -> None:
    """``Facts.relationships`` (what guards see): the other party's typed
    attributes decoded as the customer's own are (a date, not its text), and
    ``direction`` one of the ``Direction`` values, equal to "out"/"in"."""
    create = "mutation($i: CreateCustomerInput!) { createCustomer(input: $i) { customer { id } } }"
    employee = crmgraph_client.gql(
        create, {"i": {"kind": "EMPLOYEE", "name": "Eva", "employee": {"hireDate": "2024-03-01"}}}
    )["createCustomer"]["customer"]["id"]
    client = crmgraph_client.gql(create, {"i": {"kind": "CLIENT", "name": "Acme"}})
    client_id = client["createCustomer"]["customer"]["id"]
    linked = crmgraph_client.gql(
        "mutation($i: LinkCustomersInput!) { linkCustomers(input: $i) { userErrors { code } } }",
        {"i": {"fromId": employee, "toId": client_id, "kind": "works_for"}},
    )
    assert linked["linkCustomers"]["userErrors"] == []

    def parties(global_id: str) -> Any:
        pk = crmgraph.decode_id(global_id, "Customer")[1]
        return crmgraph_client.run(
            lambda state: crmgraph.Facts(state.db, pk, state.catalog).relationships("works_for")
        )

    (seen_from_client,) = parties(client_id)
    assert (
        seen_from_client.direction is crmgraph.Direction.IN and seen_from_client.direction == "in"
    )
    assert seen_from_client.customer_kind == "employee"
    assert seen_from_client.customer_attributes["hire_date"] == datetime.date(2024, 3, 1)
    (seen_from_employee,) = parties(employee)
    assert seen_from_employee.direction == crmgraph.Direction.OUT == "out"
    assert seen_from_employee.name == "Acme"
