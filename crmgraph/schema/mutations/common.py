"""What the GraphQL mutations share: reading an input object into plain
values, decoding global IDs, running a write for the caller and reading the
rows its payload shows inside the write's transaction."""

import contextlib
import enum
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import pluggy
import strawberry
from strawberry.types import Info

from crmgraph.access import CUSTOMER_WRITE
from crmgraph.db import writes
from crmgraph.db.engine import Database
from crmgraph.ids import InvalidId, decode_id
from crmgraph.input_checks import guarded_problems
from crmgraph.operations.actor import Actor
from crmgraph.operations.runner import Then
from crmgraph.registry import Catalog
from crmgraph.schema.loaders import NODE_TABLES
from crmgraph.schema.mutation_runner import actor_of, answer, run_mutation
from crmgraph.schema.user_errors import UserError
from crmgraph.validation import Errors, Problem

T = TypeVar("T")
D = TypeVar("D", contravariant=True)
R = TypeVar("R", covariant=True)


def given(value: Any) -> bool:
    return value is not strawberry.UNSET


def plain(value: Any) -> Any:
    return value.value if isinstance(value, enum.Enum) else value


def input_values(obj: Any) -> dict[str, Any]:
    """The fields a client actually sent in an input object (UNSET ones dropped)."""
    if obj is None or obj is strawberry.UNSET:
        return {}
    return {k: plain(val) for k, val in vars(obj).items() if given(val)}


def decode(errors: Errors, path: str, global_id: Any, type_name: str) -> int | None:
    if global_id is None or not given(global_id):
        return None
    try:
        return decode_id(str(global_id), type_name)[1]
    except InvalidId as exc:
        errors.add(path, f"{path}: {exc}", "INVALID_ID")
        return None


def decode_pk(errors: Errors, path: str, global_id: Any, type_name: str) -> int:
    """The pk a write applies to (0, no row, when the ID is not valid)."""
    return decode(errors, path, global_id, type_name) or 0


def guarded_input_problems(
    info: Info, type_name: str, path: str, sent: dict[str, Any], creating: bool
) -> list[Problem]:
    """FORBIDDEN for each guarded field of ``type_name`` the caller may not
    write among the input fields sent (:func:`input_values`: a field left out
    is UNSET and dropped; see :meth:`crmgraph.access.Access.denied_writes`
    for when a null writes); ``path`` prefixes the field."""
    return guarded_problems(info.context.access, type_name, path, sent, creating)


async def live(info: Info, pk: int, field: str = "id") -> dict[str, Any]:
    """The not-deleted customer a write applies to, if the caller may see it,
    read with its party lock held (a merged one is refused: MERGED)."""
    return await writes.live_customer(info.context.db, pk, field, info.context.access.sees)


# (loader, key) pairs a mutation's payload shows, given the written pk
ResultRows = Callable[[int], Sequence[tuple[str, Any]]]


def customer_rows(pk: int) -> list[tuple[str, Any]]:
    return [("customer", pk)]


def node_rows(type_name: str) -> ResultRows:
    return lambda pk: [("row", (type_name, pk))]


def no_rows(pk: int) -> list[tuple[str, Any]]:
    return []


def reading(info: Info, result_rows: ResultRows) -> Then:
    """What a write does last in its transaction: read the rows its payload
    shows, so a payload is the state this write made, never a later writer's."""

    async def then(pk: int) -> None:
        for loader_name, key in result_rows(pk):
            await fresh_row(info, loader_name, key)

    return then


async def run_write(
    info: Info,
    errors: Errors,
    work: Callable[[], Awaitable[int]],
    permission: str = CUSTOMER_WRITE,
    result_rows: ResultRows = customer_rows,
) -> tuple[int | None, list[UserError]]:
    """Check the caller's permission, then validate-then-write: nothing touches
    the database while input problems remain; ``work`` runs in one transaction
    made for the caller (its audit entries name them) and any UserInputError
    rolls it back. The rows the payload shows are read inside that transaction.

    ``work`` resolves the customers it writes to through :func:`live` (or
    :mod:`crmgraph.db.writes`' ``visible_customer``, ``locked_row``,
    ``lock_parties``), which take their party lock first; the transaction is
    run by ``Database.run_transaction``, which runs it again after a deadlock,
    so ``work`` must not keep state from a failed attempt."""
    then = reading(info, result_rows)

    async def written() -> int:
        pk = await work()
        await then(pk)
        return pk

    return await run_mutation(info, written, permission=permission, problems=errors.problems)


class Operation(Protocol[D, R]):
    """A core write of :mod:`crmgraph.operations`."""

    def __call__(
        self,
        db: Database,
        catalog: Catalog,
        pm: pluggy.PluginManager,
        actor: Actor,
        data: D,
        *,
        then: Then = ...,
    ) -> Awaitable[R]: ...


async def perform(
    info: Info,
    catalog: Catalog,
    operation: Operation[D, T],
    data: D,
    result_rows: ResultRows = customer_rows,
) -> tuple[T | None, list[UserError]]:
    """Run a core operation for the caller: its result and no errors, or None
    and its ``UserInputError`` as ``userErrors``. The rows its payload shows
    are read last inside its transaction; the event dispatcher is woken once
    it has committed, as :func:`~crmgraph.schema.mutation_runner.run_mutation`
    does."""
    ctx = info.context
    then = reading(info, result_rows)
    actor = actor_of(info)
    return await answer(
        info, operation(ctx.db, catalog, ctx.plugin_manager, actor, data, then=then)
    )


async def fresh_row(info: Info, loader_name: str, key: Any) -> Any:
    """Load after a write, bypassing anything this request cached before it;
    a node's row the write kept as it wrote it (``writes.insert(keep=True)``)
    is taken as it is, not read again."""
    loader = getattr(info.context.loaders, loader_name)
    with contextlib.suppress(KeyError):
        loader.clear(key)
    if loader_name == "row":
        type_name, pk = key
        table = NODE_TABLES[type_name]
        queue = info.context.db.guarding()
        if queue is not None and queue.keeps(table, pk):
            # a write that is still one statement stays one: its row is
            # the payload's once that statement is sent, before the commit
            queue.when_sent(table, pk, lambda row: loader.prime(key, row))
            return None
        written = await info.context.db.written_row(table, pk)
        if written is not None:
            loader.prime(key, written)
            return written
    return await loader.load(key)


async def written_row(info: Info, loader_name: str, key: Any) -> Any:
    """A row as the write left it (the write read it in its transaction)."""
    return await getattr(info.context.loaders, loader_name).load(key)


@dataclass(frozen=True)
class WrittenNode:
    """The node a mutation writes and how its payload shows it: the node's
    type name, its GraphQL object made from its row, the payload type and the
    payload's field holding it."""

    type_name: str
    show: Callable[[Any], Any]
    payload: type
    field: str


async def node_payload(
    info: Info, catalog: Catalog, operation: Operation[Any, int], data: Any, node: WrittenNode
) -> Any:
    """Run ``operation`` on ``data``; the payload shows the node it wrote, as
    the write left it, or no node and the operation's problems."""
    pk, problems = await perform(info, catalog, operation, data, node_rows(node.type_name))
    if pk is None:
        return node.payload(**{node.field: None}, user_errors=problems)
    row = await written_row(info, "row", (node.type_name, pk))
    return node.payload(**{node.field: node.show(row)}, user_errors=[])
