"""Start-up refuses broken plugins with a message naming the plugin."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import pytest

from crmgraph.customer_types import Attribute, Lifecycle, RelationshipKind, Stage, Transition
from crmgraph.hookspecs import hookimpl
from crmgraph.plugins.client import CLIENT
from crmgraph.registry import Catalog, PluginError, make_plugin_manager
from crmgraph.settings import Settings


def catalog_with(name: str, **hooks: object) -> Catalog:
    plugin = SimpleNamespace(**{k: hookimpl(v) for k, v in hooks.items()})
    pm = make_plugin_manager(Settings(load_entry_points=False))
    pm.register(plugin, name=name)
    return Catalog.from_plugin_manager(pm)


def types_hook(*types: object) -> object:
    def crmgraph_customer_types() -> list:
        return list(types)

    return crmgraph_customer_types


@pytest.mark.parametrize(
    ("descriptor", "message"),
    [
        (replace(CLIENT, key="vip"), "GraphQL type name 'Client' is already taken by 'crmgraph.plugins.client'"),
        (replace(CLIENT, graphql_name="Vip"), "customer type key 'client' is already declared"),
        (replace(CLIENT, key="vip", graphql_name="Customer"), "'Customer' is already taken"),
        (replace(CLIENT, key="vip", graphql_name="Vip",
                 attributes=(Attribute("email", str),)), "clashes with a core Customer field"),
        (replace(CLIENT, key="vip", graphql_name="Vip",
                 lifecycle=Lifecycle(stages=(Stage("a", "A", CLIENT.lifecycle.stages[0].phase),),
                                     initial="a", transitions=(Transition("a", "zzz"),))),
         "names unknown stage 'zzz'"),
        (replace(CLIENT, key="vip", graphql_name="Vip",
                 lifecycle=replace(CLIENT.lifecycle, initial="nowhere")), "initial stage 'nowhere'"),
        (replace(CLIENT, key="Bad Key", graphql_name="Vip"), "must be snake_case"),
    ],
)  # fmt: skip
def test_broken_descriptor_names_the_plugin(descriptor: object, message: str) -> None:
    with pytest.raises(PluginError) as caught:
        catalog_with("acme_plugin", crmgraph_customer_types=types_hook(descriptor))
    assert "plugin 'acme_plugin'" in str(caught.value)
    assert message in str(caught.value)


def test_relationship_kind_checks() -> None:
    def dup() -> list:
        return [RelationshipKind("refers", "Again")]

    with pytest.raises(PluginError, match="'refers' is already declared by"):
        catalog_with("dup_plugin", crmgraph_relationship_kinds=dup)

    def unknown_end() -> list:
        return [RelationshipKind("owns", "Owns", to_kinds=("spaceship",))]

    with pytest.raises(PluginError, match="unknown customer type 'spaceship'"):
        catalog_with("space_plugin", crmgraph_relationship_kinds=unknown_end)


def test_bad_channel_and_disabled_plugin() -> None:
    def channels() -> list:
        return ["whatsapp"]

    with pytest.raises(PluginError, match=r"plugin 'chat_plugin'.*UPPER_CASE"):
        catalog_with("chat_plugin", crmgraph_interaction_channels=channels)
    settings = Settings(load_entry_points=False, disabled_plugins=("crmgraph.plugins.supplier",))
    catalog = Catalog.from_plugin_manager(make_plugin_manager(settings))
    assert "supplier" not in {t.key for t in catalog.customer_types}
    assert "supplies" not in {k.key for k in catalog.relationship_kinds}


def test_plugins_named_in_settings_must_import() -> None:
    with pytest.raises(PluginError, match=r"plugin 'no\.such\.module': cannot be imported"):
        make_plugin_manager(Settings(load_entry_points=False, plugins=("no.such.module",)))
