"""How a mutation runs, the core's and a plugin's alike: the caller's
permission, input problems before any write, one transaction made for the
caller (so the audit entries it leaves name them), ``UserInputError`` as
``userErrors``, and the event dispatcher woken once it has committed.

Plugins reach these through :mod:`crmgraph` (``run_mutation``,
``user_errors``, ``caller``, ``may``, ``require``); ``user_errors`` lives in
:mod:`crmgraph.schema.user_errors` and is re-exported here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

from strawberry.types import Info

from crmgraph.access import Access, forbidden
from crmgraph.operations.actor import Actor
from crmgraph.operations.runner import run_operation
from crmgraph.schema.user_errors import UserError, user_errors
from crmgraph.validation import Problem, UserInputError

__all__ = ["actor_of", "answer", "caller", "may", "require", "run_mutation", "user_errors"]

T = TypeVar("T")


def caller(info: Info) -> Access:
    """The caller's rights for this request: ``principal`` (user id, role,
    teams), ``can(permission)``, ``sees(customer_row)`` (row scope), ``scope``
    and ``denied_writes(type_name, sent)`` (guarded fields)."""
    return info.context.access


def actor_of(info: Info) -> Actor:
    """The caller as the operations (:mod:`crmgraph.operations`) take them."""
    return Actor.of(info.context.access, info.context.settings)


def may(info: Info, permission: str) -> bool:
    """Whether the caller's role holds ``permission``."""
    return caller(info).can(permission)


def require(info: Info, permission: str, doing: str) -> None:
    """Refuse a query the caller's role may not make: a GraphQL error with code
    ``FORBIDDEN`` (what the core's queries raise). Mutations report it as a
    ``userError`` instead: give :func:`run_mutation` the permission."""
    if not may(info, permission):
        raise forbidden(permission, doing)


async def run_mutation(
    info: Info,
    work: Callable[[], Awaitable[T]],
    *,
    permission: str | None,
    problems: Iterable[Problem] = (),
    forbidden_field: str | None = None,
    doing: str = "do this",
) -> tuple[T | None, list[UserError]]:
    """Run one mutation's ``work`` the way every core mutation runs.

    In order: a caller without ``permission`` gets one ``FORBIDDEN`` user
    error (on ``forbidden_field``); input ``problems`` found before any write
    are returned as they are, nothing touched; otherwise ``work`` runs in one
    transaction (``Database.run_transaction``: run again after a deadlock,
    so ``work`` keeps no state from a failed attempt) made for the caller, so
    audit entries written in it name them. A ``UserInputError`` raised in it
    rolls everything back and becomes the user errors. After the commit the
    event dispatcher is woken, so handlers, subscriptions and webhooks hear of
    the events now rather than at their next poll. Returns ``(result, [])``
    or ``(None, userErrors)``
    (:func:`crmgraph.operations.runner.run_operation`, then :func:`answer`)."""
    return await answer(
        info,
        run_operation(
            info.context.db,
            actor_of(info),
            work,
            permission=permission,
            problems=problems,
            forbidden_field=forbidden_field,
            doing=doing,
        ),
    )


async def answer(info: Info, write: Awaitable[T]) -> tuple[T | None, list[UserError]]:
    """Await a write (an operation of :mod:`crmgraph.operations`): ``(result,
    [])`` once it has committed, the event dispatcher woken so handlers,
    subscriptions and webhooks hear of its events now rather than at their
    next poll; or ``(None, userErrors)`` for the ``UserInputError`` that
    rolled it back."""
    try:
        result = await write
    except UserInputError as exc:
        return None, user_errors(exc)
    info.context.events.wake()
    return result, []
