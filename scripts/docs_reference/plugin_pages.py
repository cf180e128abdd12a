"""docs/reference/hooks.md (every hookspec of crmgraph/hookspecs.py: its
signature and docstring) and docs/reference/public-api.md (every name
``crmgraph`` exports, grouped as crmgraph/__init__.py's ``_PUBLIC`` groups
them, with the first paragraph of its docstring). docs/plugins.md stays the
tutorial, with a worked example per hook."""

from __future__ import annotations

import ast
import inspect
import re

import crmgraph
from scripts.docs_reference import ROOT
from scripts.docs_reference.markdown import docstring, header, inline, table

HOOKSPECS = ROOT / "crmgraph" / "hookspecs.py"
INIT = ROOT / "crmgraph" / "__init__.py"


def hooks_page() -> str:
    tree = ast.parse(HOOKSPECS.read_text(encoding="utf-8"))
    specs = [node for node in tree.body if isinstance(node, ast.FunctionDef) and is_spec(node)]
    text = header(
        "Plugin hooks",
        "crmgraph/hookspecs.py",
        docstring(ast.get_docstring(tree, clean=False)).strip()
        + "\n\n[Writing a plugin](../plugins.md) builds a plugin step by step, with a worked "
        "example per hook; [the public API](public-api.md) lists what a plugin imports.",
    )
    text += "\n" + table(
        ("hook", "what it is for"), [(f"[`{s.name}`](#{s.name})", summary(s)) for s in specs]
    )
    for spec in specs:
        text += f"\n## {spec.name}\n\n```python\n{signature(spec)}\n```\n\n"
        text += docstring(ast.get_docstring(spec, clean=False))
    return text


def is_spec(node: ast.FunctionDef) -> bool:
    return any(
        (d.func if isinstance(d, ast.Call) else d).__dict__.get("id") == "hookspec"
        for d in node.decorator_list
    )


def signature(node: ast.FunctionDef) -> str:
    decorators = "".join(f"@{ast.unparse(d)}\n" for d in node.decorator_list)
    returns = f" -> {ast.unparse(node.returns)}" if node.returns else ""
    return f"{decorators}def {node.name}({ast.unparse(node.args)}){returns}: ..."


def summary(node: ast.FunctionDef | object) -> str:
    doc = ast.get_docstring(node) if isinstance(node, ast.FunctionDef) else inspect.getdoc(node)
    return inline(first_paragraph(doc or ""))


def first_paragraph(doc: str) -> str:
    return " ".join(doc.strip().split("\n\n")[0].split())


GROUP = re.compile(r"^\s*# (.+)$")
ENTRY = re.compile(r'^\s*"(\w+)": "([\w.]+)",')


def public_groups() -> list[tuple[str, list[tuple[str, str]]]]:
    """``_PUBLIC``'s names under the comments that head its groups."""
    source = INIT.read_text(encoding="utf-8")
    body = source.split("_PUBLIC: dict[str, str] = {", 1)[1].split("\n}", 1)[0]
    groups: list[tuple[str, list[tuple[str, str]]]] = []
    for line in body.splitlines():
        if found := GROUP.match(line):
            groups.append((found.group(1), []))
        elif (found := ENTRY.match(line)) and groups:
            groups[-1][1].append((found.group(1), found.group(2)))
    return groups


def public_api_page() -> str:
    text = header(
        "Public API",
        "crmgraph/__init__.py",
        "Everything a plugin imports comes from `crmgraph` (and, in its tests, "
        "`crmgraph.testing`, turned on with `-p crmgraph.testing`); other modules are internal "
        "and may change between releases. [Writing a plugin](../plugins.md#public-api) shows "
        "them in use.",
    )
    for title, names in public_groups():
        rows = [
            (f"`{name}`", kind(getattr(crmgraph, name)), about(getattr(crmgraph, name), module))
            for name, module in names
        ]
        text += f"\n## {title[0].upper() + title[1:]}\n\n" + table(
            ("name", "kind", "description"), rows
        )
    return text


def kind(obj: object) -> str:
    if inspect.isclass(obj):
        return "class"
    if inspect.iscoroutinefunction(obj):
        return "async function"
    if callable(obj):
        return "function"
    return f"constant `{obj!r}`"


def about(obj: object, module: str) -> str:
    own = obj.__doc__ if inspect.isclass(obj) or callable(obj) else None
    if inspect.isclass(obj) and own and own.startswith(obj.__name__ + "("):
        own = None  # the signature a dataclass writes for itself
    if own is not None and own == getattr(type(obj), "__doc__", None) and not inspect.isclass(obj):
        own = None
    text = inline(first_paragraph(inspect.cleandoc(own))) if own else ""
    return f"{text} (`{module}`)".strip()
