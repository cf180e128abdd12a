"""``crmgraph events failed|retry``: the outbox events the dispatcher gave up
on (a plugin event handler failed every attempt, ``CRMGRAPH_EVENT_MAX_ATTEMPTS``
of them spread over hours by the backoff), listed with their last error, and
handed out again with a fresh round of attempts once the handler is mended.
Exit status: 0 done, 2 when an ID given is not a given-up event (the others
are retried).

The work's modules are imported inside the commands so ``crmgraph --help``
stays fast."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import TYPE_CHECKING

from crmgraph.commands.common import migrate_database, settings_from_args, with_app_state

if TYPE_CHECKING:
    from crmgraph.commands.common import CommandState


def add_parsers(sub: argparse._SubParsersAction) -> None:
    events = sub.add_parser("events", help="outbox events the event handlers gave up on")
    commands = events.add_subparsers(dest="events", required=True)
    failed = commands.add_parser("failed", help="list given-up events, oldest first")
    failed.add_argument("--limit", type=int, default=100, help="at most this many (default 100)")
    failed.set_defaults(func=cmd_failed)
    retry = commands.add_parser("retry", help="hand given-up events to the handlers again")
    which = retry.add_mutually_exclusive_group(required=True)
    which.add_argument("ids", nargs="*", type=int, default=[], metavar="ID", help="event ids")
    which.add_argument("--all", action="store_true", help="every given-up event")
    retry.set_defaults(func=cmd_retry)


def cmd_failed(args: argparse.Namespace) -> int:
    from crmgraph.events import given_up

    settings = settings_from_args(args)
    asyncio.run(migrate_database(settings))

    async def run(state: CommandState) -> list[dict]:
        return await given_up(state.db, settings.event_max_attempts, args.limit)

    rows = asyncio.run(with_app_state(settings, run))
    for row in rows:
        error = " ".join(str(row["last_error"] or "").split())[:200]
        print(
            f"{row['id']}\t{row['type']}\tcustomer {row['customer'] or '-'}\t"
            f"{row['attempts']} attempts\t{row['created_at']}\t{error}"
        )
    print(f"{len(rows)} given-up events", file=sys.stderr)
    return 0


def cmd_retry(args: argparse.Namespace) -> int:
    from crmgraph.events import retry_given_up

    if not args.all and not args.ids:
        print("error: name event IDs or pass --all", file=sys.stderr)
        return 2
    settings = settings_from_args(args)
    asyncio.run(migrate_database(settings))
    ids = None if args.all else sorted(set(args.ids))

    async def run(state: CommandState) -> list[int]:
        return await retry_given_up(state.db, settings.event_max_attempts, ids)

    retried = asyncio.run(with_app_state(settings, run))
    print(f"{len(retried)} events to be handed to the event handlers again")
    missing = sorted(set(ids or ()) - set(retried))
    if missing:
        print(f"error: not given-up events: {', '.join(map(str, missing))}", file=sys.stderr)
        return 2
    return 0
