"""The ``crmgraph`` command: serve, migrate, schema, plugins, demo, report."""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, TypeVar

from crmgraph import scaffold
from crmgraph.commands import events as event_commands
from crmgraph.commands import privacy as privacy_commands
from crmgraph.commands import transfer as transfer_commands
from crmgraph.commands.common import (
    CommandState,
    migrate_database,
    settings_from_args,
    with_app_state,
)
from crmgraph.conformance import command as plugin_check

if TYPE_CHECKING:
    from crmgraph.analytics.report import ReportData
    from crmgraph.db.engine import Database
    from crmgraph.settings import Settings

T = TypeVar("T")


async def _seed_demo(settings: Settings, customers: int) -> str:
    from crmgraph.demo import has_data, seed_demo

    async def seed(state: CommandState) -> str:
        if await has_data(state.db):
            return "database already has customers; demo data not added"
        summary = await seed_demo(
            state.db, state.catalog, customers=customers, plugin_manager=state.plugin_manager
        )
        return f"demo data: {summary}"

    return await with_app_state(settings, seed)


DEMO_ADMIN_EMAIL = "demo-admin@crmgraph.example"


async def _demo_keys(db: Database) -> dict[str, str]:
    """Fresh keys for the demo administrator (created on first use) and, to
    try the other roles, for the first demo agent and viewer."""
    from crmgraph import auth

    if not await db.fetch("SELECT id FROM crm_user WHERE email = {}", DEMO_ADMIN_EMAIL):
        await auth.create_user(db, "Demo Admin", DEMO_ADMIN_EMAIL, "admin")
    keys = {"admin": await auth.create_key(db, DEMO_ADMIN_EMAIL, "serve --demo")}
    for role in ("agent", "viewer"):
        users = await db.fetch(
            "SELECT email FROM crm_user WHERE role = {} ORDER BY id LIMIT 1", role
        )
        if users:
            keys[role] = await auth.create_key(db, users[0]["email"], "serve --demo")
    return keys


def _auth_command(args: argparse.Namespace, call: Callable[[Database], Awaitable[T]]) -> T | None:
    """Run one user/key/team operation; an AuthError is printed, not raised."""
    from crmgraph import auth

    settings = settings_from_args(args)
    asyncio.run(migrate_database(settings))
    try:
        return asyncio.run(with_app_state(settings, lambda state: call(state.db)))
    except auth.AuthError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None


def _reply(result: T | None, said: Callable[[T], str]) -> int:
    """A user/key/team command's exit status: 2 when it was refused (None),
    else 0 once what it did, ``said(result)``, is printed."""
    if result is None:
        return 2
    print(said(result))
    return 0


def cmd_users_create(args: argparse.Namespace) -> int:
    from crmgraph import auth

    pk = _auth_command(args, lambda db: auth.create_user(db, args.name, args.email, args.role))
    return _reply(pk, lambda pk: f"user {pk} {args.email} ({args.role})")


def _rights_change(
    args: argparse.Namespace, change: Callable[[Database], Awaitable[None]]
) -> bool | None:
    """Run a change of someone's rights (role, teams), then tell the servers,
    whose cached principals hold the old rights. None if it was refused."""
    from crmgraph import auth_changes

    async def changed(db: Database) -> bool:
        await change(db)
        return True

    if _auth_command(args, changed) is None:
        return None
    asyncio.run(auth_changes.announce(settings_from_args(args), None))
    return True


def cmd_users_set_role(args: argparse.Namespace) -> int:
    from crmgraph import auth

    done = _rights_change(args, lambda db: auth.set_role(db, args.email, args.role))
    return _reply(done, lambda _: f"{args.email} is now {args.role}")


def cmd_keys_create(args: argparse.Namespace) -> int:
    from crmgraph import auth

    key = _auth_command(args, lambda db: auth.create_key(db, args.email, args.name))
    if key is None:
        return 2
    print(key)
    print("store it now: only its hash is kept", file=sys.stderr)
    return 0


def cmd_teams_create(args: argparse.Namespace) -> int:
    from crmgraph import auth

    pk = _auth_command(args, lambda db: auth.create_team(db, args.name))
    return _reply(pk, lambda pk: f"team {pk} {args.name}")


def cmd_teams_add(args: argparse.Namespace) -> int:
    from crmgraph import auth

    done = _rights_change(args, lambda db: auth.add_team_member(db, args.team, args.email))
    return _reply(done, lambda _: f"{args.email} is in team {args.team}")


def cmd_teams_list(args: argparse.Namespace) -> int:
    from crmgraph import auth

    rows = _auth_command(args, auth.list_teams) or []
    for row in rows:
        print(f"{row['name']:<24} {row['email'] or '(no members)'}")
    return 0


def cmd_keys_list(args: argparse.Namespace) -> int:
    from crmgraph import auth

    for row in asyncio.run(
        with_app_state(settings_from_args(args), lambda state: auth.list_keys(state.db))
    ):
        state = f"revoked {row['revoked_at']:%Y-%m-%d}" if row["revoked_at"] else "active"
        print(f"{row['prefix']}  {row['email']:<32} {row['role']:<8} {row['name']:<24} {state}")
    return 0


def cmd_keys_revoke(args: argparse.Namespace) -> int:
    from crmgraph import auth, auth_changes

    prefix = auth.split_key(args.key)[0] if auth.split_key(args.key) else args.key
    settings = settings_from_args(args)
    if not asyncio.run(with_app_state(settings, lambda state: auth.revoke_key(state.db, prefix))):
        print(f"error: no active key with prefix {prefix}", file=sys.stderr)
        return 2
    asyncio.run(auth_changes.announce(settings, prefix))  # servers' cached principals
    print(f"revoked {prefix}")
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    asyncio.run(migrate_database(settings))
    print(f"migrated {settings.database_url}")
    return 0


def cmd_prune(args: argparse.Namespace) -> int:
    """Delete what retention allows now (what the server also does in the background)."""
    from crmgraph import retention

    settings = settings_from_args(args)
    asyncio.run(migrate_database(settings))
    if args.dry_run:
        found = asyncio.run(
            with_app_state(settings, lambda state: retention.due(state.db, settings))
        )
        verb = "would prune"
    else:
        found = asyncio.run(
            with_app_state(settings, lambda state: retention.prune(state.db, settings))
        )
        verb = "pruned"
    print(
        f"{verb} {found.events} events (older than {settings.event_retention_days:g} days) and "
        f"{found.deliveries} webhook deliveries with their attempts "
        f"(finished more than {settings.webhook_log_retention_days:g} days ago)"
    )
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    asyncio.run(migrate_database(settings))
    print(asyncio.run(_seed_demo(settings, args.customers)))
    return 0


def graphiql_may_hold_key(host: str) -> bool:
    """Only a server bound to a loopback address puts the demo key in
    GraphiQL's page (which also checks that the browser is local): bound to
    any other address, a proxy on this machine or a misread header would be
    all that stands between the key and the network."""
    from crmgraph.graphiql import is_loopback_name

    return is_loopback_name(host)


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from crmgraph.observability.logs import log_config

    settings = settings_from_args(args)
    level = args.log_level or settings.log_level
    log_config(settings.log_format, level)  # a wrong format or level stops here, named
    if settings.tracing:  # here, not in each worker's traceback
        from crmgraph.observability.tracing import TracingUnavailable, check

        try:
            check()
        except TracingUnavailable as exc:
            print(f"crmgraph: {exc}", file=sys.stderr)
            return 2
    # Migrate (and seed) once here, not in every worker, so N workers never race.
    asyncio.run(migrate_database(settings))
    if args.demo:
        print(asyncio.run(_seed_demo(settings, args.demo_customers)))
        keys = asyncio.run(with_app_state(settings, lambda state: _demo_keys(state.db)))
        print(f"crmgraph: demo admin key: {keys['admin']}", flush=True)
        for role, what in (("agent", "sees only their customers"), ("viewer", "read-only")):
            if role in keys:
                print(f"crmgraph: demo {role} key ({what}): {keys[role]}", flush=True)
        os.environ["CRMGRAPH_GRAPHIQL_EXAMPLES"] = "1"  # GraphiQL opens with the example tabs
        if graphiql_may_hold_key(args.host):
            # GraphiQL's headers start with the admin's; its role switch offers all three
            os.environ["CRMGRAPH_GRAPHIQL_TOKEN"] = keys["admin"]
            os.environ["CRMGRAPH_GRAPHIQL_DEMO_KEYS"] = json.dumps(keys)
        else:
            print(
                f"crmgraph: --host {args.host} lets other machines in, so GraphiQL's page holds "
                'no key: paste one printed above into its Headers as {"Authorization": '
                '"Bearer <key>"}, or make one with: crmgraph keys create --email <user>',
                flush=True,
            )
    if not graphiql_may_hold_key(args.host):
        os.environ.pop("CRMGRAPH_GRAPHIQL_TOKEN", None)  # set by hand: not on this address
        os.environ.pop("CRMGRAPH_GRAPHIQL_DEMO_KEYS", None)
    os.environ["CRMGRAPH_DATABASE_URL"] = settings.database_url
    os.environ["CRMGRAPH_MIGRATE_ON_START"] = "0"
    host = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
    print(f"crmgraph: GraphiQL at http://{host}:{args.port}/graphql", flush=True)
    uvicorn.run(
        "crmgraph.app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=level.lower(),
        # each worker applies it before importing the app; crmgraph writes the
        # access lines itself (crmgraph.observability.logs.access_line)
        log_config=log_config(settings.log_format, level),
        access_log=False,
    )
    return 0


def cmd_settings(args: argparse.Namespace) -> int:
    from crmgraph import settings_doc

    print(settings_doc.markdown_table() if args.markdown else settings_doc.plain_text(), end="")
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    from crmgraph.registry import Catalog, make_plugin_manager
    from crmgraph.schema.build import build_schema

    pm = make_plugin_manager(settings_from_args(args))
    schema, _ = build_schema(Catalog.from_plugin_manager(pm), pm)
    sys.stdout.write(schema.as_str() + "\n")
    return 0


def cmd_plugins(args: argparse.Namespace) -> int:
    from crmgraph.registry import Catalog, make_plugin_manager

    catalog = Catalog.from_plugin_manager(make_plugin_manager(settings_from_args(args)))
    print("plugins:")
    for name in catalog.plugins:
        print(f"  {name}")
    print("customer types:")
    for registered in catalog.types:
        d = registered.descriptor
        stages = " → ".join(s.key for s in d.lifecycle.stages)
        print(f"  {d.key:<14} {d.graphql_name:<16} from {registered.plugin}  [{stages}]")
    return 0


def _moment(text: str, end: bool) -> datetime.datetime:
    """An ISO date (an end date is included: the period runs to the next
    midnight, UTC) or an ISO date-time (UTC unless it names an offset)."""
    try:
        day = datetime.date.fromisoformat(text)
    except ValueError:
        try:
            at = datetime.datetime.fromisoformat(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an ISO date or date-time: {text!r}") from None
        return at.astimezone(datetime.UTC) if at.tzinfo else at.replace(tzinfo=datetime.UTC)
    if end:
        day += datetime.timedelta(days=1)
    return datetime.datetime(day.year, day.month, day.day, tzinfo=datetime.UTC)


def _period_start(text: str) -> datetime.datetime:
    return _moment(text, end=False)


def _period_end(text: str) -> datetime.datetime:
    return _moment(text, end=True)


async def _gather_report(state: CommandState, args: argparse.Namespace) -> ReportData:
    from crmgraph.analytics import report

    scope, owner = await report.scope_for(
        state.db, state.catalog, args.kind, args.owner, args.starts_at, args.ends_at
    )
    return await report.gather(state.db, state.catalog, scope, owner=owner)


def cmd_report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from crmgraph.analytics import report_html, report_terminal
    from crmgraph.analytics.report import ReportError

    if args.starts_at and args.ends_at and args.starts_at >= args.ends_at:
        print("error: --from must come before --to", file=sys.stderr)
        return 2
    try:
        data = asyncio.run(
            with_app_state(settings_from_args(args), lambda state: _gather_report(state, args))
        )
    except ReportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    report_terminal.render(data, report_terminal.console())
    if args.html:
        try:
            Path(args.html).write_text(report_html.page(data), encoding="utf-8")
        except OSError as exc:
            print(f"error: cannot write {args.html}: {exc.strerror}", file=sys.stderr)
            return 2
        print(f"HTML report written to {args.html}", file=sys.stderr)
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="crmgraph", description="A plugin-first CRM GraphQL server.")
    p.add_argument("--database", help="database URL (default: $CRMGRAPH_DATABASE_URL or SQLite)")
    p.add_argument(
        "--create",
        action="store_true",
        help="let keys, users, teams, import and privacy create a SQLite file that is not there",
    )
    sub = p.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the server (migrates first)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument("--demo", action="store_true", help="seed demo data into an empty database")
    serve.add_argument("--demo-customers", type=int, default=3000)
    serve.add_argument(
        "--log-level",
        choices=("critical", "error", "warning", "info", "debug"),
        help="default: $CRMGRAPH_LOG_LEVEL or info",
    )
    serve.set_defaults(func=cmd_serve)

    sub.add_parser("migrate", help="bring the database schema up to date").set_defaults(
        func=cmd_migrate
    )
    prune = sub.add_parser(
        "prune",
        help="delete outbox events and webhook deliveries past retention "
        "($CRMGRAPH_EVENT_RETENTION_DAYS, $CRMGRAPH_WEBHOOK_LOG_RETENTION_DAYS)",
    )
    prune.add_argument("--dry-run", action="store_true", help="only count what is due")
    prune.set_defaults(func=cmd_prune)
    demo = sub.add_parser("demo", help="migrate and seed demo data into an empty database")
    demo.add_argument("--customers", type=int, default=3000)
    demo.set_defaults(func=cmd_demo)
    sub.add_parser("schema", help="print the GraphQL SDL").set_defaults(func=cmd_schema)
    every_setting = sub.add_parser("settings", help="list every CRMGRAPH_* setting")
    every_setting.add_argument("--markdown", action="store_true", help="as a Markdown table")
    every_setting.set_defaults(func=cmd_settings)
    sub.add_parser("plugins", help="list plugins and customer types").set_defaults(func=cmd_plugins)
    report = sub.add_parser(
        "report", help="print the lifecycle funnel and satisfaction; optionally an HTML report"
    )
    report.add_argument(
        "--kind", action="append", default=[], help="only this customer type (repeatable)"
    )
    report.add_argument("--owner", help="only customers owned by this user (id or e-mail)")
    report.add_argument(
        "--from", dest="starts_at", type=_period_start, help="period start (ISO date)"
    )
    report.add_argument(
        "--to",
        dest="ends_at",
        type=_period_end,
        help="period end (ISO date, included; default: now)",
    )
    report.add_argument(
        "--html", metavar="PATH", help="also write a self-contained HTML report with charts"
    )
    report.set_defaults(func=cmd_report)
    plugin_check.add_parser(scaffold.add_parser(sub))
    transfer_commands.add_parsers(sub)
    privacy_commands.add_parsers(sub)
    event_commands.add_parsers(sub)

    users = sub.add_parser("users", help="manage users").add_subparsers(dest="users", required=True)
    create_user = users.add_parser("create", help="add a user")
    create_user.add_argument("--name", required=True)
    create_user.add_argument("--email", required=True)
    create_user.add_argument(
        "--role", default="agent", choices=("admin", "manager", "agent", "viewer")
    )
    create_user.set_defaults(func=cmd_users_create)
    set_role = users.add_parser("set-role", help="change a user's role (open connections follow)")
    set_role.add_argument("--email", required=True)
    set_role.add_argument("--role", required=True, choices=("admin", "manager", "agent", "viewer"))
    set_role.set_defaults(func=cmd_users_set_role)

    teams = sub.add_parser("teams", help="manage teams (agents see their teams' customers)")
    team_cmds = teams.add_subparsers(dest="teams", required=True)
    create_team = team_cmds.add_parser("create", help="add a team")
    create_team.add_argument("name")
    create_team.set_defaults(func=cmd_teams_create)
    add_member = team_cmds.add_parser("add", help="put a user in a team")
    add_member.add_argument("team", help="the team's name")
    add_member.add_argument("--email", required=True, help="the user's e-mail")
    add_member.set_defaults(func=cmd_teams_add)
    team_cmds.add_parser("list", help="list teams and members").set_defaults(func=cmd_teams_list)

    keys = sub.add_parser("keys", help="manage API keys").add_subparsers(dest="keys", required=True)
    create_key = keys.add_parser("create", help="issue a key for a user (printed once)")
    create_key.add_argument("--email", required=True, help="the user's e-mail")
    create_key.add_argument("--name", default="api", help="what the key is for")
    create_key.set_defaults(func=cmd_keys_create)
    keys.add_parser("list", help="list keys (prefixes only)").set_defaults(func=cmd_keys_list)
    revoke = keys.add_parser("revoke", help="revoke a key at once")
    revoke.add_argument("key", help="the key or its prefix")
    revoke.set_defaults(func=cmd_keys_revoke)
    return p


# commands that change data; they refuse to create a new SQLite file without --create
CHANGES_DATA = frozenset({"keys", "users", "teams", "import", "privacy", "events"})


def refuse_new_database(args: argparse.Namespace) -> int | None:
    """2, saying why, when a command that changes data would create a new
    SQLite file (a mistyped path or the wrong directory would otherwise
    leave the data in a database nobody serves); None to go on."""
    if args.command not in CHANGES_DATA or args.create:
        return None
    settings = settings_from_args(args)
    if not settings.is_sqlite or settings.sqlite_path.exists():
        return None
    print(
        f"error: there is no database at {settings.sqlite_path}; give --database (or "
        "CRMGRAPH_DATABASE_URL) for the one you serve, or pass --create to make a new one",
        file=sys.stderr,
    )
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from crmgraph.settings import SettingsError  # lazy: --help has exited above

    try:
        refused = refuse_new_database(args)
        return refused if refused is not None else int(args.func(args) or 0)
    except SettingsError as exc:  # a bad CRMGRAPH_* value: its message names it, no traceback
        for line in str(exc).splitlines():
            print(f"crmgraph: {line}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
