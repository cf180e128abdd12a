"""Number attributes' bounds compare exactly, whichever of int, float and
Decimal the plugin wrote them in and the caller sends: ``max_value=0.3``
accepts 0.3 and refuses the next decimal above it, on every way a bound is
used: createCustomer/updateCustomer, a CSV import, the demo seed (which once
crashed on a Decimal bound), ``customerKinds`` and the fields' descriptions.
The type is tests/plugins_for_tests/bounded_type.py."""

from __future__ import annotations

import csv
import datetime
import io
import json
from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest

from crmgraph import validation
from crmgraph.customer_types import Attribute, CustomerType, descriptor_problems
from crmgraph.demo import plan_demo
from crmgraph.hookspecs import hookimpl
from crmgraph.registry import Catalog, PluginError, make_plugin_manager
from crmgraph.testing import LiveServer, live_server, settings_for
from tests.plugins_for_tests.bounded_type import LAB_SAMPLE

PLUGIN = "tests.plugins_for_tests.bounded_type"
# attribute -> (min_value, max_value): the type's bounds, kept exact
LAB_BOUNDS = {
    "ratio": (Decimal("0.1"), Decimal("0.3")),
    "concentration": (Decimal("0.1"), Decimal("0.3")),
    "share": (Decimal("0.1"), Decimal("0.3")),
    "batches": (Decimal("1.5"), Decimal(3)),
    "trace": (Decimal("1E-7"), None),
    "loss": (None, Decimal("0.333")),
}

# attribute -> (values at or inside its bounds, values just outside them)
ACCEPTED_AND_REFUSED: dict[str, tuple[list[Any], list[Any]]] = {
    "ratio": ([0.1, 0.3, 0.2], [0.09999999, 0.30000001, 0.1 + 0.2]),
    "concentration": (
        [Decimal("0.1"), Decimal("0.3"), Decimal("0.300")],
        [Decimal("0.0999"), Decimal("0.3000000001")],
    ),
    "share": ([Decimal("0.1"), Decimal("0.30")], [Decimal("0.09"), Decimal("0.31")]),
    "batches": ([2, 3], [1, 4]),
    "trace": ([Decimal("1E-7"), Decimal("0.0000001"), Decimal("5")], [Decimal("9.9E-8")]),
    "loss": ([0.333, -1000.0], [0.3331]),
}


def problems_of(name: str, value: Any) -> list[validation.Problem]:
    errors = validation.Errors()
    attr = LAB_SAMPLE.attribute(name)
    assert attr is not None
    validation.attribute_value(errors, name, attr, value)
    return errors.problems


@pytest.mark.parametrize("name", sorted(ACCEPTED_AND_REFUSED))
def test_values_at_a_bound_are_accepted_and_past_it_refused(name: str) -> None:
    accepted, refused = ACCEPTED_AND_REFUSED[name]
    for value in accepted:
        assert problems_of(name, value) == [], (name, value)
    for value in refused:
        assert [p.code for p in problems_of(name, value)] == ["OUT_OF_RANGE"], (name, value)


def test_bounds_are_kept_as_exact_decimals() -> None:
    bounds = {a.name: (a.min_value, a.max_value) for a in LAB_SAMPLE.attributes}
    assert bounds == LAB_BOUNDS
    (problem,) = problems_of("trace", Decimal("1E-8"))
    assert problem.message == "trace must be at least 0.0000001"
    (problem,) = problems_of("ratio", 0.31)
    assert problem.message == "ratio must be at most 0.3"


@pytest.mark.parametrize(
    ("attribute", "problem"),
    [
        (Attribute("a", float, min_value=float("nan")), "must be a finite"),
        (Attribute("a", Decimal, max_value=Decimal("Infinity")), "must be a finite"),
        (Attribute("a", int, min_value=True), "must be a finite"),  # type: ignore[arg-type]
        (Attribute("a", int, min_value="1"), "must be a finite"),  # type: ignore[arg-type]
        (Attribute("a", str, max_value=3), "only to number attributes"),
        (Attribute("a", float, min_value=0.3, max_value=Decimal("0.2")), "is above max_value"),
        (Attribute("a", int, min_value=1.2, max_value=1.8), "no whole number"),
    ],
)
def test_bad_bounds_are_refused_at_start_up(attribute: Attribute, problem: str) -> None:
    broken = replace(LAB_SAMPLE, attributes=(attribute,))
    assert any(problem in p for p in descriptor_problems(broken, ())), problem
    assert descriptor_problems(LAB_SAMPLE, ()) == []


def test_demo_values_keep_within_the_bounds() -> None:
    """The demo seed plans values for every bound kind (it crashed on a
    Decimal bound) and every one passes the API's own validation."""
    settings = settings_for("sqlite:///unused.sqlite", plugins=(PLUGIN,))
    catalog = Catalog.from_plugin_manager(make_plugin_manager(settings))
    now = datetime.datetime(2026, 6, 1, tzinfo=datetime.UTC)
    plan = plan_demo(catalog, 600, 3, now)
    samples = [customer for customer in plan.customers if customer.kind == "lab_sample"]
    assert len(samples) >= 20
    seen: dict[str, int] = {}
    for customer in samples:
        values = LAB_SAMPLE.decode_attributes(dict(customer.attributes))
        for name, value in values.items():
            if value is not None:
                seen[name] = seen.get(name, 0) + 1
                assert problems_of(name, value) == [], (name, value)
    assert set(seen) == set(ACCEPTED_AND_REFUSED)


def test_a_plugin_with_bad_bounds_fails_start_up() -> None:
    settings = settings_for("sqlite:///unused.sqlite", plugins=(PLUGIN,))

    bad = Attribute("level", float, min_value=1, max_value=0.5)
    broken = replace(LAB_SAMPLE, key="broken", graphql_name="Broken", attributes=(bad,))

    class BrokenBounds:
        @hookimpl
        def crmgraph_customer_types(self) -> list[CustomerType]:
            return [broken]

    manager = make_plugin_manager(settings, extra_plugins=(BrokenBounds(),))
    with pytest.raises(PluginError, match=r"min_value 1 is above max_value 0\.5") as caught:
        Catalog.from_plugin_manager(manager)
    assert "customer type 'broken': attribute 'level'" in str(caught.value)


# -- through the API, on both engines --------------------------------------------


@pytest.fixture
def bounded_server(database_url: str) -> Iterator[LiveServer]:
    with live_server(settings_for(database_url, plugins=(PLUGIN,))) as running:
        yield running


CREATE = """mutation($input: CreateCustomerInput!) {
  createCustomer(input: $input) {
    customer { id version ... on LabSample { ratio concentration share batches trace loss } }
    userErrors { field message code }
  }
}"""
UPDATE = """mutation($input: UpdateCustomerInput!) {
  updateCustomer(input: $input) {
    customer { version ... on LabSample { ratio concentration } }
    userErrors { field message code }
  }
}"""
AT_THE_BOUNDS = {
    "ratio": 0.3,
    "concentration": "0.3",
    "share": "0.1",
    "batches": 2,
    "trace": "0.0000001",
    "loss": 0.333,
}


def create(server: LiveServer, name: str, attributes: dict[str, Any]) -> dict[str, Any]:
    return server.gql(
        CREATE, {"input": {"kind": "LAB_SAMPLE", "name": name, "labSample": attributes}}
    )["createCustomer"]


def test_the_api_accepts_values_at_the_bounds(bounded_server: LiveServer) -> None:
    made = create(bounded_server, "Exact Labs", AT_THE_BOUNDS)
    assert made["userErrors"] == []
    customer = made["customer"]
    assert customer["ratio"] == 0.3 and customer["loss"] == 0.333
    assert Decimal(customer["concentration"]) == Decimal("0.3")
    assert Decimal(customer["share"]) == Decimal("0.1")
    assert Decimal(customer["trace"]) == Decimal("1E-7") and customer["batches"] == 2

    past = create(
        bounded_server,
        "Past Labs",
        {"ratio": 0.30000001, "concentration": "0.0999", "batches": 1, "loss": 0.3331},
    )
    assert past["customer"] is None
    assert sorted((e["field"], e["code"], e["message"]) for e in past["userErrors"]) == [
        ("labSample.batches", "OUT_OF_RANGE", "labSample.batches must be at least 1.5"),
        ("labSample.concentration", "OUT_OF_RANGE", "labSample.concentration must be at least 0.1"),
        ("labSample.loss", "OUT_OF_RANGE", "labSample.loss must be at most 0.333"),
        ("labSample.ratio", "OUT_OF_RANGE", "labSample.ratio must be at most 0.3"),
    ]

    update = {"id": customer["id"], "expectedVersion": customer["version"]}
    moved = bounded_server.gql(
        UPDATE, {"input": {**update, "labSample": {"ratio": 0.1, "concentration": "0.1"}}}
    )["updateCustomer"]
    assert moved["userErrors"] == [] and moved["customer"]["ratio"] == 0.1
    update["expectedVersion"] = moved["customer"]["version"]
    refused = bounded_server.gql(UPDATE, {"input": {**update, "labSample": {"ratio": 0.0999}}})
    assert [e["code"] for e in refused["updateCustomer"]["userErrors"]] == ["OUT_OF_RANGE"]


def test_customer_kinds_and_descriptions_show_the_bounds(bounded_server: LiveServer) -> None:
    kinds = bounded_server.gql(
        "{ customerKinds { kind attributes { name type minValue maxValue } } }"
    )["customerKinds"]
    (lab,) = [k for k in kinds if k["kind"] == "LAB_SAMPLE"]
    bounds = {a["name"]: (a["minValue"], a["maxValue"]) for a in lab["attributes"]}
    parsed = {
        name: tuple(None if b is None else Decimal(b) for b in pair)
        for name, pair in bounds.items()
    }
    assert parsed == LAB_BOUNDS
    client = next(k for k in kinds if k["kind"] == "CLIENT")
    assert {a["name"]: a["minValue"] for a in client["attributes"]}["annualRevenue"] == "0"
    fields = bounded_server.gql('{ __type(name: "LabSample") { fields { name description } } }')[
        "__type"
    ]["fields"]
    described = {f["name"]: f["description"] for f in fields}
    assert described["ratio"] == "A float between float bounds. At least 0.1 and at most 0.3."
    assert described["trace"] == "At least a tenth of a millionth. At least 0.0000001."


IMPORT = """mutation($input: ImportCustomersInput!) {
  importCustomers(input: $input) {
    summary { read created rejected }
    rejectedRows { row reasons { field code } }
    userErrors { field message code }
  }
}"""


def test_an_import_accepts_values_at_the_bounds(bounded_server: LiveServer) -> None:
    """Import coercion reads the cells as the attribute's type and the same
    validation compares them with the bounds."""
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(["name", "kind", "ratio", "concentration", "share", "batches", "trace"])
    writer.writerow(["Exact Import", "lab_sample", "0.3", "0.3", "0.1", "3", "1e-7"])
    writer.writerow(["Low Import", "lab_sample", "0.1", "0.1", "0.3", "2", "0.0000001"])
    writer.writerow(["Past Import", "lab_sample", "0.3000001", "0.31", "0.1", "3.0", "1e-8"])
    operations = {"query": IMPORT, "variables": {"input": {"file": None}}}
    response = bounded_server.http.post(
        "/graphql",
        data={
            "operations": json.dumps(operations),
            "map": json.dumps({"0": ["variables.input.file"]}),
        },
        files={"0": ("samples.csv", text.getvalue().encode(), "text/csv")},
        headers={"Apollo-Require-Preflight": "true"},
    )
    assert response.status_code == 200, response.text
    payload = response.json()["data"]["importCustomers"]
    assert payload["userErrors"] == []
    assert payload["summary"] == {"read": 3, "created": 2, "rejected": 1}
    (rejected,) = payload["rejectedRows"]
    assert rejected["row"] == 4
    assert sorted(r["field"] for r in rejected["reasons"]) == [
        "labSample.concentration",
        "labSample.ratio",
        "labSample.trace",
    ]
    assert {r["code"] for r in rejected["reasons"]} == {"OUT_OF_RANGE"}
    found = bounded_server.gql(
        "{ customers(first: 5, filter: {kinds: [LAB_SAMPLE]}, orderBy: {field: NAME, direction: ASC})"
        " { nodes { name ... on LabSample { ratio concentration batches } } } }"
    )["customers"]["nodes"]
    assert [(n["name"], n["ratio"], n["batches"]) for n in found] == [
        ("Exact Import", 0.3, 3),
        ("Low Import", 0.1, 2),
    ]
