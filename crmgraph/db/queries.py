"""Read queries in portable SQL (PostgreSQL and SQLite), batched per customer
so a GraphQL request costs a fixed number of statements whatever its page size.

Placeholders are piccolo's ``{}``; values are bound, never formatted in, but
for the keys of closed sets (kinds, channels, directions) that pass a pattern:
those are written in, so that PostgreSQL plans for them (``kinds_in``,
``written_in``); and for a search's pattern on PostgreSQL, written in as an
escaped literal for the same reason (crmgraph.db.search).
Column and direction names come from closed sets defined here.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, overload

import orjson

from crmgraph import core_fields
from crmgraph.customer_types import KEY_PATTERN
from crmgraph.db import customer_counts, search, text_keys
from crmgraph.db.engine import Database

# The customer row every reader hands to SchemaTypes.customer: the resolvers'
# queries select it, the compiled reads (crmgraph.compiled.fields) build it in
# JSON. It holds the columns of the described fields (crmgraph.core_fields) and
# what the row carries besides: the owner and team (relations), the
# attributes and the customer it was merged into.
CUSTOMER_ROW_EXTRAS = ("owner", "team", "attributes", "merged_into")
CUSTOMER_FIELDS = tuple(
    dict.fromkeys((*core_fields.row_columns(core_fields.CUSTOMER), *CUSTOMER_ROW_EXTRAS))
)
CUSTOMER_STAGE_FIELDS = ("stage", "phase", "stage_entered_at")  # from customer_role
CUSTOMER_OWN_FIELDS = tuple(n for n in CUSTOMER_FIELDS if n not in CUSTOMER_STAGE_FIELDS)
CUSTOMER_OWN_COLUMNS = ", ".join(f"c.{name}" for name in CUSTOMER_OWN_FIELDS)
CUSTOMER_COLUMNS = f"{CUSTOMER_OWN_COLUMNS}, r.stage, r.phase, r.entered_at AS stage_entered_at"
# Every customer has exactly one role row for its kind (written with it,
# crmgraph.operations.new_customers; unique (customer, kind)), so this join
# finds one row per customer either way. LEFT, because then PostgreSQL drops
# it where no column of ``r`` is read (a page whose fields hold no stage): its
# join removal needs the unique index and an outer join. On the benchmark's
# data (issue 21) that halved the planning time of a compiled page of 20
# customers. SQLite keeps it (its omitted LEFT JOIN wants the index's columns
# NOT NULL) and walks ``c`` first, as it did with the inner join.
CUSTOMER_FROM = "customer c LEFT JOIN customer_role r ON r.customer = c.id AND r.kind = c.kind"

# Sort keys a client may order customers by: GraphQL enum value -> column.
# Names are ordered as people read them, case and accents aside, the same on
# both engines: by the stored sort key of crmgraph.db.text_keys.
CUSTOMER_SORT_COLUMNS = {
    "CREATED_AT": "created_at",
    "UPDATED_AT": "updated_at",
    "NAME": "name_sort",
}
# Sort columns holding text (the others are timestamps), for cursors.
TEXT_SORT_COLUMNS = frozenset({"name_sort"})
# A page of a customer list: the customer row and the name's sort key (its cursor).
CUSTOMER_LIST_COLUMNS = f"{CUSTOMER_COLUMNS}, c.name_sort"


def customer_cursor_scope(sort: str) -> str:
    """What a customers cursor names as its ordering. A name cursor holds the
    name's sort key (migration 0030); one made before, holding the name, names
    another scope and is refused (INVALID_CURSOR), not misread."""
    return "customers:NAME_SORT" if sort == "NAME" else f"customers:{sort}"


@overload
def read_timestamp(value: None) -> None: ...
@overload
def read_timestamp(value: datetime.datetime | str) -> datetime.datetime: ...
def read_timestamp(value: datetime.datetime | str | None) -> datetime.datetime | None:
    """A timestamp as read back. SQLite hands out the ISO text piccolo stored
    wherever it cannot see a declared column type (RETURNING, MIN/MAX, other
    expressions); PostgreSQL a datetime."""
    if value is None or isinstance(value, datetime.datetime):
        return value
    parsed = datetime.datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.UTC)


def load_json(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, (str, bytes)):
        return orjson.loads(value)
    return dict(value)


@dataclass
class Where:
    """A conjunction of SQL conditions with their bound values, built in order."""

    clauses: list[str] = field(default_factory=list)
    args: list[Any] = field(default_factory=list)

    def add(self, clause: str, *args: Any) -> None:
        self.clauses.append(clause)
        self.args.extend(args)

    def add_in(self, column: str, values: Sequence[Any]) -> None:
        self.add(f"{column} IN ({', '.join('{}' for _ in values)})", *values)

    def sql(self) -> str:
        return " AND ".join(self.clauses) if self.clauses else "1 = 1"


@dataclass(frozen=True)
class InteractionMatch:
    channels: tuple[str, ...] = ()
    directions: tuple[str, ...] = ()
    since: datetime.datetime | None = None
    until: datetime.datetime | None = None


@dataclass(frozen=True)
class CustomerScope:
    """The customers a caller may see when they may not see all: those they
    own and those assigned to one of their teams."""

    owner: int | None
    teams: frozenset[int]

    def sql(self, where: Where, alias: str = "c") -> None:
        parts, args = [], []
        if self.owner is not None:
            parts.append(f"{alias}.owner = {{}}")
            args.append(self.owner)
        if self.teams:
            teams = sorted(self.teams)
            parts.append(f"{alias}.team IN ({', '.join('{}' for _ in teams)})")
            args.extend(teams)
        where.add(f"({' OR '.join(parts)})" if parts else "1 = 0", *args)


@dataclass(frozen=True)
class CustomerQuery:
    """Everything a customers list can be filtered by, already validated."""

    kinds: tuple[str, ...] = ()
    # kinds match a role the party holds (any_role), or its primary kind only
    any_role: bool = False
    stages: tuple[str, ...] = ()
    phases: tuple[str, ...] = ()
    owner_ids: tuple[int, ...] = ()
    team_ids: tuple[int, ...] = ()
    search: str | None = None
    created_after: datetime.datetime | None = None
    created_before: datetime.datetime | None = None
    updated_after: datetime.datetime | None = None
    updated_before: datetime.datetime | None = None
    deleted: str = "ACTIVE"  # ACTIVE | DELETED | ALL
    has_interaction: InteractionMatch | None = None
    contact_search: str | None = None
    has_open_need: bool | None = None
    scope: CustomerScope | None = None  # None: every customer is visible
    ids: tuple[int, ...] = ()  # only these customers


def like_pattern(text: str) -> str:
    return f"%{text_keys.escape_like(text).lower()}%"


# What an interaction's channel or direction is: a GraphQL enum value
ENUM_VALUE = re.compile(r"[A-Z][A-Z0-9_]{0,62}")


def written_in(where: Where, column: str, values: Sequence[str]) -> None:
    """``column IN (...)`` with enum values (channels, directions) written in
    the text, anything else bound. Bound, PostgreSQL's generic plan reckons
    each value a tenth of the rows: for the benchmark's relation filter (issue
    21, EMAIL and PHONE are 44% of the interactions) that plan cost 47 against
    28 for the custom one, so close to the custom plan with its planning
    surcharge that a change of statistics sends every call back to a custom
    plan (0.25 ms of planning on a 0.07 ms statement). Written in, the generic
    plan costs 30: it is used from the sixth call on. Values are a closed
    set, so the statements stay few."""
    if all(ENUM_VALUE.fullmatch(value) for value in values):
        written = ", ".join(f"'{value}'" for value in values)
        where.add(f"{column} IN ({written})")
    else:
        where.add_in(column, values)


def interaction_conditions(where: Where, match: InteractionMatch, alias: str) -> None:
    if match.channels:
        written_in(where, f"{alias}.channel", match.channels)
    if match.directions:
        written_in(where, f"{alias}.direction", match.directions)
    if match.since is not None:
        where.add(f"{alias}.occurred_at >= {{}}", match.since)
    if match.until is not None:
        where.add(f"{alias}.occurred_at < {{}}", match.until)


# A further role a party holds (crmgraph.operations.roles.is_held): added and
# not ended (a row a conversion left behind is neither); migration 0037
# indexes these rows by kind.
FURTHER_ROLE = "held.added_at IS NOT NULL AND held.ended_at IS NULL"
# A role row the party holds: its primary kind's, or a further role's.
HELD_ROLE = f"(held.kind = c.kind OR ({FURTHER_ROLE}))"


def kind_list(where: Where, column: str, kinds: Sequence[str]) -> None:
    """``column IN (...)`` with the kinds written in the text, not bound.
    Kinds are few and their customers are not: a plan made for bound kinds
    (PostgreSQL's generic plan, used after five executions of a prepared
    statement) reckons each kind holds a ninth of the customers, and a page
    of a kind with few customers then walks the whole created_at index
    (4.6 ms against 0.06 ms for a kind with none, of 10,000 customers; issue
    21). Written in, each set of kinds is its own statement, with plans made
    for it. Anything that is not a kind key is bound as usual."""
    if all(KEY_PATTERN.fullmatch(kind) for kind in kinds):  # letters, digits, _
        written = ", ".join(f"'{kind}'" for kind in kinds)
        where.add(f"{column} IN ({written})")
    else:
        where.add_in(column, kinds)


def kinds_in(where: Where, kinds: Sequence[str], *, any_role: bool = False) -> None:
    """The customer's primary kind is one of ``kinds``; with ``any_role``, or
    it holds a further role of one of them: ``c.id IN`` the ids of those
    roles, which both engines read once (migration 0037's index, a few rows)
    and look up per customer in a hash or temporary index. Measured on
    PostgreSQL, 100,000 customers, 1,700 further roles: a page of 20 of a
    kind walks as the primary kind's does (0.2 ms common, 5-16 ms rare),
    where an EXISTS per customer probed ``customer_role`` for each customer
    walked (15-68 ms), and ``c.id = ANY(ARRAY(...))`` searched the array
    linearly per customer (29-42 ms); a count reads the table (as a common
    kind's does), no longer the kind index alone."""
    primary = Where()
    kind_list(primary, "c.kind", kinds)
    if not any_role:
        where.add(primary.sql(), *primary.args)
        return
    further = Where()
    kind_list(further, "held.kind", kinds)
    ids = f"SELECT held.customer FROM customer_role held WHERE {further.sql()} AND {FURTHER_ROLE}"
    where.add(f"({primary.sql()} OR c.id IN ({ids}))", *primary.args, *further.args)


def customer_where(q: CustomerQuery, *, sqlite: bool = False) -> Where:
    """``q`` as SQL over ``customer c`` (and ``r``, its role row). ``sqlite``:
    written for SQLite, whose searches then use its FTS5 trigram tables;
    without it a search is written for PostgreSQL's index (crmgraph.db.search)."""
    where = Where()
    if q.deleted == "ACTIVE":
        where.add("c.deleted_at IS NULL")
    elif q.deleted == "DELETED":
        where.add("c.deleted_at IS NOT NULL")
    if q.kinds:
        kinds_in(where, q.kinds, any_role=q.any_role)
    for column, wanted in (
        ("c.id", q.ids),
        ("r.stage", q.stages),
        ("r.phase", q.phases),
        ("c.owner", q.owner_ids),
        ("c.team", q.team_ids),
    ):
        if wanted:
            where.add_in(column, wanted)
    if q.scope is not None:
        q.scope.sql(where)
    # search and contactSearch match the folded copies (crmgraph.db.text_keys)
    # with the folded needle through each engine's search index (crmgraph.db.search)
    found = search.condition(search.CUSTOMERS, "c", q.search, sqlite) if q.search else None
    if found is not None:
        where.add(found[0], *found[1])
    for column, op, value in (
        ("created_at", ">=", q.created_after),
        ("created_at", "<", q.created_before),
        ("updated_at", ">=", q.updated_after),
        ("updated_at", "<", q.updated_before),
    ):
        if value is not None:
            where.add(f"c.{column} {op} {{}}", value)
    if q.has_interaction is not None:
        inner = Where()
        interaction_conditions(inner, q.has_interaction, "i")
        where.add(
            f"EXISTS (SELECT 1 FROM interaction i WHERE i.customer = c.id AND {inner.sql()})",
            *inner.args,
        )
    found = (
        search.condition(search.CONTACTS, "ct", q.contact_search, sqlite)
        if q.contact_search
        else None
    )
    if found is not None:
        where.add(f"c.id IN (SELECT ct.customer FROM contact ct WHERE {found[0]})", *found[1])
    if q.has_open_need is not None:
        exists = "EXISTS" if q.has_open_need else "NOT EXISTS"
        where.add(
            f"{exists} (SELECT 1 FROM need n WHERE n.customer = c.id "
            "AND n.status IN ('OPEN', 'IN_PROGRESS'))"
        )
    return where


def after_key(
    where: Where, column: str, pk_column: str, descending: bool, after: tuple[Any, int]
) -> None:
    """Keyset pagination: only rows after ``after`` (sort value, id) in the
    order (``column``, ``pk_column``), both ascending or both descending."""
    op = "<" if descending else ">"
    value, pk = after
    where.add(
        f"({column} {op} {{}} OR ({column} = {{}} AND {pk_column} {op} {{}}))", value, value, pk
    )


async def list_customers(
    db: Database,
    q: CustomerQuery,
    sort: str,
    descending: bool,
    limit: int,
    after: tuple[Any, int] | None,
) -> list[dict[str, Any]]:
    """One page of customers in keyset order (sort column, then id). Returns up
    to ``limit`` rows; callers ask for one more than they show to learn whether
    a next page exists."""
    column = CUSTOMER_SORT_COLUMNS[sort]
    where = customer_where(q, sqlite=db.is_sqlite)
    if after is not None:
        after_key(where, f"c.{column}", "c.id", descending, after)
    direction = "DESC" if descending else "ASC"
    sql = (
        f"SELECT {CUSTOMER_LIST_COLUMNS} FROM {CUSTOMER_FROM} WHERE {where.sql()} "
        f"ORDER BY c.{column} {direction}, c.id {direction} LIMIT {{}}"
    )
    return await db.fetch(sql, *where.args, limit)


def customer_count_from(q: CustomerQuery) -> str:
    """The FROM clause counting ``q``'s customers: the role row only for a
    stage or phase filter (one row per customer, see CUSTOMER_FROM)."""
    return CUSTOMER_FROM if q.stages or q.phases else "customer c"


def tally_where(q: CustomerQuery) -> Where | None:
    """``q`` over the maintained counts (crmgraph.db.customer_counts) when
    they answer it exactly, else None: count the customers."""
    if not customer_counts.answers(q):
        return None
    where = Where()
    for clause, args in customer_counts.conditions(q):
        where.add(clause, *args)
    return where


async def count_customers(db: Database, q: CustomerQuery) -> int:
    """How many customers ``q`` matches: a sum of a few maintained rows for
    the filters they answer, ``COUNT(*)`` otherwise."""
    tally = tally_where(q)
    if tally is not None:
        rows = await db.fetch(customer_counts.count_select(tally.sql()), *tally.args)
        return int(rows[0]["n"])
    where = customer_where(q, sqlite=db.is_sqlite)
    rows = await db.fetch(
        f"SELECT COUNT(*) AS n FROM {customer_count_from(q)} WHERE {where.sql()}", *where.args
    )
    return int(rows[0]["n"])


async def customers_by_ids(db: Database, ids: Sequence[int]) -> list[dict[str, Any]]:
    where = Where()
    where.add_in("c.id", ids)
    return await db.fetch(
        f"SELECT {CUSTOMER_COLUMNS} FROM {CUSTOMER_FROM} WHERE {where.sql()}", *where.args
    )


async def customers_holding(db: Database, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """:func:`customers_by_ids`' rows by id, each with ``held_kinds``: the
    kinds of the roles it holds, its primary kind first (one statement)."""
    where = Where()
    where.add_in("c.id", ids)
    rows = await db.fetch(
        f"SELECT {CUSTOMER_COLUMNS}, held.kind AS held_kind FROM {CUSTOMER_FROM} "
        f"LEFT JOIN customer_role held ON held.customer = c.id AND {HELD_ROLE} "
        f"WHERE {where.sql()} ORDER BY c.id, held.kind <> c.kind, held.id",
        *where.args,
    )
    found: dict[int, dict[str, Any]] = {}
    for row in rows:
        kind = row.pop("held_kind")
        customer = found.setdefault(row["id"], {**row, "held_kinds": []})
        if kind is not None:
            customer["held_kinds"].append(kind)
    return found


async def rows_by_column(
    db: Database, table: str, column: str, keys: Sequence[Any], order: str = "id"
) -> list[dict[str, Any]]:
    """All rows of ``table`` whose ``column`` is one of ``keys`` (one statement)."""
    where = Where()
    where.add_in(column, keys)
    return await db.fetch(
        f"SELECT * FROM {table} WHERE {where.sql()} ORDER BY {order}", *where.args
    )


async def relationships_of(db: Database, customer_ids: Sequence[int]) -> list[dict[str, Any]]:
    marks = ", ".join("{}" for _ in customer_ids)
    return await db.fetch(
        f"SELECT * FROM relationship WHERE from_customer IN ({marks}) OR to_customer IN ({marks}) "
        "ORDER BY id",
        *customer_ids,
        *customer_ids,
    )


async def interaction_pages(
    db: Database,
    customer_ids: Sequence[int],
    limit: int,
    match: InteractionMatch,
    before: tuple[datetime.datetime, int] | None,
) -> list[dict[str, Any]]:
    """Newest-first interactions of many customers in one statement: up to
    ``limit`` rows per customer, ranked with a window function."""
    where = Where()
    where.add_in("i.customer", customer_ids)
    interaction_conditions(where, match, "i")
    if before is not None:
        after_key(where, "i.occurred_at", "i.id", True, before)
    sql = (
        "SELECT * FROM (SELECT i.*, ROW_NUMBER() OVER (PARTITION BY i.customer "
        "ORDER BY i.occurred_at DESC, i.id DESC) AS rank_in_customer "
        f"FROM interaction i WHERE {where.sql()}) ranked WHERE rank_in_customer <= {{}} "
        "ORDER BY customer, occurred_at DESC, id DESC"
    )
    return await db.fetch(sql, *where.args, limit)


async def audit_page(
    db: Database, customer_pk: int, limit: int, before_id: int | None
) -> list[dict[str, Any]]:
    """A customer's audit entries, newest first (ids grow with time)."""
    where = Where()
    where.add("customer = {}", customer_pk)
    if before_id is not None:
        where.add("id < {}", before_id)
    return await db.fetch(
        f"SELECT * FROM audit_entry WHERE {where.sql()} ORDER BY id DESC LIMIT {{}}",
        *where.args,
        limit,
    )
