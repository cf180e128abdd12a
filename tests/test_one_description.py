"""One description per field (crmgraph.core_fields): for every core type, the
fields the resolver path exposes, the fields the compiled path can answer,
the SDL's descriptions and nullability, the customer row the readers select
and the names a plugin attribute may not take are exactly the description's.

The last test sends one query selecting every described field of every core
type to a server with compiled reads and one without (the seeded pair of
tests/test_compiled_reads.py): the compiled server answers it in one
statement, and both answers are the same.
"""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace
from typing import Any

import graphql
import pytest

from crmgraph import core_fields
from crmgraph.compiled import fields as compiled_fields
from crmgraph.compiled.fields import FieldTable
from crmgraph.core_fields import CORE_TYPES, Value
from crmgraph.customer_types import Attribute
from crmgraph.db import queries
from crmgraph.hookspecs import hookimpl
from crmgraph.plugins.client import CLIENT
from crmgraph.registry import CORE_CUSTOMER_FIELDS, Catalog, PluginError, make_plugin_manager
from crmgraph.schema import core_types as core
from crmgraph.schema.build import SchemaTypes, build_schema
from crmgraph.schema.needs import Need
from crmgraph.settings import Settings
from tests.test_compiled_reads import Pair, pair  # noqa: F401 (the seeded servers)


@pytest.fixture(scope="module")
def built() -> tuple[Catalog, Any, SchemaTypes]:
    pm = make_plugin_manager(Settings(load_entry_points=False))
    catalog = Catalog.from_plugin_manager(pm)
    schema, types = build_schema(catalog, pm)
    return catalog, schema, types


def strawberry_types(types: SchemaTypes) -> dict[str, type]:
    return {
        "Customer": types.customer_interface,
        "Contact": core.Contact,
        "Interaction": types.interaction_cls,
        "Need": Need,
        "StageChange": core.StageChange,
        "User": core.User,
        "Team": core.Team,
    }


def compiled_types(catalog: Catalog) -> dict[str, dict[str, Any]]:
    table = FieldTable.from_catalog(catalog)
    return {
        "Customer": table.customer,
        "Contact": compiled_fields.CONTACT,
        "Interaction": table.interaction,
        "Need": compiled_fields.NEED,
        "StageChange": compiled_fields.STAGE_CHANGE,
        "User": compiled_fields.USER,
        "Team": compiled_fields.TEAM,
    }


def graphql_names(type_name: str) -> list[str]:
    return [f.graphql_name for f in CORE_TYPES[type_name]]


@pytest.mark.parametrize("type_name", sorted(CORE_TYPES))
def test_resolver_path_exposes_exactly_the_described_columns(
    built: tuple[Catalog, Any, SchemaTypes], type_name: str
) -> None:
    """The strawberry type's fields without a resolver are the description's,
    in its order; the concrete customer types add only their attributes."""
    catalog, _, types = built
    cls = strawberry_types(types)[type_name]
    definition = cls.__strawberry_definition__  # type: ignore[attr-defined]
    columns = [f.python_name for f in definition.fields if f.base_resolver is None]
    assert columns == [f.name for f in CORE_TYPES[type_name]]
    if type_name == "Customer":
        for descriptor in catalog.customer_types:
            concrete = types.customer_classes[descriptor.key].__strawberry_definition__  # type: ignore[attr-defined]
            own = [f.python_name for f in concrete.fields if f.base_resolver is None]
            assert own == columns + [a.name for a in descriptor.attributes]


@pytest.mark.parametrize("type_name", sorted(CORE_TYPES))
def test_compiled_path_answers_exactly_the_described_columns(
    built: tuple[Catalog, Any, SchemaTypes], type_name: str
) -> None:
    catalog, _, _ = built
    assert list(compiled_types(catalog)[type_name]) == graphql_names(type_name)


@pytest.mark.parametrize("type_name", sorted(CORE_TYPES))
def test_sdl_says_what_the_description_says(
    built: tuple[Catalog, Any, SchemaTypes], type_name: str
) -> None:
    _, schema, _ = built
    parsed = graphql.build_schema(schema.as_str())
    found = parsed.get_type(type_name)
    assert isinstance(found, graphql.GraphQLObjectType | graphql.GraphQLInterfaceType)
    for field in CORE_TYPES[type_name]:
        sdl_field = found.fields[field.graphql_name]
        assert sdl_field.description == field.description, (type_name, field.name)
        nullable = not isinstance(sdl_field.type, graphql.GraphQLNonNull)
        assert nullable == field.nullable, (type_name, field.name)
        named = graphql.get_named_type(sdl_field.type)
        if field.value is Value.ENUM:
            assert named.name == field.of, (type_name, field.name)
        elif field.value is Value.ID:
            assert named.name == "ID", (type_name, field.name)


def test_the_customer_interface_is_its_columns_relations_and_feature_fields(
    built: tuple[Catalog, Any, SchemaTypes],
) -> None:
    """Every Customer field is named in crmgraph.core_fields, so the names an
    attribute may not take cannot drift from the interface again."""
    _, _, types = built
    definition = types.customer_interface.__strawberry_definition__  # type: ignore[attr-defined]
    every = {f.python_name for f in definition.fields}
    described = {
        *(f.name for f in core_fields.CUSTOMER),
        *core_fields.CUSTOMER_RELATIONS,
        *core_fields.CUSTOMER_FEATURE_FIELDS,
    }
    assert every == described
    assert described | set(core_fields.CUSTOMER_STORAGE_NAMES) == CORE_CUSTOMER_FIELDS


def test_the_customer_row_holds_every_described_column() -> None:
    columns = core_fields.row_columns(core_fields.CUSTOMER)
    assert set(queries.CUSTOMER_FIELDS) == {*columns, *queries.CUSTOMER_ROW_EXTRAS}
    assert set(compiled_fields.ROW_COLUMNS) == set(queries.CUSTOMER_FIELDS)
    timestamps = {f.row_key for f in core_fields.CUSTOMER if f.value is Value.TIMESTAMP}
    assert set(compiled_fields.ROW_TIMESTAMPS) == timestamps


@pytest.mark.parametrize("name", ["team", "notes", "knowledge", "erased_at", "stage_label"])
def test_an_attribute_may_not_take_a_customer_field_name(name: str) -> None:
    """Names the old hand-kept list missed (team, the features' fields, …)."""
    vip = replace(CLIENT, key="vip", graphql_name="Vip", attributes=(Attribute(name, str),))
    plugin = SimpleNamespace(crmgraph_customer_types=hookimpl(lambda: [vip]))
    pm = make_plugin_manager(Settings(load_entry_points=False))
    pm.register(plugin, name="acme_plugin")
    with pytest.raises(PluginError, match="clashes with a core Customer field"):
        Catalog.from_plugin_manager(pm)


def selection(type_name: str) -> str:
    return " ".join(graphql_names(type_name))


def every_described_field() -> str:
    return (
        "{ customers(first: 50, filter: {deleted: ALL}) { nodes { "
        f"{selection('Customer')} owner {{ {selection('User')} }} team {{ {selection('Team')} }} "
        f"contacts {{ {selection('Contact')} }} needs {{ {selection('Need')} }} "
        f"stageHistory {{ {selection('StageChange')} }} "
        f"interactions(first: 20) {{ nodes {{ {selection('Interaction')} }} }} "
        "} } }"
    )


def test_both_paths_answer_every_described_field_alike(pair: Pair) -> None:  # noqa: F811
    body = pair.same(every_described_field())
    assert "errors" not in body, body
    customers = body["data"]["customers"]["nodes"]
    assert customers
    assert all(set(graphql_names("Customer")) <= set(c) for c in customers)
    interactions = [i for c in customers for i in c["interactions"]["nodes"]]
    assert interactions and all(set(i) == set(graphql_names("Interaction")) for i in interactions)
