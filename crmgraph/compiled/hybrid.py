"""Per-subtree fallback: a compiled statement's answer completed by
graphql-core's executor where the selection holds fields computed in Python.

The statement builds every compilable part of the answer, and sends, with each
customer object whose selection holds :class:`~crmgraph.compiled.plan.Fallback`
fields, its row (``ROW_KEY``). That JSON is read into :class:`Partial` values
along the paths that lead to a fallback, and the operation is then executed as
usual with the root as a :class:`Partial`: :class:`HybridExecutor` copies
whatever the statement built and resolves only the fallback fields, with the
instance ``SchemaTypes.customer(row)`` gives as their parent (the object the
resolver path hands them). So errors, their paths, null propagation through
non-null fields, DataLoader batching across the page and extensions are the
executor's own, unchanged.
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

from graphql import (
    ExecutionResult,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLResolveInfo,
    is_abstract_type,
    is_object_type,
)
from graphql import execute as graphql_execute
from graphql.execution.collect_fields import FieldDetailsList
from graphql.execution.executor import to_nodes
from graphql.pyutils import Path, Undefined
from graphql.pyutils.undefined import UndefinedType
from strawberry.execution import optimized_is_awaitable
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.types import ExecutionContext

from crmgraph.compiled.fields import ROW_KEY, ROW_TIMESTAMPS
from crmgraph.compiled.plan import (
    Connection,
    CustomerById,
    Edges,
    Nodes,
    ObjectPlan,
    Plan,
    partial,
)
from crmgraph.db.queries import read_timestamp


@dataclass(slots=True)
class Partial:
    """An object of the answer, part built by the statement.

    ``data`` holds what the statement built, by response key: those in
    ``done`` are final, the others are :class:`Partial` values (or lists of
    them) still to complete; keys absent from ``data`` are resolved with
    ``source`` as their parent. ``type_name`` is the concrete type, for
    objects returned where an interface is expected."""

    data: dict[str, Any]
    done: frozenset[str]
    source: Any = None
    type_name: str | None = None


class HybridExecutor(StrawberryGraphQLCoreExecutionContext):
    """The executor strawberry runs, reading :class:`Partial` values."""

    def execute_field(
        self,
        parent_type: GraphQLObjectType,
        source: Any,
        field_details_list: FieldDetailsList,
        path: Path,
        position_context: Any,
    ) -> Any | UndefinedType:
        if type(source) is not Partial:
            return super().execute_field(
                parent_type, source, field_details_list, path, position_context
            )
        key = path.key
        if key in source.done:
            return source.data[key]
        if key not in source.data:  # computed in Python: its resolver, as usual
            return super().execute_field(
                parent_type, source.source, field_details_list, path, position_context
            )
        field_def = self.schema.get_field(parent_type, field_details_list[0].node.name.value)
        if field_def is None:
            return Undefined
        return_type = field_def.type
        info = self.build_resolve_info(field_def, to_nodes(field_details_list), parent_type, path)
        try:
            completed = self.complete_value(
                return_type, field_details_list, info, path, source.data[key], position_context
            )
        except Exception as raw_error:
            self.handle_field_error(raw_error, return_type, field_details_list, path)
            return None
        if self.is_awaitable(completed):
            return self._settle(completed, return_type, field_details_list, path)
        return completed

    async def _settle(
        self,
        completed: Awaitable[Any],
        return_type: GraphQLOutputType,
        field_details_list: FieldDetailsList,
        path: Path,
    ) -> Any:
        try:
            return await completed
        except Exception as raw_error:
            self.handle_field_error(raw_error, return_type, field_details_list, path)
            return None

    def complete_value(
        self,
        return_type: GraphQLOutputType,
        field_details_list: FieldDetailsList,
        info: GraphQLResolveInfo,
        path: Path,
        result: Any,
        position_context: Any,
    ) -> Any:
        if type(result) is Partial:
            runtime: Any = return_type
            if is_abstract_type(return_type):
                assert result.type_name is not None
                runtime = self.schema.get_type(result.type_name)
            if is_object_type(runtime):
                # no is_type_of: the statement built it for this very type
                return self.collect_and_execute_subfields(
                    runtime, field_details_list, path, result, position_context
                )
        return super().complete_value(
            return_type, field_details_list, info, path, result, position_context
        )


class Shaper:
    """The statement's JSON read into :class:`Partial` values along the
    plan's partial parts; customer rows become the resolver path's objects and
    prime the request's customer DataLoader, as the resolver path's lists do."""

    def __init__(self, context: Any) -> None:
        self.types = context.types
        self.loader = context.loaders.customer
        self.type_names = {
            kind: cls.__strawberry_definition__.name
            for kind, cls in self.types.customer_classes.items()
        }
        # per field list of the plan: its final keys (the plan is walked once
        # per object of a page otherwise)
        self._done: dict[int, frozenset[str]] = {}

    def root(self, plan: Plan, data: dict[str, Any], root_value: Any) -> Partial:
        return Partial(self.shape(plan.fields, data), self.done(plan.fields), root_value)

    def done(self, fields: list[tuple[str, Any]]) -> frozenset[str]:
        found = self._done.get(id(fields))
        if found is None:
            found = frozenset(key for key, part in fields if not partial(part))
            self._done[id(fields)] = found
        return found

    def shape(self, fields: list[tuple[str, Any]], data: dict[str, Any]) -> dict[str, Any]:
        done = self.done(fields)
        for key, part in fields:
            if key in done or key not in data:
                continue
            value = data[key]
            if isinstance(part, Connection):
                data[key] = self.connection(part, value)
            elif isinstance(part, CustomerById):
                data[key] = None if value is None else self.customer(part.object, value)
        return data

    def connection(self, part: Connection, data: dict[str, Any]) -> Partial:
        open_keys = set()
        for key, item in part.parts:
            if isinstance(item, Nodes) and part.nodes[item.index].partial:
                plan = part.nodes[item.index]
                data[key] = [self.customer(plan, node) for node in data[key]]
                open_keys.add(key)
            elif isinstance(item, Edges) and self.edges_partial(part, item):
                data[key] = [self.edge(part, item, edge) for edge in data[key]]
                open_keys.add(key)
        done = frozenset(key for key, _ in part.parts if key not in open_keys)
        return Partial(data, done)

    @staticmethod
    def edges_partial(part: Connection, edges: Edges) -> bool:
        return any(isinstance(p, tuple) and part.nodes[p[1]].partial for _, p in edges.parts)

    def edge(self, part: Connection, edges: Edges, data: dict[str, Any]) -> Partial:
        open_keys = set()
        for key, item in edges.parts:
            if isinstance(item, tuple) and part.nodes[item[1]].partial:
                data[key] = self.customer(part.nodes[item[1]], data[key])
                open_keys.add(key)
        return Partial(data, frozenset(key for key, _ in edges.parts if key not in open_keys))

    def customer(self, plan: ObjectPlan, data: dict[str, Any]) -> Partial:
        row = data.pop(ROW_KEY)
        for name in ROW_TIMESTAMPS:
            row[name] = read_timestamp(row[name])
        self.loader.prime(row["id"], row)
        kind = row["kind"]
        variant = next(v for v in plan.variants if v.kinds is None or kind in v.kinds)
        return Partial(
            self.shape(variant.fields, data),
            self.done(variant.fields),
            self.types.customer(row),
            self.type_names[kind],
        )


async def execute(context: ExecutionContext, plan: Plan, data: dict[str, Any]) -> ExecutionResult:
    """Run the operation over the statement's answer ``data``."""
    root = Shaper(context.context).root(plan, data, context.root_value)
    result = graphql_execute(
        context.schema._schema,
        context.graphql_document,  # type: ignore[arg-type]
        root_value=root,
        context_value=context.context,
        variable_values=context.variables,
        operation_name=context.operation_name,
        executor_class=HybridExecutor,
        is_awaitable=optimized_is_awaitable,
        operation_extensions=getattr(context, "operation_extensions", None),
    )
    if optimized_is_awaitable(result):
        result = await result  # type: ignore[misc]
    return result  # type: ignore[return-value]
