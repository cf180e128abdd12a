"""The plugin manager factory and the catalog of what plugins declared.

A factory, not a module-global manager: every app (and every test) gets its
own, so what one test registers never leaks into another.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pluggy

from crmgraph import core_fields, hookspecs
from crmgraph.customer_types import (
    KEY_PATTERN,
    CustomerType,
    RelationshipKind,
    descriptor_problems,
)
from crmgraph.plugin_errors import PluginError
from crmgraph.settings import Settings

if TYPE_CHECKING:
    from crmgraph.extension_points import Metric, Permission

DEFAULT_PLUGINS: tuple[str, ...] = (
    "crmgraph.plugins.core_access",
    "crmgraph.plugins.client",
    "crmgraph.plugins.prospect",
    "crmgraph.plugins.guarantor",
    "crmgraph.plugins.beneficiary",
    "crmgraph.plugins.employee",
    "crmgraph.plugins.agenda",
    "crmgraph.plugins.competitor",
    "crmgraph.plugins.supplier",
    "crmgraph.plugins.teamwork",
    "crmgraph.plugins.dedupe",
    "crmgraph.plugins.privacy",
    "crmgraph.plugins.analytics",
    "crmgraph.plugins.imports",
    "crmgraph.plugins.webhooks",
)

# Channels every installation has; plugins add more through the hook.
CORE_CHANNELS: tuple[str, ...] = (
    "EMAIL",
    "PHONE",
    "MEETING",
    "CHAT",
    "WEB",
    "SOCIAL",
    "STORE",
    "LETTER",
    "OTHER",
)

# Every name of the Customer interface (its described fields, relations and
# the built-in features' fields) and of its row's storage: no plugin attribute
# may reuse them (crmgraph.core_fields).
CORE_CUSTOMER_FIELDS: frozenset[str] = core_fields.reserved_customer_names()


def make_plugin_manager(
    settings: Settings, extra_plugins: Iterable[ModuleType | object] = ()
) -> pluggy.PluginManager:
    pm = pluggy.PluginManager("crmgraph")
    pm.add_hookspecs(hookspecs)
    for name in settings.disabled_plugins:
        pm.set_blocked(name)
    for module_name in (*DEFAULT_PLUGINS, *settings.plugins):
        if pm.is_blocked(module_name) or pm.has_plugin(module_name):
            continue
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise PluginError(module_name, f"cannot be imported: {exc}") from exc
        pm.register(module, name=module_name)
    if settings.load_entry_points:
        try:
            pm.load_setuptools_entrypoints("crmgraph")
        except Exception as exc:  # a partner package that fails to import names itself
            raise PluginError(entry_point_name(exc), f"cannot be loaded: {exc!r}") from exc
    for plugin in extra_plugins:
        pm.register(plugin)
    pm.check_pending()
    return pm


def entry_point_name(exc: BaseException) -> str:
    """Best effort: the module an import failure came from."""
    name = getattr(exc, "name", None)
    return f"entry point ({name})" if name else "an entry point of group 'crmgraph'"


def startup_results(pm: pluggy.PluginManager, hook_name: str) -> list[tuple[str, Any]]:
    """Each implementation's answer to a start-up hook, in registration order
    (built-ins first, so a clash is blamed on the plugin that came later); one
    that raises stops start-up with an error naming its plugin."""
    results = []
    for impl in getattr(pm.hook, hook_name).get_hookimpls():
        try:
            results.append((impl.plugin_name, impl.function()))
        except Exception as exc:
            raise PluginError(impl.plugin_name, f"{hook_name} raised {exc!r}") from exc
    return results


@dataclass(frozen=True)
class RegisteredType:
    plugin: str
    descriptor: CustomerType


@dataclass(frozen=True)
class Catalog:
    """What the loaded plugins declare, validated and in a stable order (pluggy
    calls newest-registered first, so everything is sorted before use)."""

    plugins: tuple[str, ...]
    types: tuple[RegisteredType, ...]
    channels: tuple[str, ...]
    relationship_kinds: tuple[RelationshipKind, ...] = ()
    piccolo_apps: tuple[str, ...] = ()
    permissions: tuple[Permission, ...] = ()
    metrics: tuple[Metric, ...] = ()
    # permission key -> the plugin that declared it
    permission_plugins: Mapping[str, str] = field(default_factory=dict)

    def permission_owner(self, key: str) -> str:
        return self.permission_plugins.get(key, "crmgraph")

    def relationship_kind(self, key: str) -> RelationshipKind | None:
        return next((k for k in self.relationship_kinds if k.key == key), None)

    @property
    def customer_types(self) -> tuple[CustomerType, ...]:
        return tuple(t.descriptor for t in self.types)

    def customer_type(self, key: str) -> CustomerType | None:
        return next((t.descriptor for t in self.types if t.descriptor.key == key), None)

    @classmethod
    def from_plugin_manager(cls, pm: pluggy.PluginManager) -> Catalog:
        types: list[RegisteredType] = []
        for plugin, declared in startup_results(pm, "crmgraph_customer_types"):
            for descriptor in declared or ():
                types.append(RegisteredType(plugin, descriptor))
        types.sort(key=lambda t: t.descriptor.key)
        _check_types(types)

        channels = set(CORE_CHANNELS)
        for plugin, declared in startup_results(pm, "crmgraph_interaction_channels"):
            for channel in declared or ():
                if not channel.isidentifier() or channel.upper() != channel:
                    raise PluginError(plugin, f"channel {channel!r} must be UPPER_CASE")
                channels.add(channel)
        # a blocked (disabled) name stays listed by pluggy with no module behind it
        plugins = tuple(sorted(name for name, plugin in pm.list_name_plugin() if plugin))
        kinds = _relationship_kinds(pm, {t.descriptor.key for t in types})
        for registered in types:
            for key in registered.descriptor.relationship_kinds:
                if key not in {k.key for k in kinds}:
                    raise PluginError(
                        registered.plugin,
                        f"customer type {registered.descriptor.key!r} takes part in "
                        f"relationship kind {key!r}, which no plugin declares",
                    )
        owners: dict[str, str] = {}
        permissions = _unique_keyed(pm, "crmgraph_permissions", "permission", owners)
        apps: list[str] = []
        for _, declared in startup_results(pm, "crmgraph_piccolo_apps"):
            apps.extend(declared or ())
        return cls(
            plugins=plugins,
            types=tuple(types),
            channels=tuple(sorted(channels)),
            relationship_kinds=kinds,
            piccolo_apps=tuple(sorted(set(apps))),
            permissions=tuple(permissions.values()),
            metrics=tuple(_unique_keyed(pm, "crmgraph_analytics_metrics", "metric").values()),
            permission_plugins={key: owners[key] for key in permissions},
        )


def _unique_keyed(
    pm: pluggy.PluginManager, hook_name: str, what: str, owners: dict[str, str] | None = None
) -> dict[str, Any]:
    """Everything a start-up hook returns by ``key``, sorted, each key claimed
    by one plugin only; ``owners`` (if given) receives key -> plugin."""
    found: dict[str, tuple[str, Any]] = {}
    for plugin, declared in startup_results(pm, hook_name):
        for item in declared or ():
            if item.key in found:
                raise PluginError(
                    plugin, f"{what} {item.key!r} is already declared by {found[item.key][0]!r}"
                )
            found[item.key] = (plugin, item)
    if owners is not None:
        owners.update({key: plugin for key, (plugin, _) in found.items()})
    return {key: item for key, (_, item) in sorted(found.items())}


def _relationship_kinds(
    pm: pluggy.PluginManager, type_keys: set[str]
) -> tuple[RelationshipKind, ...]:
    declared: dict[str, tuple[str, RelationshipKind]] = {}
    for plugin, returned in startup_results(pm, "crmgraph_relationship_kinds"):
        for kind in returned or ():
            if not KEY_PATTERN.match(kind.key):
                raise PluginError(plugin, f"relationship kind {kind.key!r} must be snake_case")
            if kind.key in declared:
                raise PluginError(
                    plugin,
                    f"relationship kind {kind.key!r} is already declared by "
                    f"{declared[kind.key][0]!r}",
                )
            for end in (*kind.from_kinds, *kind.to_kinds):
                if end not in type_keys:
                    raise PluginError(
                        plugin,
                        f"relationship kind {kind.key!r} names unknown customer type {end!r}",
                    )
            declared[kind.key] = (plugin, kind)
    return tuple(kind for _, kind in sorted(declared.values(), key=lambda pk: pk[1].key))


def _check_types(types: list[RegisteredType]) -> None:
    keys: dict[str, str] = {}
    names: dict[str, str] = {}
    for registered in types:
        d, plugin = registered.descriptor, registered.plugin
        problems = descriptor_problems(d, CORE_CUSTOMER_FIELDS)
        if problems:
            raise PluginError(plugin, f"customer type {d.key!r}: " + "; ".join(problems))
        if d.key in keys:
            raise PluginError(
                plugin, f"customer type key {d.key!r} is already declared by {keys[d.key]!r}"
            )
        # the type and the role type it brings (Customer.roles)
        for name in (d.graphql_name, d.role_graphql_name):
            if name in names or name in RESERVED_GRAPHQL_NAMES:
                owner = names.get(name, "crmgraph core")
                raise PluginError(
                    plugin, f"GraphQL type name {name!r} is already taken by {owner!r}"
                )
        keys[d.key] = plugin
        names[d.graphql_name] = names[d.role_graphql_name] = plugin
    if not types:
        raise PluginError("crmgraph", "no customer type is registered")


# Names the core schema uses itself; a plugin type may not take them.
RESERVED_GRAPHQL_NAMES: frozenset[str] = frozenset(
    {
        "Customer",
        "CustomerRole",
        "Node",
        "Contact",
        "Interaction",
        "Need",
        "Relationship",
        "StageChange",
        "Note",
        "Task",
        "TimelineItem",
        "Webhook",
        "WebhookDelivery",
        "WebhookAttempt",
        "User",
        "Query",
        "Mutation",
        "Subscription",
        "PageInfo",
        "UserError",
    }
)
