"""A plan and one request's arguments turned into one SQL statement and its
bound values.

Arguments are read the way the resolvers read them, with the same helpers:
strawberry converts them, ``check_first`` and ``decode_cursor`` check them,
``SchemaTypes.customer_query``/``interaction_match`` turn filters into the
queries of :mod:`crmgraph.db.queries`, whose ``customer_where`` and
``interaction_conditions`` write the SQL. Whatever a resolver would answer
with an error (a bad page size, cursor or ID) is not compiled: the resolver
path answers it, with its own error.
"""

from __future__ import annotations

import re
from typing import Any

from graphql import GraphQLError, GraphQLSchema
from graphql.execution.values import VariableValues, get_argument_values
from strawberry.types.arguments import convert_arguments

from crmgraph.compiled.dialect import Dialect, NotCompilable
from crmgraph.compiled.fields import ROW_KEY, customer_row
from crmgraph.compiled.plan import (
    Arguments,
    Connection,
    Const,
    CustomerById,
    CustomersByIds,
    Edges,
    Fallback,
    ListOf,
    Nodes,
    ObjectPlan,
    PageInfoPlan,
    Plan,
    Roles,
    Single,
    Value,
)
from crmgraph.db import customer_counts, queries
from crmgraph.db.writes import MAX_CHAIN
from crmgraph.ids import InvalidId, decode_id
from crmgraph.paging import SortDirection, check_first, decode_cursor

MARKER = re.compile("\x01(\\d+)\x02")
# a response key that can name a column as it is (quoted): GraphQL names
# within PostgreSQL's 63 bytes for an identifier
COLUMN_KEY = re.compile(r"[_A-Za-z][_0-9A-Za-z]{0,62}")
# a row of the merge chain that stands for the chain's first customer
SURVIVOR = f"(chain.merged_into IS NULL OR chain.depth = {MAX_CHAIN})"


def merge_chain(start: str, customers: str) -> str:
    """The recursive CTE ``chain(n, id, merged_into, depth)``: from each
    customer picked by ``customers`` (a clause after ``FROM customer c ...``;
    ``start``: its number), ``merged_into`` followed at most ``MAX_CHAIN``
    steps, as ``writes.survivor`` follows it for ``load_customer``."""
    return (
        f"chain(n, id, merged_into, depth) AS ("
        f"SELECT {start}, c.id, c.merged_into, 0 FROM {queries.CUSTOMER_FROM} {customers} "
        f"UNION ALL SELECT chain.n, c.id, c.merged_into, chain.depth + 1 "
        f"FROM {queries.CUSTOMER_FROM} JOIN chain ON c.id = chain.merged_into "
        f"WHERE chain.depth < {MAX_CHAIN})"
    )


# the parts read by a subquery of their own
NESTED = (Single, ListOf, Roles, Connection)


class ComputedOnce:
    """Parts selected once in a row aliased ``alias``: the select list, and
    each part's column (by the part's ``id``) as a value of an object."""

    def __init__(self, alias: str) -> None:
        self.alias = alias
        self.selected: list[str] = []
        self.columns: dict[int, str] = {}

    def add(self, part: Any, sql: str, dialect: Dialect) -> None:
        name = f"f{len(self.selected)}"
        self.selected.append(f"{sql} AS {name}")
        self.columns[id(part)] = dialect.embed_column(f"{self.alias}.{name}")

    @property
    def select(self) -> str:
        return ", ".join(self.selected)


class Render:
    """One request's rendering: bound values and unique table aliases."""

    def __init__(
        self,
        dialect: Dialect,
        schema: Any,
        variables: VariableValues,
        types: Any,
        scope: queries.CustomerScope | None,
        settings: Any,
    ) -> None:
        self.d = dialect
        self.schema = schema
        self.variables = variables
        self.types = types
        self.scope = scope
        self.settings = settings
        self.values: list[Any] = []
        self.aliases = 0

    # -- bound values, placed by marker so the text can be assembled in any order
    def bind(self, value: Any) -> str:
        self.values.append(value)
        return f"\x01{len(self.values) - 1}\x02"

    def where(self, where: queries.Where) -> str:
        parts = where.sql().split("{}")
        assert len(parts) == len(where.args) + 1
        out = [parts[0]]
        for value, part in zip(where.args, parts[1:], strict=True):
            out.append(self.bind(value))
            out.append(part)
        return "".join(out)

    def alias(self, prefix: str) -> str:
        self.aliases += 1
        return f"{prefix}{self.aliases}"

    def finish(self, sql: str) -> tuple[str, list[Any]]:
        if "\x01" in "".join(str(v) for v in self.values if isinstance(v, str)):
            raise NotCompilable("a bound value holds a marker character")
        ordered: list[Any] = []

        def place(match: re.Match[str]) -> str:
            ordered.append(self.values[int(match.group(1))])
            return self.d.placeholder(len(ordered))

        return MARKER.sub(place, sql), ordered

    # -- arguments
    def arguments(self, arguments: Arguments) -> dict[str, Any]:
        raw = get_argument_values(arguments.definition, arguments.node, self.variables)
        strawberry_field = arguments.definition.extensions["strawberry-definition"]
        return convert_arguments(
            raw,
            strawberry_field.arguments,
            scalar_registry=self.schema.schema_converter.scalar_registry,
            config=self.schema.config,
        )

    def page_size(self, first: int | None, default: int) -> int:
        try:
            return check_first(first, default, self.settings.max_page_size)
        except GraphQLError as error:
            raise NotCompilable(error.message) from None

    def cursor(self, after: str, scope: str, timestamp: bool) -> tuple[Any, int]:
        try:
            return decode_cursor(after, scope, timestamp=timestamp)
        except GraphQLError as error:
            raise NotCompilable(error.message) from None

    # -- the statement
    def plan(self, plan: Plan) -> str:
        pairs = []
        for key, part in plan.fields:
            if isinstance(part, Fallback):
                continue  # the executor resolves it
            if isinstance(part, Const):
                pairs.append((key, self.d.literal(part.text)))
            elif isinstance(part, CustomerById):
                pairs.append((key, self.customer_by_id(part)))
            elif isinstance(part, CustomersByIds):
                pairs.append((key, self.customers_by_ids(part)))
            else:
                pairs.append((key, self.d.embed(self.customers(part))))
        return f"SELECT {self.d.json_object(pairs)} AS data"

    def object(self, plan: ObjectPlan, alias: str) -> str:
        # the executor completes every object of a partial plan: each carries
        # its row, which gives the resolvers their parent and the type its name
        row = plan.partial
        if len(plan.variants) == 1:
            return self.fields(plan.variants[0].fields, alias, row)
        once = self.computed_once(plan, alias)
        whens = []
        for variant in plan.variants:
            kinds = self.d.literals(variant.kinds or ())
            built = self.fields(variant.fields, alias, row, once.columns)
            whens.append(f"WHEN {alias}.kind IN ({kinds}) THEN {built}")
        chosen = f"CASE {' '.join(whens)} END"
        if not once.columns:
            return chosen
        selected = f"SELECT {once.select}{self.d.kept_apart}"
        return self.d.embed(f"SELECT {chosen} FROM ({selected}) {once.alias}")

    def computed_once(self, plan: ObjectPlan, alias: str) -> ComputedOnce:
        """The nested reads that every variant of ``plan`` has (the planner
        gives them one part: ``Planner.by_type``), each selected once in a row
        of its own beside the variants. Inline, each variant repeated them:
        a customer of every type with its roles of every type was a statement
        of 430 KB that PostgreSQL planned in 90-370 ms."""
        first, *others = plan.variants
        once = ComputedOnce(self.alias("o"))
        if self.d.kept_apart is None:
            return once
        for _, part in first.fields:
            if isinstance(part, NESTED) and all(
                any(p is part for _, p in v.fields) for v in others
            ):
                once.add(part, self.field(part, alias), self.d)
        return once

    def fields(
        self,
        fields: list[tuple[str, Any]],
        alias: str,
        row: bool = False,
        computed: dict[int, str] | None = None,
    ) -> str:
        """``computed``: the columns of parts already selected (by ``id``)."""
        computed = computed or {}
        pairs = [
            (key, computed.get(id(part)) or self.field(part, alias))
            for key, part in fields
            if type(part) is not Fallback
        ]
        if row:
            pairs.append((ROW_KEY, customer_row(self.d, alias)))
        return self.d.json_object(pairs)

    def field(self, part: Any, alias: str) -> str:
        d = self.d
        if isinstance(part, Const):
            return d.literal(part.text)
        if isinstance(part, Value):
            return part.scalar(d, alias)
        if isinstance(part, Single):
            inner = self.alias("s")
            obj = self.object(part.object, inner)
            return d.embed(
                f"SELECT {obj} FROM {part.table} {inner} WHERE {inner}.id = {alias}.{part.column}"
            )
        if isinstance(part, ListOf):
            return d.embed(self.list_of(part, alias))
        if isinstance(part, Roles):
            return d.embed(self.roles(part, alias))
        if isinstance(part, Connection):
            return d.embed(self.interactions(part, alias))
        raise AssertionError(part)

    def list_of(self, part: ListOf, parent: str) -> str:
        inner = self.alias("l")
        element = self.object(part.object, inner)
        where = queries.Where()
        for column, parent_column in part.keys:
            where.add(f"{column} = {parent}.{parent_column}")
        if part.arguments is not None:  # needs(status:)
            status = self.arguments(part.arguments).get("status")
            if status:
                where.add_in("status", sorted({s.value for s in status}))
        if part.latest_per is None:
            rows = f"SELECT * FROM {part.table} WHERE {self.where(where)} ORDER BY {part.order}"
        else:
            newest = f"row_number() OVER (PARTITION BY {part.latest_per} ORDER BY id DESC)"
            rows = (
                f"SELECT * FROM (SELECT *, {newest} AS newest_rank FROM {part.table} "
                f"WHERE {self.where(where)}) t WHERE newest_rank = 1 ORDER BY {part.order}"
            )
        return f"SELECT {self.d.json_array(element, part.order)} FROM ({rows}) {inner}"

    def roles(self, part: Roles, parent: str) -> str:
        """The roles customer ``parent`` holds, as ``Customer.roles`` lists
        them: its ``customer_role`` rows of the kinds loaded that it holds
        (``queries.HELD_ROLE``: the primary kind's, and those added and not
        ended; a row a conversion left behind is neither), the primary first,
        then by id. A row carries what the role types read
        (``fields.role_fields``): ``role_rank`` 0 for the primary kind, whose
        ``added_at`` is null and whose attributes are the customer's own."""
        inner = self.alias("l")
        kinds = self.d.literals([kind for v in part.object.variants for kind in v.kinds or ()])
        primary = "held.kind = c.kind"
        rows = (
            "SELECT held.id, held.customer, held.kind, held.stage, held.phase, "
            "held.entered_at AS stage_entered_at, "
            f"CASE WHEN {primary} THEN 0 ELSE 1 END AS role_rank, "
            f"CASE WHEN {primary} THEN NULL ELSE held.added_at END AS added_at, "
            f"CASE WHEN {primary} THEN c.attributes ELSE held.attributes END AS attributes "
            "FROM customer_role held JOIN customer c ON c.id = held.customer "
            f"WHERE held.customer = {parent}.id AND held.kind IN ({kinds}) "
            f"AND {queries.HELD_ROLE} ORDER BY role_rank, held.id"
        )
        element = self.object(part.object, inner)
        return f"SELECT {self.d.json_array(element, 'role_rank, id')} FROM ({rows}) {inner}"

    def interactions(self, part: Connection, parent: str) -> str:
        args = self.arguments(part.arguments)
        limit = self.page_size(args.get("first"), self.settings.default_page_size)
        after = args.get("after")
        inner = self.alias("i")
        where = queries.Where()
        where.add(f"{inner}.customer = {parent}.id")
        queries.interaction_conditions(
            where, self.types.interaction_match(args.get("filter")), inner
        )
        if after:
            before = self.cursor(after, "interaction", timestamp=True)
            queries.after_key(where, f"{inner}.occurred_at", f"{inner}.id", True, before)
        order = "occurred_at DESC, id DESC"
        rows = (
            f"SELECT * FROM interaction {inner} WHERE {self.where(where)} "
            f"ORDER BY {inner}.occurred_at DESC, {inner}.id DESC LIMIT {limit + 1}"
        )
        row = self.alias("ir")
        return self.connection(
            part,
            rows,
            row,
            order,
            lambda a: self.d.cursor(
                "interaction", self.d.timestamp_json(f"{a}.occurred_at"), f"{a}.id"
            ),
            limit,
            after is not None,
            None,
        )

    def customer_by_id(self, part: CustomerById) -> str:
        """``load_customer``: follow ``merged_into`` (at most MAX_CHAIN steps) to
        a customer of a loaded type that the caller may see, else null. For
        ``node(id:)``, the ID of another type is the resolvers' (their loaders
        and visibility rules per type are not written in SQL)."""
        pk = self.customer_pk(self.arguments(part.arguments)["id"], part.node)
        if pk is None:
            return "NULL"
        chain = (
            f"WITH RECURSIVE {merge_chain('0', f'WHERE c.id = {self.bind(pk)}')} "
            f"SELECT id FROM chain WHERE {SURVIVOR} ORDER BY depth LIMIT 1"
        )
        row = self.alias("c")
        rows = (
            f"SELECT {queries.CUSTOMER_COLUMNS} FROM {queries.CUSTOMER_FROM} "
            f"WHERE c.id = ({chain}) AND {self.visible(part.object)}"
        )
        return self.d.embed(f"SELECT {self.object(part.object, row)} FROM ({rows}) {row}")

    def customer_pk(self, global_id: str, node: bool) -> int | None:
        """The customer's pk of an ID given to ``customer(id:)`` (``node``:
        ``node(id:)``/``nodes(ids:)``), None for an invalid ID (null)."""
        try:
            type_name, pk = decode_id(global_id, None if node else "Customer")
        except InvalidId:
            return None
        if type_name != "Customer":
            raise NotCompilable(f"node(id:) of a {type_name}")
        return pk

    def visible(self, plan: ObjectPlan) -> str:
        """The condition on a customer row (alias ``c``) that the caller may see
        it, as one of the types ``plan`` has variants for."""
        where = queries.Where()
        where.add_in("c.kind", [kind for v in plan.variants for kind in v.kinds or ()])
        if self.scope is not None:
            self.scope.sql(where)
        return self.where(where)

    def customers_by_ids(self, part: CustomersByIds) -> str:
        """``nodes(ids:)``: each ID as ``node(id:)`` answers it, in the order
        asked, all in one set (the IDs numbered, their merge chains followed
        together); more IDs than a page holds is the resolver's error."""
        ids = self.arguments(part.arguments)["ids"]
        if len(ids) > self.settings.max_page_size:
            raise NotCompilable("TOO_MANY_IDS")
        if not ids:
            return self.d.empty_array()
        pks = [self.customer_pk(global_id, True) for global_id in ids]
        numbered = ", ".join(f"({n}, CAST({self.bind(pk)} AS BIGINT))" for n, pk in enumerate(pks))
        row, seen, page = self.alias("c"), self.alias("v"), self.alias("n")
        rows = (
            f"SELECT {queries.CUSTOMER_COLUMNS} FROM {queries.CUSTOMER_FROM} "
            f"WHERE {self.visible(part.object)}"
        )
        # the survivors the caller sees, joined from the chain (a few rows), not
        # left-joined from every customer (SQLite would build that set first)
        visible = (
            f"SELECT chain.n, {self.object(part.object, row)} AS node FROM chain "
            f"JOIN ({rows}) {row} ON {row}.id = chain.id WHERE {SURVIVOR}"
        )
        found = (
            f"SELECT ids.n, {seen}.node FROM ids LEFT JOIN ({visible}) {seen} "
            f"ON {seen}.n = ids.n ORDER BY ids.n"
        )
        chain = merge_chain("ids.n", "JOIN ids ON c.id = ids.pk")
        element = self.d.embed_column(f"{page}.node")
        return self.d.embed(
            f"WITH RECURSIVE ids(n, pk) AS (VALUES {numbered}), {chain} "
            f"SELECT {self.d.json_array(element, f'{page}.n')} FROM ({found}) {page}"
        )

    def customers(self, part: Connection) -> str:
        args = self.arguments(part.arguments)
        limit = self.page_size(args.get("first"), self.settings.default_page_size)
        order = args.get("order_by")
        sort = order.field.value if order is not None else "CREATED_AT"
        descending = order is None or order.direction == SortDirection.DESC
        column = queries.CUSTOMER_SORT_COLUMNS[sort]
        scope = queries.customer_cursor_scope(sort)
        after = args.get("after")
        try:
            q = self.types.customer_query(args.get("filter"), self.scope)
        except GraphQLError as error:
            raise NotCompilable(error.message) from None
        where = queries.customer_where(q, sqlite=self.d.name == "sqlite")
        total = None
        if any(p == "totalCount" for _, p in part.parts):
            tally = queries.tally_where(q)  # the maintained counts, when they answer
            if tally is not None:
                total = f"({customer_counts.count_select(self.where(tally))})"
            else:
                source = queries.customer_count_from(q)
                total = f"(SELECT COUNT(*) FROM {source} WHERE {self.where(where)})"
        if after:
            cursor = self.cursor(after, scope, timestamp=column not in queries.TEXT_SORT_COLUMNS)
            queries.after_key(where, f"c.{column}", "c.id", descending, cursor)
        direction = "DESC" if descending else "ASC"
        rows = (
            f"SELECT {queries.CUSTOMER_LIST_COLUMNS} FROM {queries.CUSTOMER_FROM} "
            f"WHERE {self.where(where)} ORDER BY c.{column} {direction}, c.id {direction} "
            f"LIMIT {limit + 1}"
        )

        def cursor_of(a: str) -> str:
            if column in queries.TEXT_SORT_COLUMNS:
                value = self.d.text_json(f"{a}.{column}")
            else:
                value = self.d.timestamp_json(f"{a}.{column}")
            return self.d.cursor(scope, value, f"{a}.id")

        return self.connection(
            part,
            rows,
            self.alias("c"),
            f"{column} {direction}, id {direction}",
            cursor_of,
            limit,
            after is not None,
            total,
        )

    def connection(
        self,
        part: Connection,
        rows: str,
        row: str,
        order: str,
        cursor_of: Any,
        limit: int,
        after_given: bool,
        total: str | None,
    ) -> str:
        """The connection object over ``rows`` (the page and one more row,
        ordered): edges, nodes and pageInfo built from the first ``limit``."""
        d = self.d
        flat = self.record_page(part, rows, row, order, limit)
        if flat is not None:
            return flat
        page = self.alias("e")
        columns = [f"{self.object(node, row)} AS node{i}" for i, node in enumerate(part.nodes)]
        if part.needs_cursor:
            columns.append(f"{cursor_of(row)} AS cur")
        qualified = ", ".join(f"{row}.{term.strip()}" for term in order.split(","))
        columns.append(f"row_number() OVER (ORDER BY {qualified}) AS rn")
        in_page = f"{page}.rn <= {limit}"
        pairs = []
        for key, item in part.parts:
            if isinstance(item, Const):
                pairs.append((key, d.literal(item.text)))
            elif item == "totalCount":
                assert total is not None
                pairs.append((key, total))
            elif isinstance(item, Nodes):
                node = d.embed_column(f"{page}.node{item.index}")
                pairs.append((key, d.json_array(node, f"{page}.rn", in_page)))
            elif isinstance(item, Edges):
                edge = []
                for edge_key, edge_part in item.parts:
                    if isinstance(edge_part, Const):
                        edge.append((edge_key, d.literal(edge_part.text)))
                    elif edge_part == "cursor":
                        edge.append((edge_key, f"{page}.cur"))
                    else:
                        edge.append((edge_key, d.embed_column(f"{page}.node{edge_part[1]}")))
                pairs.append((key, d.json_array(d.json_object(edge), f"{page}.rn", in_page)))
            elif isinstance(item, PageInfoPlan):
                pairs.append((key, self.page_info(item, page, limit, after_given)))
        if not any(reads_rows(item) for _, item in part.parts):
            # nothing from the page's rows (totalCount, __typename, hasPreviousPage): no
            # aggregate, and no FROM, which would give a row per page row (and none
            # for an empty page; PostgreSQL refuses more than one as a value)
            return f"SELECT {d.json_object(pairs)}"
        return (
            f"SELECT {d.json_object(pairs)} FROM "
            f"(SELECT {', '.join(columns)} FROM ({rows}) {row} ORDER BY rn) {page}"
        )

    def record_page(
        self, part: Connection, rows: str, row: str, order: str, limit: int
    ) -> str | None:
        """The connection as ``{ nodes { ...flat fields } }`` alone asks it, on
        PostgreSQL: each of the first ``limit`` rows a record whose columns are
        named as the response keys, aggregated with ``json_agg`` in ``order``.
        No window function, no sort of the numbered rows and no JSON object
        built per row and key: on the benchmark's relation filter (issue 21,
        20 customers of id, name, email, kind) 0.087 -> 0.058 ms of execution.
        None where this does not apply (edges, pageInfo, totalCount, cursors,
        a node of several variants, a field for the executor, a key that is
        not a plain identifier): the general shape."""
        if not self.d.record_pages or part.needs_cursor:
            return None
        if any(not isinstance(item, (Const, Nodes)) for _, item in part.parts):
            return None
        if sum(isinstance(item, Nodes) for _, item in part.parts) != 1:
            return None
        (node,) = [part.nodes[item.index] for _, item in part.parts if isinstance(item, Nodes)]
        if node.partial or len(node.variants) != 1:
            return None
        columns = []
        for key, field_part in node.variants[0].fields:
            if type(field_part) is Fallback or not COLUMN_KEY.fullmatch(key):
                return None
            columns.append(f'{self.field(field_part, row)} AS "{key}"')
        if not columns:
            return None
        record, fetched = self.alias("n"), self.alias("p")
        qualified = ", ".join(f"{row}.{term.strip()}" for term in order.split(","))
        nodes = (
            f"(SELECT COALESCE(json_agg({record} ORDER BY {qualified}), '[]'::json) "
            f"FROM (SELECT * FROM ({rows}) {fetched} LIMIT {limit}) {row}, "
            f"LATERAL (SELECT {', '.join(columns)}) {record})"
        )
        pairs = [
            (key, self.d.literal(item.text) if isinstance(item, Const) else nodes)
            for key, item in part.parts
        ]
        return f"SELECT {self.d.json_object(pairs)}"

    def page_info(self, item: PageInfoPlan, page: str, limit: int, after_given: bool) -> str:
        d = self.d
        pairs = []
        for key, name in item.parts:
            if name == "__typename":
                pairs.append((key, d.literal("PageInfo")))
            elif name == "hasNextPage":
                pairs.append((key, d.boolean(f"count(*) > {limit}")))
            elif name == "hasPreviousPage":
                pairs.append((key, d.boolean("1 = 1" if after_given else "1 = 0")))
            elif name == "startCursor":
                first = f"{page}.rn = 1 AND {page}.rn <= {limit}"
                pairs.append((key, f"max(CASE WHEN {first} THEN {page}.cur END)"))
            elif name == "endCursor":
                pairs.append(
                    (key, d.last_text(f"{page}.cur", f"{page}.rn", f"{page}.rn <= {limit}"))
                )
            else:
                raise NotCompilable(f"PageInfo.{name}")
        return d.json_object(pairs)


# the pageInfo fields read from the page's rows (aggregates over them)
PAGE_ROW_FIELDS = frozenset({"hasNextPage", "startCursor", "endCursor"})


def reads_rows(item: Any) -> bool:
    """Whether a connection's part is built from its page's rows."""
    if isinstance(item, PageInfoPlan):
        return any(name in PAGE_ROW_FIELDS for _, name in item.parts)
    return isinstance(item, (Nodes, Edges))


def render(
    plan: Plan,
    dialect: Dialect,
    schema: GraphQLSchema,
    variables: VariableValues,
    types: Any,
    scope: queries.CustomerScope | None,
    settings: Any,
) -> tuple[str, list[Any]]:
    """The statement for ``plan`` with this request's arguments and caller."""
    renderer = Render(dialect, schema, variables, types, scope, settings)
    return renderer.finish(renderer.plan(plan))
