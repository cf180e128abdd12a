"""``crmgraph privacy export|erase``: a person's data out as JSON, or erased,
from the command line (full access: no row scope). ``ID`` is a customer's
global ID or its number. Exit status: 0 done, 1 refused (the reasons on
stderr), 2 no such customer or user.

The work's modules are imported inside the commands so ``crmgraph --help``
stays fast."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from crmgraph.commands.common import migrate_database, settings_from_args, with_app_state
from crmgraph.ids import InvalidId, decode_id

if TYPE_CHECKING:
    from crmgraph.commands.common import CommandState


def add_parsers(sub: argparse._SubParsersAction) -> None:
    privacy = sub.add_parser("privacy", help="export or erase a person's data")
    commands = privacy.add_subparsers(dest="privacy", required=True)
    export = commands.add_parser("export", help="every record about a customer, as JSON")
    export.add_argument("customer", metavar="ID", help="global ID or number")
    export.add_argument("--output", type=Path, help="write it here (default: standard output)")
    export.set_defaults(func=cmd_export)
    erase = commands.add_parser("erase", help="erase a customer's personal data for good")
    erase.add_argument("customer", metavar="ID", help="global ID or number")
    erase.add_argument("--reason", required=True, help="why: the request's reference")
    erase.add_argument("--by", metavar="EMAIL", help="the user the erasure is recorded as by")
    erase.set_defaults(func=cmd_erase)


def customer_pk(text: str) -> int | None:
    if text.isdigit():
        return int(text)
    try:
        return decode_id(text, "Customer")[1]
    except InvalidId:
        return None


def cmd_export(args: argparse.Namespace) -> int:
    from crmgraph.db import queries, writes
    from crmgraph.privacy.export import export_document

    pk = customer_pk(args.customer)

    async def run(state: CommandState) -> bytes | None:
        async def load(customer: int) -> dict[str, Any] | None:
            rows = await queries.customers_by_ids(state.db, [customer])
            return rows[0] if rows else None

        row = await writes.survivor(await load(pk), load) if pk else None
        if row is None:
            return None
        document = await export_document(state.db, state.plugin_manager, row["id"])
        return orjson.dumps(document, option=orjson.OPT_INDENT_2)

    settings = settings_from_args(args)
    asyncio.run(migrate_database(settings))
    found = asyncio.run(with_app_state(settings, run))
    if found is None:
        print(f"error: no customer {args.customer}", file=sys.stderr)
        return 2
    if args.output:
        args.output.write_bytes(found + b"\n")
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(found.decode() + "\n")
    return 0


def cmd_erase(args: argparse.Namespace) -> int:
    from crmgraph.db import writes
    from crmgraph.privacy.erasure import Erasure, erase_personal_data
    from crmgraph.validation import UserInputError

    pk = customer_pk(args.customer)
    reason = args.reason.strip()

    async def run(state: CommandState) -> Erasure | str:
        db = state.db
        by = None
        if args.by:
            users = await db.fetch("SELECT id FROM crm_user WHERE email = {}", args.by)
            if not users:
                return f"no user with e-mail {args.by}"
            by = int(users[0]["id"])
        try:
            with writes.acting_as(by):
                return await db.run_transaction(  # as a mutation's: rerun after a deadlock
                    lambda: erase_personal_data(
                        db, state.plugin_manager, pk or 0, reason, lambda _: True, by
                    )
                )
        except UserInputError as exc:
            return "; ".join(f"{p.message} [{p.code}]" for p in exc.problems)

    if not reason:
        print("error: --reason must not be blank", file=sys.stderr)
        return 1
    settings = settings_from_args(args)
    asyncio.run(migrate_database(settings))
    done = asyncio.run(with_app_state(settings, run))
    if isinstance(done, str):
        print(f"error: {done}", file=sys.stderr)
        return 2 if "not found" in done or done.startswith("no user") else 1
    counts = ", ".join(f"{what} {count}" for what, count in sorted(done.counts.items()))
    print(f"erased customer {pk} and {len(done.customer_ids) - 1} merged into it: {counts}")
    return 0
