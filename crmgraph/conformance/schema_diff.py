"""The plugin's GraphQL schema against the one its users saw: graphql-core's
``find_breaking_changes`` / ``find_dangerous_changes`` between a saved SDL and
the SDL crmgraph builds with the built-ins and the plugin loaded.

The whole schema is compared, not a slice of it: a client's query spans the
core and the plugin, and cutting out "the plugin's part" would hide a change
to a core type the plugin extends (a ``CustomerKind`` value, an attribute
input). Where the saved SDL comes from when none is given: a file
``crmgraph-schema.graphql`` inside the plugin's package, written at its last
release by ``crmgraph plugin check PACKAGE --save PATH`` and shipped with it
(package data), so the installed package carries the schema it was released
with.
"""

from __future__ import annotations

import importlib
from importlib import resources
from pathlib import Path

from graphql import build_schema, find_breaking_changes, find_dangerous_changes

from crmgraph.conformance.report import Report

RELEASED_SDL = "crmgraph-schema.graphql"


def released_sdl(module: str) -> Path | None:
    """The SDL the installed package shipped at its release, if it did."""
    package = module.rsplit(".", 1)[0] if "." in module else module
    try:
        importlib.import_module(package)
        candidate = resources.files(package) / RELEASED_SDL
    except (ImportError, TypeError):
        return None
    return Path(str(candidate)) if candidate.is_file() else None


def compare(report: Report, old_sdl: str, new_sdl: str, allow_breaking: bool) -> None:
    old, new = build_schema(old_sdl), build_schema(new_sdl)
    breaking = [f"{c.type.name}: {c.description}" for c in find_breaking_changes(old, new)]
    dangerous = [f"{c.type.name}: {c.description}" for c in find_dangerous_changes(old, new)]
    if breaking and not allow_breaking:
        report.failed("schema.breaking-changes", "breaking change: " + "; ".join(breaking))
    elif breaking:
        report.passed("schema.breaking-changes", "allowed: " + "; ".join(breaking))
    else:
        report.passed("schema.breaking-changes")
    if dangerous:
        # reported, not failed: an added enum value or argument default is a release note
        report.skipped("schema.dangerous-changes", "; ".join(dangerous))
    else:
        report.passed("schema.dangerous-changes")


def diff(
    report: Report, module: str, new_sdl: str, against: Path | None, allow_breaking: bool
) -> None:
    source = against or released_sdl(module)
    if source is None:
        report.skipped(
            "schema.breaking-changes",
            f"no saved SDL: give --against FILE, or ship {RELEASED_SDL} in the package "
            "(written by --save at release)",
        )
        return
    try:
        old_sdl = source.read_text(encoding="utf-8")
    except OSError as exc:
        report.failed("schema.breaking-changes", f"cannot read {source}: {exc}")
        return
    compare(report, old_sdl, new_sdl, allow_breaking)
