"""docs/reference/schema.md: every type, field, argument and enum value of
docs/schema.graphql (the SDL ``crmgraph schema`` prints, kept equal to it by
tests/test_schema_and_cli.py), with its description, read by graphql-core."""

from __future__ import annotations

from graphql import (
    GraphQLArgument,
    GraphQLEnumType,
    GraphQLField,
    GraphQLInputField,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLUnionType,
    build_schema,
    get_named_type,
    print_ast,
)
from graphql.pyutils import Undefined
from graphql.utilities import ast_from_value

from scripts.docs_reference import DOCS
from scripts.docs_reference.markdown import cell, header, table

BUILT_IN = {"String", "Int", "Float", "Boolean", "ID"}
SECTIONS: tuple[tuple[str, type[GraphQLNamedType]], ...] = (
    ("Objects", GraphQLObjectType),
    ("Interfaces", GraphQLInterfaceType),
    ("Unions", GraphQLUnionType),
    ("Input objects", GraphQLInputObjectType),
    ("Enums", GraphQLEnumType),
    ("Scalars", GraphQLScalarType),
)


def page() -> str:
    schema = build_schema((DOCS / "schema.graphql").read_text(encoding="utf-8"))
    roots = [t for t in (schema.query_type, schema.mutation_type, schema.subscription_type) if t]
    root_names = {t.name for t in roots}
    named = [
        t
        for name, t in sorted(schema.type_map.items())
        if not name.startswith("__") and name not in BUILT_IN and name not in root_names
    ]
    text = header(
        "GraphQL schema",
        "docs/schema.graphql",
        "Every type of the built-in schema with its fields, arguments and descriptions. "
        "Plugins add their own types and fields: a running server's `crmgraph schema` "
        "prints the schema with them. Type names link to their section.",
    )
    text += "".join(root_section(t) for t in roots)
    for title, kind in SECTIONS:
        members = [t for t in named if isinstance(t, kind)]
        if members:
            text += f"\n## {title}\n" + "".join(type_section(schema, t) for t in members)
    return text


def root_section(root: GraphQLObjectType) -> str:
    text = f"\n## {root.name}\n\n"
    for name, field in root.fields.items():
        text += f"### {root.name}.{name}\n\n`{name}{arguments_signature(field)}: "
        text += f"{field.type}`\n\n{description(field)}{arguments_table(field)}"
    return text


def type_section(schema: GraphQLSchema, t: GraphQLNamedType) -> str:
    text = f"\n### {t.name}\n\n{description(t)}"
    if isinstance(t, GraphQLObjectType | GraphQLInterfaceType):
        text += implementations(schema, t) + fields_table(t.fields)
    elif isinstance(t, GraphQLInputObjectType):
        text += fields_table(t.fields)
    elif isinstance(t, GraphQLUnionType):
        text += "One of: " + ", ".join(link(m.name) for m in t.types) + ".\n"
    elif isinstance(t, GraphQLEnumType):
        rows = [(f"`{n}`", v.description or "") for n, v in t.values.items()]
        text += table(("value", "description"), rows)
    elif isinstance(t, GraphQLScalarType) and t.specified_by_url:
        text += f"Specified by <{t.specified_by_url}>.\n"
    return text


def implementations(schema: GraphQLSchema, t: GraphQLObjectType | GraphQLInterfaceType) -> str:
    text = ""
    if t.interfaces:
        text += "Implements " + ", ".join(link(i.name) for i in t.interfaces) + ".\n\n"
    if isinstance(t, GraphQLInterfaceType):
        found = schema.get_implementations(t)
        members = sorted(x.name for x in (*found.objects, *found.interfaces))
        if members:
            text += "Implemented by " + ", ".join(link(m) for m in members) + ".\n\n"
    return text


def fields_table(
    fields: dict[str, GraphQLField] | dict[str, GraphQLInputField],
) -> str:
    rows = []
    for name, field in fields.items():
        about = field.description or ""
        if isinstance(field, GraphQLField) and field.args:
            about += " Arguments: " + "; ".join(argument_text(n, a) for n, a in field.args.items())
        if field.deprecation_reason:
            about += f" Deprecated: {field.deprecation_reason}"
        rows.append((f"`{name}`", type_link(field.type) + default(field), about))
    return table(("field", "type", "description"), rows)


def arguments_signature(field: GraphQLField) -> str:
    if not field.args:
        return ""
    return "(" + ", ".join(f"{n}: {a.type}" for n, a in field.args.items()) + ")"


def arguments_table(field: GraphQLField) -> str:
    if not field.args:
        return ""
    rows = [
        (f"`{n}`", type_link(a.type) + default(a), a.description or "")
        for n, a in field.args.items()
    ]
    return table(("argument", "type", "description"), rows) + "\n"


def argument_text(name: str, arg: GraphQLArgument) -> str:
    text = f"`{name}: {arg.type}`{default(arg)}"
    return text + (f" ({cell(arg.description)})" if arg.description else "")


def default(value: GraphQLArgument | GraphQLInputField | GraphQLField) -> str:
    found = getattr(value, "default_value", Undefined)
    if found is Undefined:
        return ""
    shown = ast_from_value(found, value.type)  # type: ignore[union-attr]
    return f" = `{print_ast(shown) if shown is not None else 'null'}`"


def type_link(t: object) -> str:
    name = get_named_type(t).name  # type: ignore[arg-type]
    shown = f"`{t}`"
    return shown if name in BUILT_IN else f"[{shown}](#{name.lower()})"


def link(name: str) -> str:
    return f"[`{name}`](#{name.lower()})"


def description(thing: GraphQLNamedType | GraphQLField) -> str:
    return f"{thing.description.strip()}\n\n" if thing.description else ""
