"""A query operation turned into a tree of what to read, or refused.

Fields are collected as execution collects them (fragments and inline
fragments expanded in place, fields with one response key merged,
``@skip``/``@include`` applied), per concrete customer type, by the same
walker the query cost uses. A plan does not depend on the caller or on
argument values (those are bound when the plan is rendered), only on the
document and on the values of the variables ``@skip``/``@include`` read.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    GraphQLField,
    GraphQLObjectType,
    OperationDefinitionNode,
    OperationType,
    get_named_type,
)

from crmgraph.compiled.dialect import NotCompilable
from crmgraph.compiled.fields import (
    CONTACT,
    NEED,
    STAGE_CHANGE,
    TEAM,
    USER,
    FieldTable,
    Scalar,
    mapped,
)
from crmgraph.paging import CONTACT_ORDER, NEED_ORDER, STAGE_HISTORY_ORDER
from crmgraph.query_cost import CostWalker

# the most keys one object may have (PostgreSQL's json_build_object: 100 arguments,
# one pair kept for the row sent with an object the executor completes)
MAX_KEYS = 49


@dataclass(frozen=True)
class Arguments:
    """A field's arguments, read per request (they may come from variables)."""

    definition: GraphQLField
    node: FieldNode


@dataclass
class Value:
    scalar: Scalar


@dataclass
class Fallback:
    """A field computed in Python (a resolver or a plugin): not in the
    statement; graphql-core's executor resolves it, with the object the
    resolver path would have built as its parent (see :mod:`crmgraph.compiled.hybrid`)."""


@dataclass
class Const:
    text: str


@dataclass
class Variant:
    kinds: tuple[str, ...] | None  # customer kinds it is for; None: any row
    fields: list[tuple[str, Any]]


@dataclass
class ObjectPlan:
    variants: list[Variant]

    @cached_property  # read per object of a page; a plan is not changed once made
    def partial(self) -> bool:
        """Whether some object of this plan needs the executor (a fallback below it)."""
        return any(partial(part) for v in self.variants for _, part in v.fields)


@dataclass
class Single:
    """A to-one relation: ``table.id = parent.column`` (owner, team)."""

    table: str
    column: str
    object: ObjectPlan


# a list's rows are those whose ``customer`` is the parent customer's ``id``
OF_CUSTOMER = (("customer", "id"),)
# ... or whose customer and kind are the parent role's (a role's stage history)
OF_ROLE = (("customer", "customer"), ("kind", "kind"))


@dataclass
class ListOf:
    """Rows of ``table`` matching the parent on ``keys`` (their column, the
    parent's), in ``order``; with ``latest_per``, only the newest row
    (highest id) per those columns."""

    table: str
    order: str
    object: ObjectPlan
    arguments: Arguments | None = None
    latest_per: str | None = None
    keys: tuple[tuple[str, str], ...] = OF_CUSTOMER


@dataclass
class Roles:
    """``Customer.roles``: the roles the parent customer holds, each of the
    variant of its kind (see :meth:`crmgraph.compiled.render.Render.roles`)."""

    object: ObjectPlan


@dataclass
class Edges:
    parts: list[tuple[str, Any]]  # Const | "cursor" | ("node", index)


@dataclass
class Nodes:
    index: int


@dataclass
class PageInfoPlan:
    parts: list[tuple[str, str]]  # key -> field name (or __typename)


@dataclass
class Connection:
    """``customers`` (root) or ``interactions`` (below a customer)."""

    name: str
    arguments: Arguments
    parts: list[tuple[str, Any]]  # Const | Edges | Nodes | PageInfoPlan | "totalCount"
    nodes: list[ObjectPlan] = field(default_factory=list)  # one per edges/nodes selection

    @property
    def needs_cursor(self) -> bool:
        for _, part in self.parts:
            if isinstance(part, Edges) and any(p == "cursor" for _, p in part.parts):
                return True
            if isinstance(part, PageInfoPlan) and any(
                name in ("startCursor", "endCursor") for _, name in part.parts
            ):
                return True
        return False


@dataclass
class CustomerById:
    """``customer(id:)``, or ``node(id:)`` when ``node``: a merged customer's ID
    stands for the survivor. ``node`` with the ID of another type is not
    compiled (see :meth:`crmgraph.compiled.render.Render.customer_by_id`)."""

    arguments: Arguments
    object: ObjectPlan
    node: bool = False


@dataclass
class CustomersByIds:
    """``nodes(ids:)`` when every ID is a customer's (or invalid: null), in the
    order asked; another type's ID is not compiled for that request (see
    :meth:`crmgraph.compiled.render.Render.customers_by_ids`)."""

    arguments: Arguments
    object: ObjectPlan


@dataclass
class Plan:
    fields: list[tuple[str, Any]]  # Const | Connection | CustomerById | CustomersByIds | Fallback
    # set when its statement failed and the plan cache forgot it (PlanCache.forget):
    # whoever still holds it (the direct reads' known requests) stops using it
    forgotten: bool = False

    @cached_property  # read per request; a plan is not changed once made
    def partial(self) -> bool:
        return any(partial(part) for _, part in self.fields)


def partial(part: Any) -> bool:
    """Whether ``part`` holds a :class:`Fallback` anywhere below it."""
    if isinstance(part, Fallback):
        return True
    if isinstance(part, Connection):
        return any(node.partial for node in part.nodes)
    if isinstance(part, (CustomerById, CustomersByIds, Single, ListOf, Roles)):
        return part.object.partial
    return False


def directive_variables(operation: OperationDefinitionNode, document: DocumentNode) -> set[str]:
    """Variables read by ``@skip``/``@include`` anywhere in the document."""
    found: set[str] = set()

    def walk(node: Any) -> None:
        for directive in getattr(node, "directives", None) or ():
            if directive.name.value in ("skip", "include"):
                for argument in directive.arguments:
                    name = getattr(argument.value, "name", None)
                    if name is not None and argument.value.kind == "variable":
                        found.add(name.value)
        selection_set = getattr(node, "selection_set", None)
        for selection in selection_set.selections if selection_set else ():
            walk(selection)

    for definition in document.definitions:
        walk(definition)
    return found


class Planner:
    """Plans ``operation`` as ``walker`` (the query cost's walk of it, with
    its variables) sees it: fields merged, fragments expanded, ``@skip`` and
    ``@include`` applied."""

    def __init__(
        self, walker: CostWalker, operation: OperationDefinitionNode, table: FieldTable
    ) -> None:
        self.schema = walker.schema
        self.table = table
        self.walker = walker
        self.operation = operation

    def type(self, name: str) -> GraphQLObjectType:
        found = self.schema.get_type(name)
        assert isinstance(found, GraphQLObjectType), name
        return found

    def collect(
        self, nodes: list[FieldNode], parent: GraphQLObjectType
    ) -> dict[str, list[FieldNode]]:
        sets = tuple(n.selection_set for n in nodes if n.selection_set is not None)
        fields = self.walker.collect(sets, parent)
        if len(fields) > MAX_KEYS:
            raise NotCompilable(f"more than {MAX_KEYS} fields in one {parent.name}")
        return fields

    def plan(self) -> Plan:
        if self.operation.operation is not OperationType.QUERY:
            raise NotCompilable("not a query")
        query = self.schema.query_type
        assert query is not None
        fields = self.walker.collect((self.operation.selection_set,), query)
        planned: list[tuple[str, Any]] = []
        for key, nodes in fields.items():
            name = nodes[0].name.value
            if name == "__typename":
                planned.append((key, Const(query.name)))
            elif name == "customers":
                planned.append((key, self.connection(nodes, query.fields[name], "Customer")))
            elif name in ("customer", "node") and any(
                argument.name.value == "asOf" for argument in nodes[0].arguments or ()
            ):
                # a record as it was is rebuilt from the audit trail in Python
                # (crmgraph.schema.history): the resolvers answer it
                planned.append((key, Fallback()))
            elif name in ("customer", "node"):
                arguments = Arguments(query.fields[name], nodes[0])
                by_id = CustomerById(arguments, self.customer(nodes), node=name == "node")
                planned.append((key, by_id))
            elif name == "nodes":
                arguments = Arguments(query.fields[name], nodes[0])
                planned.append((key, CustomersByIds(arguments, self.customer(nodes))))
            else:
                planned.append((key, Fallback()))
        if all(isinstance(part, (Const, Fallback)) for _, part in planned) and any(
            isinstance(part, Fallback) for _, part in planned
        ):
            raise NotCompilable("nothing to read in SQL")
        return Plan(planned)

    def connection(
        self, nodes: list[FieldNode], definition: GraphQLField, node_type: str
    ) -> Connection:
        conn_type = self.type(f"{node_type}Connection")
        connection = Connection(node_type, Arguments(definition, nodes[0]), [])
        for key, children in self.collect(nodes, conn_type).items():
            name = children[0].name.value
            if name == "__typename":
                connection.parts.append((key, Const(conn_type.name)))
            elif name == "totalCount" and node_type == "Customer":
                connection.parts.append((key, "totalCount"))
            elif name == "edges":
                connection.parts.append((key, self.edges(children, node_type, connection)))
            elif name == "nodes":
                connection.nodes.append(self.node_object(children, node_type))
                connection.parts.append((key, Nodes(len(connection.nodes) - 1)))
            elif name == "pageInfo":
                connection.parts.append((key, self.page_info(children)))
            else:
                raise NotCompilable(f"{conn_type.name}.{name}")
        return connection

    def edges(self, nodes: list[FieldNode], node_type: str, connection: Connection) -> Edges:
        edge_type = self.type(f"{node_type}Edge")
        edges = Edges([])
        for key, children in self.collect(nodes, edge_type).items():
            name = children[0].name.value
            if name == "__typename":
                edges.parts.append((key, Const(edge_type.name)))
            elif name == "cursor":
                edges.parts.append((key, "cursor"))
            elif name == "node":
                connection.nodes.append(self.node_object(children, node_type))
                edges.parts.append((key, ("node", len(connection.nodes) - 1)))
            else:
                raise NotCompilable(f"{edge_type.name}.{name}")
        return edges

    def page_info(self, nodes: list[FieldNode]) -> PageInfoPlan:
        info = PageInfoPlan([])
        for key, children in self.collect(nodes, self.type("PageInfo")).items():
            info.parts.append((key, children[0].name.value))
        return info

    def node_object(self, nodes: list[FieldNode], node_type: str) -> ObjectPlan:
        if node_type == "Customer":
            return self.customer(nodes)
        return self.simple(nodes, self.type(node_type), self.table.interaction)

    def simple(
        self,
        nodes: list[FieldNode],
        parent: GraphQLObjectType,
        scalars: dict[str, Scalar],
        relations: Mapping[str, tuple[str, str, dict[str, Scalar]]] | None = None,
    ) -> ObjectPlan:
        """An object of one type: its columns, and ``relations`` (field ->
        table, column holding its id, the related type's columns)."""
        fields: list[tuple[str, Any]] = []
        for key, children in self.collect(nodes, parent).items():
            name = children[0].name.value
            if name == "__typename":
                fields.append((key, Const(parent.name)))
            elif name in scalars:
                fields.append((key, Value(scalars[name])))
            elif relations and name in relations:
                table, column, columns = relations[name]
                related = get_named_type(parent.fields[name].type)
                assert isinstance(related, GraphQLObjectType)
                fields.append((key, Single(table, column, self.simple(children, related, columns))))
            else:
                raise NotCompilable(f"{parent.name}.{name}")
        return ObjectPlan([Variant(None, fields)])

    def consents(self, nodes: list[FieldNode]) -> ObjectPlan:
        recorded_by = {"recordedBy": ("crm_user", "recorded_by", USER)}
        return self.simple(nodes, self.type("Consent"), self.table.consent, recorded_by)

    def customer(self, nodes: list[FieldNode]) -> ObjectPlan:
        return self.by_type(nodes, self.table.concrete, self.customer_fields)

    def by_type(
        self,
        nodes: list[FieldNode],
        types: Mapping[str, tuple[str, dict[str, Scalar]]],
        fields_of: Callable[[list[FieldNode], GraphQLObjectType], list[tuple[str, Any]]],
    ) -> ObjectPlan:
        """An object of an interface (``types``: its concrete types, each its
        kind and attribute fields): one variant per group of concrete types
        that select the same fields."""
        groups: dict[tuple, tuple[list[str], str]] = {}
        for type_name, (kind, attributes) in types.items():
            fields = self.collect(nodes, self.type(type_name))
            signature = tuple(
                (
                    key,
                    tuple(id(n) for n in found),
                    type_name if found[0].name.value in attributes else None,
                )
                for key, found in fields.items()
            )
            groups.setdefault(signature, ([], type_name))[0].append(kind)
        # a field planned from the same nodes, not an attribute of one type, is
        # one part in every variant: the statement computes it once per row
        # (Render.object), not once per variant
        planned_once: dict[tuple, Any] = {}
        variants = []
        for signature, (kinds, type_name) in groups.items():
            fields = fields_of(nodes, self.type(type_name))
            for n, ((key, ids, attribute_of), (_, part)) in enumerate(
                zip(signature, fields, strict=True)
            ):
                if attribute_of is None:
                    fields[n] = (key, planned_once.setdefault((key, ids), part))
            variants.append(Variant(tuple(kinds), fields))
        return ObjectPlan(variants)

    def typename(self, types: Mapping[str, tuple[str, dict[str, Scalar]]]) -> Value:
        """``__typename`` of an object of a variant that may stand for several types."""
        return Value(mapped(lambda a: f"{a}.kind", [(k, n) for n, (k, _) in types.items()], ""))

    def customer_fields(
        self, nodes: list[FieldNode], concrete: GraphQLObjectType
    ) -> list[tuple[str, Any]]:
        _, attributes = self.table.concrete[concrete.name]
        planned: list[tuple[str, Any]] = []
        for key, children in self.collect(nodes, concrete).items():
            name = children[0].name.value
            definition = concrete.fields.get(name)
            if name == "__typename":
                planned.append((key, self.typename(self.table.concrete)))
            elif name in self.table.customer:
                planned.append((key, Value(self.table.customer[name])))
            elif name in attributes:
                planned.append((key, Value(attributes[name])))
            elif name == "owner":
                planned.append(
                    (
                        key,
                        Single("crm_user", "owner", self.simple(children, self.type("User"), USER)),
                    )
                )
            elif name == "team":
                planned.append(
                    (key, Single("team", "team", self.simple(children, self.type("Team"), TEAM)))
                )
            elif name == "contacts":
                contact = self.simple(children, self.type("Contact"), CONTACT)
                planned.append((key, ListOf("contact", CONTACT_ORDER, contact)))
            elif name == "needs" and definition is not None:
                need = self.simple(children, self.type("Need"), NEED)
                planned.append(
                    (key, ListOf("need", NEED_ORDER, need, Arguments(definition, children[0])))
                )
            elif name == "interactions" and definition is not None:
                planned.append((key, self.connection(children, definition, "Interaction")))
            elif name == "consents":
                # the statements in force (privacy.consent.in_force), in id order
                consents = self.consents(children)
                newest = "contact, channel, purpose"
                planned.append((key, ListOf("consent_change", "id", consents, latest_per=newest)))
            elif name == "consentHistory":
                consents = self.consents(children)
                planned.append((key, ListOf("consent_change", "id DESC", consents)))
            elif name == "stageHistory":
                planned.append((key, self.stage_history(children)))
            elif name == "roles":
                planned.append((key, self.roles(children)))
            elif definition is not None:
                planned.append((key, Fallback()))
            else:
                raise NotCompilable(f"{concrete.name}.{name}")
        return planned

    def stage_history(
        self, nodes: list[FieldNode], keys: tuple[tuple[str, str], ...] = OF_CUSTOMER
    ) -> ListOf:
        """``stageHistory`` of a customer (every kind's moves) or, with
        ``OF_ROLE``, of one role (its kind's)."""
        change = self.simple(nodes, self.type("StageChange"), STAGE_CHANGE)
        return ListOf("stage_change", STAGE_HISTORY_ORDER, change, keys=keys)

    def roles(self, nodes: list[FieldNode]) -> Roles | Fallback:
        """``Customer.roles``, or, when some field below it is not read from a
        column (one a resolver computes), the whole list for the executor."""
        try:
            return Roles(self.by_type(nodes, self.table.roles, self.role_fields))
        except NotCompilable:
            return Fallback()

    def role_fields(
        self, nodes: list[FieldNode], concrete: GraphQLObjectType
    ) -> list[tuple[str, Any]]:
        _, attributes = self.table.roles[concrete.name]
        planned: list[tuple[str, Any]] = []
        for key, children in self.collect(nodes, concrete).items():
            name = children[0].name.value
            if name == "__typename":
                planned.append((key, self.typename(self.table.roles)))
            elif name in self.table.role:
                planned.append((key, Value(self.table.role[name])))
            elif name in attributes:
                planned.append((key, Value(attributes[name])))
            elif name == "stageHistory":
                planned.append((key, self.stage_history(children, OF_ROLE)))
            else:
                raise NotCompilable(f"{concrete.name}.{name}")
        return planned
