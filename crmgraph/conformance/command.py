"""``crmgraph plugin check [PACKAGE] [--against FILE | --save FILE]
[--allow-breaking] [--json]``: the conformance check on the command line.
Exit status 0 when every check passed, 1 when one failed, 2 on bad usage."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def cmd_plugin_check(args: argparse.Namespace) -> int:
    # here, not at the top: the whole app is imported only for this command
    from crmgraph.conformance.loading import installed
    from crmgraph.conformance.run import check_plugin

    targets = [args.package] if args.package else installed()
    if not targets:
        print("crmgraph plugin check: no plugin installed; name one", file=sys.stderr)
        return 2
    if len(targets) > 1 and (args.against or args.save):
        print("crmgraph plugin check: --against/--save need one PACKAGE", file=sys.stderr)
        return 2
    if args.against is not None and not args.against.is_file():
        print(f"crmgraph plugin check: {args.against} is not a file", file=sys.stderr)
        return 2
    reports = [check_plugin(t, args.against, args.allow_breaking, args.save) for t in targets]
    for report in reports:
        if args.json:
            print(report.as_json())
        else:
            report.print()
    return 0 if all(r.ok for r in reports) else 1


def add_parser(plugin_actions: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register ``check`` under ``crmgraph plugin``."""
    check = plugin_actions.add_parser(
        "check",
        help="check that a plugin keeps crmgraph's plugin contract",
        description="Load the plugin alone and with the built-ins, run the contract suite "
        "against each customer type it declares (temporary SQLite database), and diff its "
        "GraphQL schema against a saved SDL.",
    )
    check.add_argument(
        "package",
        nargs="?",
        help="module (my_plugin.plugin), entry point name or distribution; "
        "default: every installed plugin",
    )
    check.add_argument(
        "--against",
        type=Path,
        help="saved SDL to diff with (default: crmgraph-schema.graphql shipped in the package)",
    )
    check.add_argument("--save", type=Path, help="write the plugin's SDL here (at a release)")
    check.add_argument(
        "--allow-breaking", action="store_true", help="a breaking schema change is intended"
    )
    check.add_argument("--json", action="store_true", help="the report as JSON (for CI)")
    check.set_defaults(func=cmd_plugin_check)
