"""``crmgraph plugin new NAME``: write a new partner plugin package.

The package is a working starting point, not a stub: one customer type with a
guarded transition, one query over the plugin's own table (piccolo app and
migration), tests that run against a real server through ``crmgraph.testing``,
and packaging with the entry point crmgraph discovers. Templates live in
``crmgraph/scaffold_templates/plugin`` as ``*.tmpl`` files (so neither ruff nor
pytest mistakes them for crmgraph's own code); ``__package__`` in a path and
``{{placeholder}}`` in a file are replaced.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import re
import sys
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$")
# Longer names would push generated lines past ruff's 100 columns.
MAX_NAME_LENGTH = 30
TEMPLATE_SUFFIX = ".tmpl"
PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")


class ScaffoldError(ValueError):
    pass


@dataclass(frozen=True)
class Names:
    """Every spelling of one plugin name the templates need."""

    name: str

    @property
    def package(self) -> str:
        return f"crmgraph_{self.name}"

    @property
    def distribution(self) -> str:
        return self.package.replace("_", "-")

    @property
    def type_name(self) -> str:
        return "".join(part.capitalize() for part in self.name.split("_"))

    @property
    def camel(self) -> str:
        head, *rest = self.name.split("_")
        return head + "".join(part.capitalize() for part in rest)

    def values(self) -> dict[str, str]:
        return {
            "name": self.name,
            "package": self.package,
            "distribution": self.distribution,
            "type_key": self.name,
            "type_name": self.type_name,
            "kind_enum": self.name.upper(),
            "input_field": self.camel,
            "table": f"{self.name}_note",
            "query_python": f"{self.name}_notes",
            "query_field": f"{self.camel}Notes",
            "migration_id": datetime.datetime.now().strftime("%Y-%m-%dT%H:%M:%S:%f"),
            "piccolo_version": importlib.metadata.version("piccolo"),
        }


def check_name(name: str) -> Names:
    if not NAME_PATTERN.match(name) or len(name) > MAX_NAME_LENGTH:
        raise ScaffoldError(
            f"{name!r}: a plugin name is snake_case (like acme_widgets), "
            f"at most {MAX_NAME_LENGTH} characters"
        )
    if name.startswith("crmgraph"):
        raise ScaffoldError(f"{name!r}: leave out the crmgraph prefix; it is added for you")
    names = Names(name)
    taken = builtin_names()
    if name in taken or names.type_name in taken:
        raise ScaffoldError(
            f"{name!r}: the customer type {name!r} (GraphQL {names.type_name}) would clash "
            "with one crmgraph already has"
        )
    return names


def builtin_names() -> set[str]:
    """Customer type keys and GraphQL names the built-in plugins and the core use."""
    from crmgraph.registry import RESERVED_GRAPHQL_NAMES, Catalog, make_plugin_manager
    from crmgraph.settings import Settings

    catalog = Catalog.from_plugin_manager(make_plugin_manager(Settings(load_entry_points=False)))
    taken = set(RESERVED_GRAPHQL_NAMES)
    for descriptor in catalog.customer_types:
        taken |= {descriptor.key, descriptor.graphql_name}
    return taken


def render(text: str, values: dict[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        return values[match.group(1)]

    return PLACEHOLDER.sub(replace, text)


def template_files(
    root: Traversable, prefix: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], Traversable]]:
    found = []
    for entry in sorted(root.iterdir(), key=lambda e: e.name):
        if entry.is_dir():
            if entry.name != "__pycache__":
                found += template_files(entry, (*prefix, entry.name))
        elif entry.name.endswith(TEMPLATE_SUFFIX):
            found.append(((*prefix, entry.name), entry))
    return found


def write_plugin(name: str, directory: Path | None = None) -> Path:
    """Write the package for plugin ``name`` into ``directory`` (default
    ``./crmgraph-NAME``), which must not exist or be empty; return it."""
    names = check_name(name)
    target = directory if directory is not None else Path.cwd() / names.distribution
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ScaffoldError(f"{target} already exists and is not empty")
    values = names.values()
    root = resources.files("crmgraph") / "scaffold_templates" / "plugin"
    for parts, template in template_files(root):
        # __dot__: a dotfile (.gitignore), kept visible to package-data globs
        relative = [
            part.replace("__package__", names.package).replace("__dot__", ".") for part in parts
        ]
        relative[-1] = relative[-1].removesuffix(TEMPLATE_SUFFIX)
        path = target.joinpath(*relative)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render(template.read_text(encoding="utf-8"), values), encoding="utf-8")
    return target


def cmd_plugin_new(args: argparse.Namespace) -> int:
    try:
        target = write_plugin(args.name, args.directory)
    except ScaffoldError as exc:
        print(f"crmgraph plugin new: {exc}", file=sys.stderr)
        return 2
    names = Names(args.name)
    print(f"wrote {names.distribution} to {target}")
    print("next:")
    print(f"  pip install -e '{target}[test]'")
    print(f"  pytest {target / 'tests'}")
    return 0


def add_parser(
    subparsers: argparse._SubParsersAction,  # type: ignore[type-arg]
) -> argparse._SubParsersAction:  # type: ignore[type-arg]
    """Register ``plugin new NAME [--directory DIR]`` on crmgraph's command line;
    return the ``plugin`` actions (``plugin check`` is added there)."""
    plugin = subparsers.add_parser("plugin", help="tools for plugin authors")
    actions = plugin.add_subparsers(dest="plugin_command", required=True)
    new = actions.add_parser(
        "new",
        help="write a new partner plugin package",
        description="Write a pip-installable crmgraph plugin: a customer type with a "
        "guarded transition, a query over its own table, tests and packaging.",
    )
    new.add_argument("name", help="snake_case, e.g. acme_widgets (package crmgraph_acme_widgets)")
    new.add_argument(
        "--directory",
        type=Path,
        default=None,
        help="where to write it (default: ./crmgraph-NAME); must be empty or absent",
    )
    new.set_defaults(func=cmd_plugin_new)
    return actions
