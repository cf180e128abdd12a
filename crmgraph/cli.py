"""The ``crmgraph`` command: serve, migrate, schema, plugins, demo."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence

from crmgraph import scaffold
from crmgraph.settings import Settings


def _settings(args: argparse.Namespace) -> Settings:
    settings = Settings.from_env()
    if getattr(args, "database", None):
        settings = settings.with_database(args.database)
    return settings


async def _migrate(settings: Settings) -> None:
    from crmgraph.db.engine import make_engine
    from crmgraph.db.migrate import catalog_apps, migrate
    from crmgraph.registry import Catalog, make_plugin_manager

    catalog = Catalog.from_plugin_manager(make_plugin_manager(settings))
    await migrate(make_engine(settings), catalog_apps(catalog))


async def _seed_demo(settings: Settings, customers: int) -> str:
    from crmgraph.app import build_state
    from crmgraph.demo import has_data, seed_demo

    state = build_state(settings)
    await state.db.start(settings)
    try:
        if await has_data(state.db):
            return "database already has customers; demo data not added"
        summary = await seed_demo(state.db, state.catalog, customers=customers)
        return f"demo data: {summary}"
    finally:
        await state.db.stop()


def cmd_migrate(args: argparse.Namespace) -> int:
    settings = _settings(args)
    asyncio.run(_migrate(settings))
    print(f"migrated {settings.database_url}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    settings = _settings(args)
    asyncio.run(_migrate(settings))
    print(asyncio.run(_seed_demo(settings, args.customers)))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    settings = _settings(args)
    # Migrate (and seed) once here, not in every worker, so N workers never race.
    asyncio.run(_migrate(settings))
    if args.demo:
        print(asyncio.run(_seed_demo(settings, args.demo_customers)))
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
        log_level=args.log_level,
        access_log=False,
    )
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    from crmgraph.registry import Catalog, make_plugin_manager
    from crmgraph.schema.build import build_schema

    pm = make_plugin_manager(_settings(args))
    schema, _ = build_schema(Catalog.from_plugin_manager(pm), pm)
    sys.stdout.write(schema.as_str() + "\n")
    return 0


def cmd_plugins(args: argparse.Namespace) -> int:
    from crmgraph.registry import Catalog, make_plugin_manager

    catalog = Catalog.from_plugin_manager(make_plugin_manager(_settings(args)))
    print("plugins:")
    for name in catalog.plugins:
        print(f"  {name}")
    print("customer types:")
    for registered in catalog.types:
        d = registered.descriptor
        stages = " → ".join(s.key for s in d.lifecycle.stages)
        print(f"  {d.key:<14} {d.graphql_name:<16} from {registered.plugin}  [{stages}]")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="crmgraph", description="A plugin-first CRM GraphQL server.")
    p.add_argument("--database", help="database URL (default: $CRMGRAPH_DATABASE_URL or SQLite)")
    sub = p.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the server (migrates first)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument("--demo", action="store_true", help="seed demo data into an empty database")
    serve.add_argument("--demo-customers", type=int, default=3000)
    serve.add_argument("--log-level", default="info")
    serve.set_defaults(func=cmd_serve)

    sub.add_parser("migrate", help="bring the database schema up to date").set_defaults(
        func=cmd_migrate
    )
    demo = sub.add_parser("demo", help="migrate and seed demo data into an empty database")
    demo.add_argument("--customers", type=int, default=3000)
    demo.set_defaults(func=cmd_demo)
    sub.add_parser("schema", help="print the GraphQL SDL").set_defaults(func=cmd_schema)
    sub.add_parser("plugins", help="list plugins and customer types").set_defaults(func=cmd_plugins)
    scaffold.add_parser(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
