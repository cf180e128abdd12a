"""The API stays compatible for clients: the SDL the server builds (the
built-in plugins, no entry points: what ``CRMGRAPH_LOAD_ENTRY_POINTS=0
crmgraph schema`` prints) makes no breaking and no dangerous change against
the committed docs/schema.graphql, in graphql-core's terms
(``find_breaking_changes``, ``find_dangerous_changes``).

tests/test_schema_and_cli.py keeps the two texts equal; this test says, when
they differ, whether a client would break and how.
"""

from __future__ import annotations

from pathlib import Path

from graphql import (
    BreakingChange,
    BreakingChangeType,
    DangerousChange,
    DangerousChangeType,
    GraphQLSchema,
    build_schema,
    find_breaking_changes,
    find_dangerous_changes,
)

from crmgraph.registry import Catalog, make_plugin_manager
from crmgraph.schema.build import build_schema as build_crmgraph_schema
from crmgraph.settings import Settings

COMMITTED = Path(__file__).resolve().parent.parent / "docs" / "schema.graphql"


def built_sdl() -> str:
    pm = make_plugin_manager(Settings(load_entry_points=False))
    schema, _ = build_crmgraph_schema(Catalog.from_plugin_manager(pm), pm)
    return schema.as_str()


def changes(old: GraphQLSchema, new: GraphQLSchema) -> list[BreakingChange | DangerousChange]:
    return [*find_breaking_changes(old, new), *find_dangerous_changes(old, new)]


def described(found: list[BreakingChange | DangerousChange]) -> str:
    return "\n".join(f"  {change.type.name}: {change.description}" for change in found)


def test_the_built_schema_breaks_no_client_of_the_committed_one() -> None:
    committed = build_schema(COMMITTED.read_text(encoding="utf-8"))
    built = build_schema(built_sdl())
    found = changes(committed, built)
    assert found == [], (
        "the schema the server builds changes the committed docs/schema.graphql "
        f"in ways clients notice:\n{described(found)}"
    )


def test_the_check_sees_a_renamed_field_and_a_new_enum_value() -> None:
    committed = COMMITTED.read_text(encoding="utf-8")
    field = "\n  createCustomer("  # its argument is described: one per line
    enum = "\nenum UserErrorCode {\n"
    assert field in committed and enum in committed
    changed = committed.replace(field, field.replace("createCustomer", "addCustomer"))
    changed = changed.replace(enum, f"{enum}  SOMETHING_NEW\n")
    found = changes(build_schema(committed), build_schema(changed))
    assert [(change.type, change.description) for change in found] == [
        (BreakingChangeType.FIELD_REMOVED, "Field Mutation.createCustomer was removed."),
        (
            DangerousChangeType.VALUE_ADDED_TO_ENUM,
            "Enum value UserErrorCode.SOMETHING_NEW was added.",
        ),
    ]
    assert "FIELD_REMOVED: Field Mutation.createCustomer was removed." in described(found)
