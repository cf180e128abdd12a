"""Per-subtree fallback: a compiled statement's answer completed with the
fields computed in Python, spliced in where they belong.

The statement builds every compilable part of the answer, and sends, with each
customer object whose plan holds :class:`~crmgraph.compiled.plan.Fallback`
fields, its row (``ROW_KEY``). :class:`Splicer` walks that JSON along the
plan's partial parts only and notes each object with fields computed in
Python (:class:`Open`): the root, or a customer, whose parent is then the
instance ``SchemaTypes.customer(row)`` gives (the object the resolver path
hands its resolvers); the page's rows are primed in the customer DataLoader.
graphql-core's executor then runs just those fields of each object
(``Executor.execute_fields``, all started before any is awaited, so
DataLoaders batch across the page as on the resolver path) and their values
are spliced into the objects. What the statement built is not walked again.

Errors and their paths are the executor's own (each object's fields run at
its path). A field that is non-null and fails nulls its object; that null
goes up through the positions the statement built, as graphql-core would
take it: to the nearest nullable one, which records the error, or the whole
``data``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

from graphql import (
    ExecutionResult,
    GraphQLError,
    GraphQLObjectType,
    GraphQLOutputType,
    get_nullable_type,
    is_non_null_type,
)
from graphql.execution.collect_fields import FieldDetailsList, collect_fields
from graphql.pyutils import Path
from strawberry.execution import optimized_is_awaitable
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.types import ExecutionContext

from crmgraph.compiled.fields import ROW_KEY, ROW_TIMESTAMPS
from crmgraph.compiled.plan import (
    Connection,
    CustomerById,
    CustomersByIds,
    Edges,
    Fallback,
    Nodes,
    ObjectPlan,
    Plan,
    partial,
)
from crmgraph.db.queries import read_timestamp

GroupedFields = dict[str, FieldDetailsList]


@dataclass(slots=True)
class Position:
    """Where a value the statement built sits in the answer: ``container[key]``
    of GraphQL type ``type``, below ``parent`` (None: a root field)."""

    container: Any  # dict or list
    key: str | int
    type: GraphQLOutputType
    path: Path
    parent: Position | None


@dataclass(slots=True)
class Open:
    """An object of the answer with fields computed in Python: ``fields``
    (by response key) resolved with ``source`` as their parent, at ``path``,
    then spliced into ``data``, whose keys follow ``order``."""

    data: dict[str, Any]
    type: GraphQLObjectType
    source: Any
    path: Path | None
    position: Position | None  # None: the root
    fields: GroupedFields
    order: GroupedFields


class Splicer:
    """The statement's answer walked along the plan's partial parts."""

    def __init__(self, context: ExecutionContext, executor: Any) -> None:
        app_context = context.context
        self.executor = executor
        self.schema = executor.schema
        self.types = app_context.types
        self.loader = app_context.loaders.customer
        self.type_names = {
            kind: cls.__strawberry_definition__.name
            for kind, cls in self.types.customer_classes.items()
        }
        self.open: list[Open] = []
        # per field list of the plan: its fields computed in Python and its
        # parts holding some below (worked out once, not once per object of a page)
        self._parts: dict[int, tuple[list[str], list[tuple[str, Any]]]] = {}

    def parts(self, fields: list[tuple[str, Any]]) -> tuple[list[str], list[tuple[str, Any]]]:
        found = self._parts.get(id(fields))
        if found is None:
            fallback = [key for key, part in fields if type(part) is Fallback]
            below = [(k, p) for k, p in fields if type(p) is not Fallback and partial(p)]
            found = self._parts[id(fields)] = (fallback, below)
        return found

    def root(self, plan: Plan, data: dict[str, Any]) -> None:
        executor = self.executor
        root_type = self.schema.query_type
        grouped = collect_fields(
            self.schema,
            executor.fragments,
            executor.variable_values,
            root_type,
            executor.operation,
            executor.hide_suggestions,
        )[0]
        self.object(root_type, grouped, plan.fields, data, None, None, executor.root_value)

    def object(
        self,
        parent_type: GraphQLObjectType,
        grouped: GroupedFields,
        fields: list[tuple[str, Any]],
        data: dict[str, Any],
        path: Path | None,
        position: Position | None,
        source: Any,
    ) -> None:
        fallback, below = self.parts(fields)
        for key, part in below:
            value = data[key]
            details = grouped[key]
            field_type = self.field_type(parent_type, details)
            here = Position(data, key, field_type, Path(path, key, parent_type.name), position)
            if isinstance(part, Connection):
                self.connection(part, field_type, details, value, here)
            elif isinstance(part, CustomerById) and value is not None:
                self.customer(part.object, field_type, details, value, here)
            elif isinstance(part, CustomersByIds):
                item_type = get_nullable_type(field_type).of_type
                for index, node in enumerate(value):
                    if node is not None:
                        at = Position(value, index, item_type, Path(here.path, index, None), here)
                        self.customer(part.object, item_type, details, node, at)
        if fallback:
            missing = {key: grouped[key] for key in fallback}
            self.open.append(Open(data, parent_type, source, path, position, missing, grouped))

    def field_type(self, parent_type: GraphQLObjectType, details: FieldDetailsList) -> Any:
        return parent_type.fields[details[0].node.name.value].type

    def connection(
        self,
        part: Connection,
        field_type: Any,
        details: FieldDetailsList,
        data: dict[str, Any],
        position: Position,
    ) -> None:
        connection_type = get_nullable_type(field_type)
        grouped = self.executor.collect_subfields(connection_type, details)[0]
        for key, item in part.parts:
            if isinstance(item, Nodes):
                plan = part.nodes[item.index]
                if plan.partial:
                    here = self.list_position(connection_type, grouped[key], data, key, position)
                    item_type = get_nullable_type(here.type).of_type
                    for index, node in enumerate(data[key]):
                        self.customer(
                            plan,
                            item_type,
                            grouped[key],
                            node,
                            Position(
                                data[key], index, item_type, Path(here.path, index, None), here
                            ),
                        )
            elif isinstance(item, Edges) and any(
                isinstance(p, tuple) and part.nodes[p[1]].partial for _, p in item.parts
            ):
                here = self.list_position(connection_type, grouped[key], data, key, position)
                item_type = get_nullable_type(here.type).of_type
                edge_type = get_nullable_type(item_type)
                edge_fields = self.executor.collect_subfields(edge_type, grouped[key])[0]
                for index, edge in enumerate(data[key]):
                    edge_path = Path(here.path, index, None)
                    at_edge = Position(data[key], index, item_type, edge_path, here)
                    for edge_key, node_part in item.parts:
                        if isinstance(node_part, tuple) and part.nodes[node_part[1]].partial:
                            node_type = self.field_type(edge_type, edge_fields[edge_key])
                            self.customer(
                                part.nodes[node_part[1]],
                                node_type,
                                edge_fields[edge_key],
                                edge[edge_key],
                                Position(
                                    edge,
                                    edge_key,
                                    node_type,
                                    Path(edge_path, edge_key, edge_type.name),
                                    at_edge,
                                ),
                            )

    def list_position(
        self,
        parent_type: GraphQLObjectType,
        details: FieldDetailsList,
        data: dict[str, Any],
        key: str,
        position: Position,
    ) -> Position:
        list_type = self.field_type(parent_type, details)
        return Position(data, key, list_type, Path(position.path, key, parent_type.name), position)

    def customer(
        self,
        plan: ObjectPlan,
        field_type: Any,
        details: FieldDetailsList,
        data: dict[str, Any],
        position: Position,
    ) -> None:
        row = data.pop(ROW_KEY)
        for name in ROW_TIMESTAMPS:
            row[name] = read_timestamp(row[name])
        self.loader.prime(row["id"], row)
        kind = row["kind"]
        variant = next(v for v in plan.variants if v.kinds is None or kind in v.kinds)
        # no is_type_of: the statement built it for this very type
        runtime = self.schema.get_type(self.type_names[kind])
        grouped = self.executor.collect_subfields(runtime, details)[0]
        # the parent of its fields computed in Python, when it has any
        source = self.types.customer(row) if self.parts(variant.fields)[0] else None
        self.object(runtime, grouped, variant.fields, data, position.path, position, source)


def splice(data: dict[str, Any], values: dict[str, Any], order: GroupedFields) -> None:
    """``values`` put into ``data`` in place (its parent holds it), keys in
    the selection's order."""
    merged = {
        key: values[key] if key in values else data[key]
        for key in order
        if key in values or key in data
    }
    data.clear()
    data.update(merged)


def null_up(executor: Any, error: GraphQLError, position: Position | None) -> bool:
    """A non-null field of an object failed: null the nearest nullable
    position from the object up, recording the error there; False when none
    is (the whole ``data`` is null)."""
    while position is not None:
        if not is_non_null_type(position.type):
            position.container[position.key] = None
            executor.collected_errors.add(error, position.path)
            return True
        position = position.parent
    executor.collected_errors.add(error, None)
    return False


async def execute(context: ExecutionContext, plan: Plan, data: dict[str, Any]) -> ExecutionResult:
    """Complete the statement's answer ``data`` with the fields computed in Python."""
    executor = StrawberryGraphQLCoreExecutionContext.build(
        context.schema._schema,
        context.graphql_document,  # type: ignore[arg-type]
        root_value=context.root_value,
        context_value=context.context,
        raw_variable_values=context.variables,
        operation_name=context.operation_name,
        is_awaitable=optimized_is_awaitable,
        operation_extensions=getattr(context, "operation_extensions", None),
    )
    if isinstance(executor, list):  # the variables' errors
        return ExecutionResult(None, executor)
    splicer = Splicer(context, executor)
    splicer.root(plan, data)
    outcomes: list[Any] = []
    pending: list[Awaitable[Any]] = []
    for item in splicer.open:
        try:
            outcome = executor.execute_fields(item.type, item.source, item.path, item.fields, None)
        except GraphQLError as error:
            outcome = error
        if optimized_is_awaitable(outcome):
            pending.append(outcome)
        outcomes.append(outcome)
    if pending:
        # all started before any is awaited: the DataLoaders batch across the page
        settled = iter(await asyncio.gather(*pending, return_exceptions=True))
        outcomes = [next(settled) if optimized_is_awaitable(o) else o for o in outcomes]
    answer: dict[str, Any] | None = data
    for item, outcome in zip(splicer.open, outcomes, strict=True):
        if isinstance(outcome, GraphQLError):
            if not null_up(executor, outcome, item.position):
                answer = None
        elif isinstance(outcome, BaseException):
            raise outcome
        else:
            splice(item.data, outcome, item.order)
    return ExecutionResult(answer, executor.collected_errors.errors or None)
