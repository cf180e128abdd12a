"""The schema extension that answers a compilable query with one statement.

It runs last in ``on_execute``: parsing, validation (limits included), field
permissions and the query cost have had their say, and an operation any of
them refused already has its result, so it is left alone. Otherwise, for an
HTTP query whose plan compiles, the statement runs through the app's engine
(counted like any other) and its JSON text becomes ``data`` as an
``orjson.Fragment``: the view's ``orjson.dumps`` copies those bytes into the
response without reading them. When the selection also holds fields computed
in Python, the executor completes the statement's answer with their resolvers
(:mod:`crmgraph.compiled.hybrid`). Any other operation, and any request whose
arguments a resolver would refuse, executes as usual.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Hashable, Mapping
from typing import Any

import orjson
from graphql import ExecutionResult as GraphQLExecutionResult
from graphql import OperationType
from graphql.execution.values import VariableValues, get_variable_values
from graphql.utilities import get_operation_ast
from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionContext

from crmgraph.compiled import hybrid
from crmgraph.compiled.cache import DocumentPlans, PlanCache, StatementCache
from crmgraph.compiled.dialect import Dialect, NotCompilable, dialect_for
from crmgraph.compiled.fields import FieldTable
from crmgraph.compiled.plan import Const, Plan, Planner, directive_variables
from crmgraph.compiled.render import render
from crmgraph.db.engine import Database, current_counter
from crmgraph.db.queries import CustomerScope
from crmgraph.query_cost import CostWalker, QueryLimits

logger = logging.getLogger("crmgraph.compiled")


class CompiledReads:
    """Shared by every request of an app: the plan cache and the field table."""

    def __init__(self, cache_size: int = 1000) -> None:
        self.cache = PlanCache(cache_size)
        self.statements = StatementCache(cache_size)
        self._table: FieldTable | None = None
        self._dialect: Dialect | None = None

    @property
    def dialect(self) -> Dialect:
        """The database's dialect, known once a first query was planned."""
        assert self._dialect is not None
        return self._dialect

    async def answer(self, context: ExecutionContext) -> GraphQLExecutionResult | None:
        """The operation's result, or None for the resolver path: ``data`` as
        the statement's JSON text, or, when the selection holds fields computed
        in Python, the executor's result over the statement's answer."""
        app_context = context.context
        request = getattr(app_context, "request", None)
        if request is None or getattr(request, "scope", {}).get("type") != "http":
            return None  # WebSocket operations and direct schema.execute() calls
        document = context.graphql_document
        if document is None:
            return None
        operation = get_operation_ast(document, context.operation_name)
        if operation is None or operation.operation is not OperationType.QUERY:
            return None
        schema = context.schema._schema
        entry = self.cache.document(
            (context.query or "", context.operation_name),
            lambda: DocumentPlans(tuple(sorted(directive_variables(operation, document)))),
        )
        raw_variables = context.variables or {}
        values = directive_values(entry, raw_variables)
        db: Database = app_context.db
        if self._table is None:
            self._table = FieldTable.from_catalog(app_context.catalog)
            self._dialect = dialect_for(db.engine.engine_type)
        table, dialect = self._table, self._dialect
        assert dialect is not None

        def make() -> Plan | None:
            try:
                walker = CostWalker(schema, document, operation, raw_variables, QueryLimits())
                return Planner(walker, operation, table).plan()
            except NotCompilable as reason:
                logger.debug("not compiled: %s", reason)
                return None

        plan = self.cache.plan(entry, values, make)
        if plan is None:
            return None
        constant = constant_data(plan)
        if constant is not None:  # { __typename }: no SQL
            self.answered(entry)
            return fragment_result(orjson.Fragment(constant))
        scope = app_context.access.scope
        key = statement_key(plan, scope, raw_variables)
        if key is None:
            return None
        rendered = self.statements.get(key, plan)
        if rendered is None:
            variables = get_variable_values(
                schema, operation.variable_definitions or (), raw_variables
            )
            if not isinstance(variables, VariableValues):
                return None  # execution reports the variables' errors
            try:
                sql, args = render(
                    plan,
                    dialect,
                    context.schema,
                    variables,
                    app_context.types,
                    scope,
                    app_context.settings,
                )
            except NotCompilable as reason:
                logger.debug("not compiled for these arguments: %s", reason)
                return None
            self.statements.put(key, plan, sql, args)
        else:
            sql, args = rendered
        try:
            text = await fetch_json(db, dialect, sql, args)
        except Exception:
            logger.exception("compiled query failed; answering it with resolvers from now on")
            self.cache.forget(entry, values)
            return None
        if plan.partial:
            return await hybrid.execute(context, plan, orjson.loads(text))
        self.answered(entry)
        return fragment_result(orjson.Fragment(text))

    @staticmethod
    def answered(entry: DocumentPlans) -> None:
        """Note that the document went through every check and one statement
        answered it: from now on the direct path may answer it."""
        entry.answered = True


def directive_values(entry: DocumentPlans, raw_variables: Mapping[str, Any]) -> Hashable:
    """What picks the document's plan: the values of the variables that
    ``@skip``/``@include`` read."""
    return tuple(repr(raw_variables.get(name)) for name in entry.directive_variables)


def statement_key(
    plan: Plan, scope: CustomerScope | None, raw_variables: Mapping[str, Any]
) -> Hashable | None:
    """What the rendered statement depends on; None for variables that do
    not serialise (an upload): not cached."""
    try:
        return (id(plan), scope, orjson.dumps(raw_variables, option=orjson.OPT_SORT_KEYS))
    except TypeError:
        return None


def constant_data(plan: Plan) -> bytes | None:
    """The answer's JSON when no field reads the database (``{ __typename }``)."""
    if all(isinstance(part, Const) for _, part in plan.fields):
        return orjson.dumps({key: part.text for key, part in plan.fields})
    return None


def fragment_result(data: orjson.Fragment) -> GraphQLExecutionResult:
    # the view's orjson.dumps copies a Fragment's bytes without reading them
    return GraphQLExecutionResult(data=data, errors=None)  # type: ignore[arg-type]


async def fetch_json(db: Database, dialect: Dialect, sql: str, args: list[Any]) -> str:
    """Run the statement; PostgreSQL straight on an asyncpg pool (the
    replica's when crmgraph.db.replica allows it; the statement is written
    with $n placeholders), SQLite on a kept connection
    (``Database.read_value``). Either way the request's statement counter
    counts it."""
    if dialect.name == "postgres":
        engine: Any = db.engine
        pool = db.read_pool()
        if pool is None or engine.current_transaction.get() is not None:
            raise NotCompilable("no pool, or inside a transaction")
        counter = current_counter.get()
        if counter is not None:
            counter.record(sql)
        async with pool.acquire() as connection:
            return await connection.fetchval(sql, *args)
    return await db.read_value(sql, *args)


class CompiledReadsExtension(SchemaExtension):
    """Give strawberry ``functools.partial(CompiledReadsExtension, compiled)``,
    last among the extensions."""

    def __init__(self, compiled: CompiledReads) -> None:
        self.compiled = compiled

    async def on_execute(self) -> AsyncIterator[None]:
        context = self.execution_context
        if context.result is None:
            result = await self.compiled.answer(context)
            if result is not None:
                context.result = result
        yield
