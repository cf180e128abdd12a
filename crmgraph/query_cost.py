"""The calculated cost of a GraphQL operation, and the limits it is held to.

The cost is the number of objects a response can hold at most (see
:mod:`crmgraph.schema.limits`, which refuses an operation over the limit).
Kept apart from the GraphQL schema layer, which uses it, because the compiled
read path uses it too: :mod:`crmgraph.compiled.plan` walks a document with the
same :class:`CostWalker` (fields merged and fragments expanded as execution
does), and :mod:`crmgraph.compiled.direct` refuses and reports a cost as the
schema's extension does (:func:`cost_refusal`, :func:`cost_results`).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLField,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    NamedTypeNode,
    OperationDefinitionNode,
    SelectionSetNode,
    Undefined,
    get_named_type,
    get_nullable_type,
    is_abstract_type,
    is_leaf_type,
    is_list_type,
    is_object_type,
    value_from_ast_untyped,
)
from graphql.utilities import get_operation_ast

from crmgraph.lru import LRU, Missing
from crmgraph.rate_limit import Charge
from crmgraph.settings import DEFAULTS


@dataclass(frozen=True)
class QueryLimits:
    """What one operation may ask for. A limit of 0 (or less) switches it off.

    Frozen and hashable: the validation rules built from it are cached per
    instance, so strawberry's ValidationCache sees the same rule classes on
    every request (new classes per request would never hit the cache)."""

    # the defaults are the settings' (CRMGRAPH_MAX_QUERY_*): one place
    max_depth: int = DEFAULTS.max_query_depth
    max_aliases: int = DEFAULTS.max_query_aliases
    max_tokens: int = DEFAULTS.max_query_tokens
    max_cost: int = DEFAULTS.max_query_cost
    # field selections once every fragment spread is expanded as written: a
    # document of a few hundred tokens can otherwise stand for billions
    max_selections: int = DEFAULTS.max_query_selections
    # work units graphql-core's overlapping-fields rule may spend (see bounded_overlap_rule)
    max_field_comparisons: int = 5_000
    # `first` assumed for a connection when the query gives none and the schema
    # has no default (the server's own default page size).
    default_page_size: int = DEFAULTS.default_page_size
    # Items assumed for a plain list field (contacts, needs, relationships…):
    # they are not paginated, so this is an estimate, not a bound.
    default_list_size: int = 10
    introspection: bool = DEFAULTS.introspection

    @classmethod
    def from_settings(cls, settings: Any) -> QueryLimits:
        # getattr with defaults: works with Settings objects that predate these fields
        defaults = cls()
        return cls(
            max_depth=getattr(settings, "max_query_depth", defaults.max_depth),
            max_aliases=getattr(settings, "max_query_aliases", defaults.max_aliases),
            max_tokens=getattr(settings, "max_query_tokens", defaults.max_tokens),
            max_cost=getattr(settings, "max_query_cost", defaults.max_cost),
            max_selections=getattr(settings, "max_query_selections", defaults.max_selections),
            default_page_size=getattr(settings, "default_page_size", defaults.default_page_size),
            introspection=getattr(settings, "introspection", defaults.introspection),
        )


@dataclass(frozen=True)
class QueryCost:
    """The cost of one operation, and how much of it each root field asked for."""

    requested: int
    by_field: dict[str, int] = field(default_factory=dict)


def query_cost(
    schema: GraphQLSchema,
    document: DocumentNode,
    variables: Mapping[str, Any] | None = None,
    operation_name: str | None = None,
    limits: QueryLimits | None = None,
) -> QueryCost | None:
    """The cost of the operation of a *validated* document that would run, or
    None when there is no such operation (execution will say why)."""
    operation = get_operation_ast(document, operation_name)
    if operation is None:
        return None
    root = schema.get_root_type(operation.operation)
    if root is None:
        return None
    walker = CostWalker(schema, document, operation, variables or {}, limits or QueryLimits())
    by_field = {
        key: walker.field_cost(nodes, root, None)
        for key, nodes in walker.collect((operation.selection_set,), root).items()
    }
    return QueryCost(requested=sum(by_field.values()), by_field=by_field)


def limit_error(message: str, code: str, **details: Any) -> GraphQLError:
    """A refusal by one of the limits: its message and its code in ``extensions``."""
    return GraphQLError(message, extensions={"code": code, **details})


def cost_refusal(cost: QueryCost | None, limits: QueryLimits) -> GraphQLError | None:
    """The error refusing an operation that costs more than the limit, if it does."""
    limit = limits.max_cost
    if cost is None or limit <= 0 or cost.requested <= limit:
        return None
    return limit_error(
        f"Query would cost {cost.requested}, above the limit of {limit}: "
        "ask for smaller pages (`first`) or fewer nested lists.",
        "QUERY_TOO_EXPENSIVE",
        cost=cost.requested,
        limit=limit,
        byField=cost.by_field,
    )


def cost_results(
    cost: QueryCost | None, limits: QueryLimits, charge: Charge | None
) -> dict[str, Any]:
    """``extensions.cost`` of an answer: what it cost, the limit, and what is
    left of the caller's rate-limit budget."""
    if cost is None:
        return {}
    limit = limits.max_cost if limits.max_cost > 0 else None
    found: dict[str, Any] = {"requested": cost.requested, "limit": limit}
    if charge is not None:
        found["rateLimit"] = {
            "limit": charge.limit,
            "remaining": charge.remaining,
            "resetInSeconds": charge.retry_after,
        }
    return {"cost": found}


class CostCache:
    """Costs of the operations served, by query text, operation name and
    variables: a function of those three for one schema and one QueryLimits,
    so a repeated request (the common case) skips the walk. Bounded, least
    recently used out first; shared by every request of an app."""

    def __init__(self, size: int = 1000) -> None:
        self._items: LRU[Hashable, QueryCost | None] = LRU(size)

    @staticmethod
    def key(
        query: str, operation_name: str | None, variables: Mapping[str, Any] | None
    ) -> Hashable | None:
        """None for variables that do not serialise (an upload): not cached."""
        try:
            encoded = orjson.dumps(variables or {}, option=orjson.OPT_SORT_KEYS)
        except TypeError:
            return None
        return (query, operation_name, encoded)

    def peek(self, key: Hashable) -> QueryCost | Missing | None:
        """The cost kept for ``key``, or MISSING: never computes it."""
        return self._items.lookup(key)

    def get(self, key: Hashable, compute: Callable[[], QueryCost | None]) -> QueryCost | None:
        return self._items.get_or_make(key, compute)


class CostWalker:
    """Walks an operation the way execution would: fields with the same
    response key merge (``users { id } users { name }`` is one list), each
    fragment is expanded once per selection, ``@skip``/``@include`` apply.

    Costs are computed per *one* instance of the parent object: the cost of a
    selection is linear in how many parents there are, so a list of n items
    costs n * (1 + its selection's cost). That is what lets each merged
    selection be memoised per (selection sets, concrete type, page), keeping
    documents that spread the same fragments many times linear to walk."""

    def __init__(
        self,
        schema: GraphQLSchema,
        document: DocumentNode,
        operation: OperationDefinitionNode,
        variables: Mapping[str, Any],
        limits: QueryLimits,
    ) -> None:
        self.schema = schema
        self.limits = limits
        self.fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        # A variable's default applies when the request leaves it out.
        self.variables: dict[str, Any] = {}
        for definition in operation.variable_definitions or ():
            name = definition.variable.name.value
            if name in variables:
                self.variables[name] = variables[name]
            elif definition.default_value is not None:
                self.variables[name] = value_from_ast_untyped(definition.default_value)
        self.memo: dict[tuple[tuple[int, ...], str, int | None], int] = {}

    def collect(
        self, selection_sets: tuple[SelectionSetNode, ...], parent: GraphQLObjectType
    ) -> dict[str, list[FieldNode]]:
        """The fields of ``parent`` these selection sets ask for, by response key."""
        fields: dict[str, list[FieldNode]] = {}
        expanded: set[str] = set()
        # a stack popped from the end: reversed in, so fields come out in document order
        stack: list[Any] = [sel for s in reversed(selection_sets) for sel in reversed(s.selections)]
        while stack:
            selection = stack.pop()
            if not self.included(selection):
                continue
            if isinstance(selection, FieldNode):
                key = selection.alias.value if selection.alias else selection.name.value
                fields.setdefault(key, []).append(selection)
            elif isinstance(selection, InlineFragmentNode):
                if self.applies(selection.type_condition, parent):
                    stack.extend(reversed(selection.selection_set.selections))
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self.fragments.get(name)
                if name in expanded or fragment is None:
                    continue  # once per selection, as execution does; also ends cycles
                expanded.add(name)
                if self.applies(fragment.type_condition, parent):
                    stack.extend(reversed(fragment.selection_set.selections))
        return fields

    def included(self, selection: Any) -> bool:
        for directive in selection.directives or ():
            name = directive.name.value
            if name not in ("skip", "include"):
                continue
            condition = next((a for a in directive.arguments if a.name.value == "if"), None)
            value = value_from_ast_untyped(condition.value, self.variables) if condition else None
            if name == "skip" and value is True:
                return False
            if name == "include" and value is False:
                return False
        return True

    def applies(self, condition: NamedTypeNode | None, parent: GraphQLObjectType) -> bool:
        if condition is None:
            return True
        target = self.schema.get_type(condition.name.value)
        if target is None:
            return False
        if target is parent:
            return True
        return is_abstract_type(target) and self.schema.is_sub_type(target, parent)  # type: ignore[arg-type]

    def selection_cost(
        self,
        selection_sets: tuple[SelectionSetNode, ...],
        parent: GraphQLNamedType,
        page: int | None,
    ) -> int:
        if not selection_sets:
            return 0
        if is_abstract_type(parent):
            # An interface or union value is one concrete type at a time: the
            # dearest of them bounds the cost, where summing every type's
            # fragments would charge `... on A {…} ... on B {…}` twice.
            possible = self.schema.get_possible_types(parent)  # type: ignore[arg-type]
            return max((self.concrete_cost(selection_sets, t, page) for t in possible), default=0)
        if not is_object_type(parent):
            return 0
        return self.concrete_cost(selection_sets, parent, page)  # type: ignore[arg-type]

    def concrete_cost(
        self,
        selection_sets: tuple[SelectionSetNode, ...],
        parent: GraphQLObjectType,
        page: int | None,
    ) -> int:
        key = (tuple(id(s) for s in selection_sets), parent.name, page)
        if key not in self.memo:
            self.memo[key] = sum(
                self.field_cost(nodes, parent, page)
                for nodes in self.collect(selection_sets, parent).values()
            )
        return self.memo[key]

    def field_cost(
        self, nodes: list[FieldNode], parent: GraphQLObjectType, page: int | None
    ) -> int:
        """One response key of ``parent``: its fields agree on name and arguments
        (validation makes sure), their selections merge."""
        node = nodes[0]
        name = node.name.value
        if name.startswith("__"):  # introspection and __typename: not the data's cost
            return 0
        definition = parent.fields.get(name)
        if definition is None:
            return 0
        named = get_named_type(definition.type)
        if is_leaf_type(named):
            return declared_cost(definition)
        children = tuple(n.selection_set for n in nodes if n.selection_set is not None)
        if is_list_type(get_nullable_type(definition.type)):  # type: ignore[arg-type]
            items = page if page is not None else self.list_size(node, definition)
            items_cost = items * (1 + self.selection_cost(children, named, None))
            return declared_cost(definition) + items_cost
        if self.is_connection(named, definition):
            first = self.first(node, definition)
            # the connection object itself, then its page under multiplier `first`
            return 1 + declared_cost(definition) + self.selection_cost(children, named, first)
        return 1 + declared_cost(definition) + self.selection_cost(children, named, None)

    @staticmethod
    def is_connection(named: GraphQLNamedType, definition: GraphQLField) -> bool:
        return named.name.endswith("Connection") or "first" in definition.args

    def list_size(self, node: FieldNode, definition: GraphQLField) -> int:
        if "first" in definition.args:
            return self.first(node, definition)
        if "ids" in definition.args:  # nodes(ids:): exactly as many as asked
            ids = self.argument(node, "ids")
            if ids is Undefined or ids is None:
                return 0
            return len(ids) if isinstance(ids, list) else 1
        return self.limits.default_list_size

    def first(self, node: FieldNode, definition: GraphQLField) -> int:
        value = self.argument(node, "first")
        declared = definition.args.get("first")  # a `…Connection` may come without one
        if value is Undefined and declared is not None:
            value = declared.default_value  # not given: the schema's default, as served
        if isinstance(value, bool) or not isinstance(value, int):
            return self.limits.default_page_size  # null, or not an Int (execution refuses)
        return max(value, 0)

    def argument(self, node: FieldNode, name: str) -> Any:
        for argument in node.arguments or ():
            if argument.name.value == name:
                return value_from_ast_untyped(argument.value, self.variables)
        return Undefined


def declared_cost(definition: GraphQLField) -> int:
    """Extra cost a field declares for the work behind it, beyond the objects it
    returns: ``strawberry.field(metadata={"cost": n})`` (an aggregate over many rows)."""
    field = (definition.extensions or {}).get("strawberry-definition")
    metadata = getattr(field, "metadata", None) or {}
    return int(metadata.get("cost", 0))
