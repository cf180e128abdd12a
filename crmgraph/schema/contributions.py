"""What plugins add to the schema, in plugin order: the fields they add to
the ``Customer`` interface (``crmgraph_customer_fields``) and their roots'
fields, types and ``Node`` loaders (``crmgraph_graphql``). The built-in
features (teamwork, dedupe, privacy, analytics, imports, webhooks) come in
through these hooks exactly as a partner's plugin does.

Plugin order: the built-in plugins in the order ``DEFAULT_PLUGINS`` lists
them, then every other plugin by name. A root type is merged as one class
body holding every part's fields, the core's first, would be: strawberry
lists the fields declared as class attributes (``x: T =
strawberry.field(...)``) before those defined as methods, and so does the
merge; the ``Customer`` interface follows the same rule
(:class:`~crmgraph.extension_points.CustomerField`). That keeps the SDL's
field order what it was when the features were written into the core.
"""

import copy
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

import pluggy
from strawberry.types.info import Info

from crmgraph.extension_points import CustomerFieldTypes, GraphQLContribution, NodeLoader
from crmgraph.registry import DEFAULT_PLUGINS, Catalog, PluginError
from crmgraph.schema.customers import InterfaceField
from crmgraph.schema.node import parent_visible
from crmgraph.validation import camel

CORE = "crmgraph core"


def plugin_order(impls: Iterable[Any]) -> list[Any]:
    """Hook implementations, built-in plugins first (in ``DEFAULT_PLUGINS``
    order), then the others by plugin name: the same order on every start."""
    rank = {name: position for position, name in enumerate(DEFAULT_PLUGINS)}
    return sorted(impls, key=lambda impl: (rank.get(impl.plugin_name, len(rank)), impl.plugin_name))


def field_names(strawberry_type: type) -> set[str]:
    """The (snake_case) names of a strawberry type's fields."""
    return {f.python_name for f in strawberry_type.__strawberry_definition__.fields}  # type: ignore[attr-defined]


def customer_fields(
    pm: pluggy.PluginManager,
    types: CustomerFieldTypes,
    catalog: Catalog,
    core_fields: Collection[str],
) -> list[InterfaceField]:
    """Every plugin's ``Customer`` fields, in plugin order; a name the core,
    another plugin or a customer type's attribute already uses fails start-up."""
    owners = dict.fromkeys(core_fields, CORE)
    for registered in catalog.types:
        for attr in registered.descriptor.attributes:
            owners.setdefault(attr.name, registered.plugin)
    found: list[InterfaceField] = []
    for impl in plugin_order(pm.hook.crmgraph_customer_fields.get_hookimpls()):
        try:
            returned = impl.function(types=types)
        except Exception as exc:
            raise PluginError(impl.plugin_name, f"crmgraph_customer_fields raised {exc!r}") from exc
        for extra in returned or ():
            if extra.name in owners:
                raise PluginError(
                    impl.plugin_name,
                    f"Customer.{camel(extra.name)} is already defined by {owners[extra.name]!r}",
                )
            owners[extra.name] = impl.plugin_name
            # a copy: strawberry fills in a field for the class it is put on,
            # and a plugin may hand back the same field object to every build
            found.append(InterfaceField(extra.name, extra.annotation, copy.copy(extra.field)))
    return found


def plugin_contributions(
    pm: pluggy.PluginManager, types: Any
) -> list[tuple[str, GraphQLContribution]]:
    """Every plugin's ``crmgraph_graphql`` answer, in plugin order."""
    found = []
    for impl in plugin_order(pm.hook.crmgraph_graphql.get_hookimpls()):
        try:
            contribution = impl.function(types=types)
        except Exception as exc:
            raise PluginError(impl.plugin_name, f"crmgraph_graphql raised {exc!r}") from exc
        if contribution is not None:
            found.append((impl.plugin_name, contribution))
    return found


def node_loaders(contributions: Sequence[tuple[str, GraphQLContribution]]) -> dict[str, NodeLoader]:
    """The plugins' ``Node`` loaders by global ID type name; a name two
    plugins load fails start-up."""
    loaders: dict[str, NodeLoader] = {}
    owners: dict[str, str] = {}
    for plugin, contribution in contributions:
        for type_name, loader in contribution.nodes.items():
            if type_name in owners:
                raise PluginError(
                    plugin, f"node type {type_name!r} is already loaded by {owners[type_name]!r}"
                )
            owners[type_name] = plugin
            loaders[type_name] = loader
    return loaders


def row_node(type_name: str, convert: Any) -> NodeLoader:
    """A ``Node`` loader for a record that hangs off a customer: its row (by
    the row loader), shown only if the caller may see that customer."""

    async def load(info: Info, pk: int) -> Any:
        row = await info.context.loaders.row.load((type_name, pk))
        if row is None or not await parent_visible(info, type_name, row):
            return None
        return convert(row)

    return load


def _declared_as_attribute(part: type, name: str) -> bool:
    # strawberry keeps in __annotations__ only the fields written as annotated
    # attributes; a method's return annotation is dropped once the type is made
    return any(name in vars(klass).get("__annotations__", {}) for klass in part.__mro__)


def in_one_class_order(merged: type, parts: Sequence[type]) -> type:
    """``merged`` (strawberry's merge of ``parts``) with its fields in the
    order one class body holding all of them would list: every part's
    attribute fields, then every part's methods, part by part."""
    attributes: list[str] = []
    methods: list[str] = []
    for part in parts:
        for f in part.__strawberry_definition__.fields:  # type: ignore[attr-defined]
            kind = attributes if _declared_as_attribute(part, f.python_name) else methods
            kind.append(f.python_name)
    position: Mapping[str, int] = {name: i for i, name in enumerate(attributes + methods)}
    definition = merged.__strawberry_definition__  # type: ignore[attr-defined]
    definition.fields.sort(key=lambda f: position[f.python_name])
    return merged
