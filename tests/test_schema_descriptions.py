"""Every type, field, argument, input field and enum value of the SDL has a
description, with the built-ins alone and with the loyalty plugin loaded:
the generated reference and GraphiQL's docs are all a reader has.

Counted on the SDL ``crmgraph schema`` prints (the same schema object the
server serves), read back with graphql-core."""

from __future__ import annotations

from collections.abc import Iterator

import graphql
import pytest

from crmgraph.registry import Catalog, make_plugin_manager
from crmgraph.schema.build import build_schema
from crmgraph.settings import Settings

PLUGIN_SETS = {"built-ins": (), "loyalty": ("crmgraph_loyalty.plugin",)}


def sdl(plugins: tuple[str, ...]) -> str:
    pm = make_plugin_manager(Settings(load_entry_points=False, plugins=plugins))
    schema, _ = build_schema(Catalog.from_plugin_manager(pm), pm)
    return schema.as_str()


def undescribed(schema: graphql.GraphQLSchema) -> Iterator[str]:
    """The elements without a description, as ``Type``, ``Type.field``,
    ``Type.field(arg)`` or ``Enum.VALUE``."""
    for name, type_ in schema.type_map.items():
        if name.startswith("__") or graphql.is_specified_scalar_type(type_):
            continue
        if not type_.description:
            yield name
        if isinstance(type_, (graphql.GraphQLObjectType, graphql.GraphQLInterfaceType)):
            for field_name, field in type_.fields.items():
                if not field.description:
                    yield f"{name}.{field_name}"
                yield from (
                    f"{name}.{field_name}({arg})"
                    for arg, value in field.args.items()
                    if not value.description
                )
        elif isinstance(type_, graphql.GraphQLInputObjectType):
            yield from (f"{name}.{f}" for f, value in type_.fields.items() if not value.description)
        elif isinstance(type_, graphql.GraphQLEnumType):
            yield from (f"{name}.{v}" for v, value in type_.values.items() if not value.description)


@pytest.mark.parametrize("plugins", PLUGIN_SETS.values(), ids=PLUGIN_SETS.keys())
def test_every_schema_element_is_described(plugins: tuple[str, ...]) -> None:
    missing = list(undescribed(graphql.build_schema(sdl(plugins))))
    assert not missing, f"{len(missing)} SDL elements without a description: {missing}"


def test_the_count_sees_a_missing_description() -> None:
    schema = graphql.build_schema('"""A thing."""\ntype Query { a(b: Int): E }\nenum E { X }')
    assert list(undescribed(schema)) == ["Query.a", "Query.a(b)", "E", "E.X"]
