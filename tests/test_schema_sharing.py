"""The schema built once per plugin set (crmgraph.schema.build_cache): apps
that load the same plugins share it and still run their own settings' limits
and counters; another plugin list, a disabled plugin, another plugin object or
a plugin whose declarations changed gets a schema of its own. A wrong share
would serve one app's fields (or another's limits) from another, silently."""

from __future__ import annotations

from typing import Any

import strawberry

from crmgraph.extension_points import GraphQLContribution
from crmgraph.hookspecs import hookimpl
from crmgraph.registry import Catalog, make_plugin_manager
from crmgraph.schema.build_cache import shared_schema
from crmgraph.settings import Settings
from crmgraph.testing import LiveServer, live_server, settings_for

MIX = "tests.plugins_for_tests.compiled_mix"
DEEP = "{ customers(first: 1) { edges { node { id } } } }"


def graphql_schema(server: LiveServer) -> Any:
    return server.run(_schema_of)


async def _schema_of(state: Any) -> Any:
    return state.schema


def test_apps_of_one_plugin_set_share_a_schema_and_keep_their_limits(database_url: str) -> None:
    strict = settings_for(database_url, max_query_depth=2, compiled_reads=False)
    loose = settings_for(database_url, expose_sql_count=False, compiled_reads=False)
    with live_server(strict) as a, live_server(loose) as b:
        schema_a, schema_b = graphql_schema(a), graphql_schema(b)
        assert schema_a._schema is schema_b._schema  # converted once
        assert schema_a is not schema_b  # each app's own extensions
        refused = a.post(DEEP)
        assert refused["data"] is None
        assert refused["errors"][0]["extensions"]["code"] == "QUERY_TOO_DEEP"
        answered = b.post(DEEP)
        assert answered["data"] == {"customers": {"edges": []}}
        assert "sqlStatements" not in answered.get("extensions", {})
        assert a.post("{ __typename }")["extensions"]["sqlStatements"] == 0


def test_another_plugin_list_gets_its_own_schema(database_url: str) -> None:
    with (
        live_server(settings_for(database_url, plugins=(MIX,))) as mixed,
        live_server(settings_for(database_url)) as plain,
    ):
        assert graphql_schema(mixed)._schema is not graphql_schema(plain)._schema
        refused = mixed.post("{ mixRefusal }")
        assert refused["errors"][0]["extensions"]["code"] == "MIX"
        unknown = plain.post("{ mixRefusal }")
        assert "Cannot query field 'mixRefusal'" in unknown["errors"][0]["message"]


def test_a_disabled_plugin_gets_its_own_schema(database_url: str) -> None:
    without_teams = settings_for(database_url, disabled_plugins=("crmgraph.plugins.teamwork",))
    roots = '{ __type(name: "Query") { fields { name } } }'
    with live_server(without_teams) as off, live_server(settings_for(database_url)) as on:
        off_fields = {f["name"] for f in off.gql(roots)["__type"]["fields"]}
        on_fields = {f["name"] for f in on.gql(roots)["__type"]["fields"]}
        assert "myTasks" in on_fields and "myTasks" not in off_fields


def root_with(name: str, answer: str) -> type:
    """A root type whose one field, ``name``, answers ``answer``."""

    def resolve() -> str:
        return answer

    return strawberry.type(type(f"Root_{name}", (), {name: strawberry.field(resolver=resolve)}))


class Named:
    """A plugin object adding ``Query.<name>`` (answering ``answer``) and the
    interaction channel ``<NAME>``."""

    def __init__(self, name: str, answer: str) -> None:
        self.name, self.answer = name, answer

    @hookimpl
    def crmgraph_graphql(self, types: Any) -> GraphQLContribution:
        return GraphQLContribution(query=[root_with(self.name, self.answer)])

    @hookimpl
    def crmgraph_interaction_channels(self) -> list[str]:
        return [self.name.upper()]


def built(*plugins: object) -> Any:
    pm = make_plugin_manager(Settings(load_entry_points=False), extra_plugins=plugins)
    return shared_schema(Catalog.from_plugin_manager(pm), pm)


def answer(schema: Any, field: str) -> Any:
    return schema.execute_sync(f"{{ {field} }}").data


def test_plugin_objects_are_told_apart_by_identity() -> None:
    one, other = Named("probe", "one"), Named("probe", "other")
    first, _ = built(one)
    again, _ = built(one)
    assert first._schema is again._schema
    second, _ = built(other)
    assert second._schema is not first._schema
    assert answer(first, "probe") == {"probe": "one"}
    assert answer(second, "probe") == {"probe": "other"}


def test_a_changed_catalog_is_built_again() -> None:
    plugin = Named("drift", "same")
    before, types_before = built(plugin)
    plugin.name = "moved"  # the same object now declares another channel and field
    after, types_after = built(plugin)
    assert after._schema is not before._schema
    assert "MOVED" in types_after.channel_enum.__members__
    assert "MOVED" not in types_before.channel_enum.__members__
    assert answer(after, "moved") == {"moved": "same"}


def test_a_replaced_hook_implementation_is_built_again() -> None:
    plugin = Named("swap", "before")
    first, _ = built(plugin)

    class Swapped(Named):
        @hookimpl
        def crmgraph_graphql(self, types: Any) -> GraphQLContribution:
            return GraphQLContribution(query=[root_with("swap", "after")])

    plugin.__class__ = Swapped  # the same object, answering with another method
    second, _ = built(plugin)
    assert answer(first, "swap") == {"swap": "before"}
    assert answer(second, "swap") == {"swap": "after"}
