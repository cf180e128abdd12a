"""A test plugin beside crmgraph-loyalty: records the loyalty plugin's events
its handlers are handed, and refuses (raises in ``crmgraph_after_transition``,
which runs after the loyalty plugin's) the move to ``active`` of a customer
whose name starts with "Refused", so the whole move, the loyalty plugin's
account and event with it, rolls back."""

from __future__ import annotations

import threading

from crmgraph import TransitionContext
from crmgraph.extension_points import Event
from crmgraph.hookspecs import hookimpl

received: list[Event] = []
lock = threading.Lock()


def record(event: Event) -> None:
    with lock:
        received.append(event)


@hookimpl
def crmgraph_event_handlers() -> dict:
    return {"loyalty.points_awarded": record, "loyalty.account_opened": record}


@hookimpl
def crmgraph_after_transition(ctx: TransitionContext) -> None:
    if ctx.customer.name.startswith("Refused") and ctx.to_stage == "active":
        raise RuntimeError("the downstream ledger refused the move")
