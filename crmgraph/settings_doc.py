"""The configuration reference, generated from the settings model.

docs/configuration.md and docs/deployment.md hold ``markdown_table()``
between ``<!-- settings:start -->`` and ``<!-- settings:end -->``; a test
keeps them equal, and ``python -m crmgraph.settings_doc FILE...`` rewrites
them. ``crmgraph settings`` prints the same table. Generated, not written, so
a new field cannot be left out and a default cannot drift from the code.
"""

from __future__ import annotations

import sys
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import annotated_types
from pydantic.fields import FieldInfo

from crmgraph.settings import Kind, Settings, env_name

START = "<!-- settings:start -->"
END = "<!-- settings:end -->"
HEADER = ("variable", "type", "default", "description")


def rows() -> list[tuple[str, str, str, str]]:
    """One row per setting, in the model's order: variable, type, default, description."""
    return [
        (env_name(name), kind(field), default(field), field.description or "")
        for name, field in Settings.model_fields.items()
    ]


def kind(field: FieldInfo) -> str:
    """The type as the person setting the variable writes it, with its range."""
    shown = next((meta.text for meta in field.metadata if isinstance(meta, Kind)), None)
    text = shown or _type_name(field.annotation)
    for meta in field.metadata:
        if isinstance(meta, annotated_types.Ge):
            text += f" ≥ {meta.ge:g}"
        elif isinstance(meta, annotated_types.Gt):
            text += f" > {meta.gt:g}"
    return text


def _type_name(annotation: Any) -> str:
    if typing.get_origin(annotation) is typing.Literal:
        return " or ".join(f"`{choice}`" for choice in typing.get_args(annotation))
    if typing.get_origin(annotation) in (types.UnionType, typing.Union):
        present = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        return _type_name(present[0])
    names = {bool: "flag", int: "integer", float: "number", str: "text"}
    return names.get(annotation, str(annotation))


def default(field: FieldInfo) -> str:
    """The default as the variable would spell it (flags as 1 / 0; none: —)."""
    value = field.get_default(call_default_factory=True)
    if isinstance(value, bool):
        return "`1`" if value else "`0`"
    if value in (None, (), {}):
        return "—"
    if isinstance(value, float):
        return f"`{value:g}`"
    return f"`{value}`"


def markdown_table() -> str:
    lines = [_markdown_row(HEADER), "|---|---|---|---|"]
    lines += [_markdown_row((f"`{row[0]}`", *row[1:])) for row in rows()]
    return "\n".join(lines) + "\n"


def _markdown_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def plain_text() -> str:
    """The table for a terminal: each variable, its default and type, its description."""
    blocks = [
        f"{variable} = {value.strip('`')}  ({shown.replace('`', '')})\n    {about.replace('`', '')}"
        for variable, shown, value, about in rows()
    ]
    return "\n".join(blocks) + "\n"


def embedded(text: str) -> str:
    """What a page holds between the markers (ValueError without them)."""
    _, start, rest = text.partition(START + "\n")
    inside, end, _ = rest.partition(END)
    if not start or not end:
        raise ValueError(f"no {START} ... {END} markers")
    return inside


def with_table(text: str) -> str:
    """``text`` with the generated table between its markers."""
    inside = embedded(text)
    return text.replace(START + "\n" + inside + END, START + "\n" + markdown_table() + END, 1)


def main(paths: Sequence[str]) -> int:
    """Rewrite each page's table; print the pages that changed."""
    for path in map(Path, paths):
        text = path.read_text(encoding="utf-8")
        updated = with_table(text)
        if updated != text:
            path.write_text(updated, encoding="utf-8")
            print(f"updated {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
