"""The schema is assembled from plugins, identically on every start; the CLI
prints it and lists what is loaded."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import graphql

from crmgraph.registry import Catalog, make_plugin_manager
from crmgraph.schema.build import build_schema
from crmgraph.settings import Settings
from tests.helpers import cli_in_process


def sdl() -> str:
    pm = make_plugin_manager(Settings(load_entry_points=False))
    schema, _ = build_schema(Catalog.from_plugin_manager(pm), pm)
    return schema.as_str()


def without_descriptions(text: str) -> str:
    """The SDL as graphql-core prints it with no description: an argument's
    description would print each argument of its field on a line of its own."""
    schema = graphql.build_schema(text)
    for type_ in schema.type_map.values():
        type_.description = None
        for field in getattr(type_, "fields", {}).values():
            field.description = None
            for argument in getattr(field, "args", {}).values():
                argument.description = None
        for value in getattr(type_, "values", {}).values():
            value.description = None
    return graphql.print_schema(schema)


def run_cli(*args: str, tmp_path: Path) -> str:
    env = {
        "PATH": "/usr/bin:/bin",
        "CRMGRAPH_LOAD_ENTRY_POINTS": "0",
        "CRMGRAPH_DATABASE_URL": f"sqlite:///{tmp_path}/cli.sqlite",
    }
    result = subprocess.run(
        [sys.executable, "-m", "crmgraph", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    )
    return result.stdout


def test_sdl_is_identical_across_builds_and_processes(tmp_path: Path) -> None:
    first = sdl()
    assert first == sdl()
    assert run_cli("schema", tmp_path=tmp_path).strip() == first.strip()


def test_sdl_has_the_core_api() -> None:
    text = without_descriptions(sdl())
    for fragment in (
        "interface Customer implements Node",
        "type Client implements Customer & Node",
        "customers(first: Int = 20, after: String = null, filter: CustomerFilter = null, "
        "orderBy: CustomerOrder = null): CustomerConnection!",
        "node(id: ID!, asOf: DateTime = null): Node",
        "createCustomer(input: CreateCustomerInput!): CreateCustomerPayload!",
        "logInteraction(input: LogInteractionInput!): InteractionPayload!",
        "type UserError",
    ):
        assert fragment in text, fragment


def run_cli_in_process(*args: str, tmp_path: Path) -> str:
    """:func:`run_cli`'s command by ``crmgraph.cli.main`` in this process
    (a process of its own is 1.5 s of imports; ``schema`` above runs in one
    with nothing but ``PATH`` in its environment)."""
    done = cli_in_process(f"sqlite:///{tmp_path}/cli.sqlite", *args)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_plugins_and_migrate_commands(tmp_path: Path) -> None:
    listing = run_cli_in_process("plugins", tmp_path=tmp_path)
    assert "crmgraph.plugins.client" in listing
    assert "Client" in listing
    out = run_cli_in_process("migrate", tmp_path=tmp_path)
    assert "migrated" in out
    assert (tmp_path / "cli.sqlite").exists()
    run_cli_in_process("migrate", tmp_path=tmp_path)  # idempotent


def test_committed_sdl_is_current() -> None:
    """docs/schema.graphql is the SDL of the built-in plugins; regenerate it with
    `CRMGRAPH_LOAD_ENTRY_POINTS=0 crmgraph schema > docs/schema.graphql`."""
    committed = (Path(__file__).parent.parent / "docs" / "schema.graphql").read_text()
    assert committed.strip() == sdl().strip()
