"""How every write runs: the actor's permission, input problems before any
write, then the work in one transaction made for the actor (so the audit
entries it leaves name them)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

from crmgraph.access import CUSTOMER_WRITE
from crmgraph.db import writes
from crmgraph.db.engine import Database
from crmgraph.input_checks import forbidden_problem
from crmgraph.operations.actor import Actor
from crmgraph.validation import Problem, UserInputError

T = TypeVar("T")
U = TypeVar("U")

# Awaited with the written pk as the last step inside the transaction: what the
# caller reads there (a GraphQL payload's rows) is the state this write made.
Then = Callable[[int], Awaitable[object]]


async def nothing(pk: int) -> None:
    """The default :data:`Then`: read nothing more."""


async def run_operation(
    db: Database,
    actor: Actor,
    work: Callable[[], Awaitable[T]],
    *,
    permission: str | None,
    problems: Iterable[Problem] = (),
    forbidden_field: str | None = None,
    doing: str = "do this",
) -> T:
    """In order: an actor without ``permission`` is refused (one FORBIDDEN
    problem on ``forbidden_field``); input ``problems`` found before any write
    are raised as they are, nothing touched; otherwise ``work`` runs in one
    transaction (``Database.run_transaction``: run again after a deadlock, so
    ``work`` keeps no state from a failed attempt) made for the actor. A
    ``UserInputError`` raised in it rolls everything back and propagates."""
    if permission is not None and not actor.can(permission):
        raise UserInputError([forbidden_problem(forbidden_field, doing, permission)])
    found = list(problems)
    if found:
        raise UserInputError(found)
    with writes.acting_as(actor.user_id):
        return await db.run_transaction(work)


async def run_write(
    db: Database,
    actor: Actor,
    work: Callable[[], Awaitable[int]],
    then: Then,
    *,
    problems: Iterable[Problem] = (),
    permission: str = CUSTOMER_WRITE,
) -> int:
    """A write of a customer or of what hangs off one, run by
    :func:`run_operation`: ``work`` returns the pk written, and ``then`` is
    awaited with it last inside the transaction."""

    async def written() -> int:
        pk = await work()
        await then(pk)
        return pk

    return await run_operation(db, actor, written, permission=permission, problems=problems)


async def run_showing(
    db: Database,
    actor: Actor,
    work: Callable[[], Awaitable[T]],
    then: Callable[[U], Awaitable[object]],
    shown: Callable[[T], U],
    *,
    permission: str,
    problems: Iterable[Problem] = (),
) -> T:
    """:func:`run_write` for a write whose result is more than its pk (a row,
    a payload): ``then`` is awaited last inside the transaction with what
    ``shown`` takes from that result."""

    async def written() -> T:
        made = await work()
        await then(shown(made))
        return made

    return await run_operation(db, actor, written, permission=permission, problems=problems)
