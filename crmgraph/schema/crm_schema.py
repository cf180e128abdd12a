"""The strawberry Schema class crmgraph serves, and the merging of the core's
root types with those plugins contribute through ``crmgraph_graphql``."""

from collections.abc import Collection
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.schema.exceptions import InvalidOperationTypeError
from strawberry.tools import merge_types
from strawberry.types.base import StrawberryObjectDefinition
from strawberry.types.field import StrawberryField
from strawberry.types.graphql import OperationType

from crmgraph.extension_points import GraphQLContribution
from crmgraph.registry import PluginError
from crmgraph.schema.contributions import in_one_class_order
from crmgraph.schema.dry_run import DryRunExecutor, DryRunPreview, add_dry_run_fields
from crmgraph.schema.error_masking import MaskUnexpectedErrors, is_unexpected
from crmgraph.schema.extensions import CachedHooksRunner
from crmgraph.validation import camel

# the metadata key naming the plugin a core type's field belongs to
OWNING_PLUGIN = "plugin"


class SubscriptionOverHTTP(InvalidOperationTypeError):
    """A subscription sent as a plain HTTP request, which can carry one answer,
    not a stream: the client is told where subscriptions are served."""

    def __init__(self) -> None:
        super().__init__(OperationType.SUBSCRIPTION)

    def as_http_error_reason(self, method: str) -> str:
        return (
            f"subscriptions are not served over HTTP {method}: open a WebSocket to "
            "/graphql with the graphql-transport-ws protocol"
        )


class CRMSchema(strawberry.Schema):
    """Logs only real faults: a GraphQLError raised on purpose (bad page size,
    bad cursor) or a query that fails validation is the client's business.

    A field of a core type that belongs to a built-in feature names its
    plugin in its metadata (``{OWNING_PLUGIN: "crmgraph.plugins.teamwork"}``):
    it is left out while that plugin is not among ``plugins`` (None: all)."""

    def __init__(self, *args: Any, plugins: Collection[str] | None = None, **kwargs: Any) -> None:
        # read by get_fields while strawberry converts the types, in super().__init__
        self.loaded_plugins = None if plugins is None else frozenset(plugins)
        # every mutation takes dryRun (crmgraph.schema.dry_run), whoever declared it
        kwargs["types"] = [*kwargs.get("types", ()), DryRunPreview]
        kwargs.setdefault("execution_context_class", DryRunExecutor)
        super().__init__(*args, **kwargs)
        add_dry_run_fields(self._schema)

    def get_fields(self, type_definition: StrawberryObjectDefinition) -> list[StrawberryField]:
        fields = type_definition.fields
        if self.loaded_plugins is None:
            return fields
        return [
            f for f in fields if f.metadata.get(OWNING_PLUGIN, None) in (None, *self.loaded_plugins)
        ]

    async def execute(self, *args: Any, **kwargs: Any) -> Any:
        # Strawberry's HTTP view lets a subscription through POST, where its
        # resolver, an async generator, can only end as a masked internal error.
        allowed = kwargs.get("allowed_operation_types")
        if allowed is not None and OperationType.SUBSCRIPTION in allowed:
            kwargs["allowed_operation_types"] = set(allowed) - {OperationType.SUBSCRIPTION}
            try:
                return await super().execute(*args, **kwargs)
            except InvalidOperationTypeError as exc:
                if exc.operation_type is OperationType.SUBSCRIPTION:
                    raise SubscriptionOverHTTP() from exc
                raise
        return await super().execute(*args, **kwargs)

    def create_extensions_runner(
        self, execution_context: Any, extensions: list[Any]
    ) -> CachedHooksRunner:
        return CachedHooksRunner(execution_context=execution_context, extensions=extensions)

    def process_errors(self, errors: list[GraphQLError], execution_context: Any = None) -> None:
        if MaskUnexpectedErrors in self.extensions:
            return  # it logs each one itself, with the request id the client was given
        super().process_errors([e for e in errors if is_unexpected(e)], execution_context)


def root_field_names(cls: type) -> list[str]:
    definition = cls.__strawberry_definition__  # type: ignore[attr-defined]
    return [f.python_name for f in definition.fields]


def merge_roots(
    name: str,
    core_root: type | None,
    contributions: list[tuple[str, GraphQLContribution]],
    part: str,
) -> type | None:
    """One root type from the core's and every plugin's, refusing a field name
    two of them define (strawberry's merge_types only warns)."""
    parts: list[tuple[str, type]] = [("crmgraph core", core_root)] if core_root else []
    parts += [(plugin, cls) for plugin, c in contributions for cls in getattr(c, part)]
    if not parts:
        return None
    owners: dict[str, str] = {}
    for plugin, cls in parts:
        for field_name in root_field_names(cls):
            if field_name in owners:
                raise PluginError(
                    plugin,
                    f"{name}.{camel(field_name)} is already defined by {owners[field_name]!r}",
                )
            owners[field_name] = plugin
    if len(parts) == 1:
        root = parts[0][1]
    else:
        classes = tuple(cls for _, cls in parts)
        root = in_one_class_order(merge_types(name, classes), classes)
    # the merged root is a new class: its description is given here, once
    root.__strawberry_definition__.description = ROOT_DESCRIPTIONS[name]
    describe_inputs(root)
    return root


MUTATION_INPUT = "What to write: the fields of its input type, each described there."


def describe_inputs(root: type) -> None:
    """Every mutation takes one argument, ``input``: described once here, for
    the core's mutations and the plugins' alike (one that has its own keeps it)."""
    for field in root.__strawberry_definition__.fields:
        for argument in field.arguments:
            if argument.python_name == "input" and not argument.description:
                argument.description = MUTATION_INPUT


ROOT_DESCRIPTIONS = {
    "Query": "Every read: customers and their records, analytics, duplicates, the caller.",
    "Mutation": "Every write. Each takes one `input` and answers a payload whose "
    "`userErrors` lists what it refused (an empty list: it was done).",
    "Subscription": "Live events over WebSocket (graphql-transport-ws on /graphql).",
}
