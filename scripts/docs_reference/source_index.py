"""crmgraph's own modules parsed with ``ast``, for the pages generated from
what the code does rather than from a declared list (events, error codes):
each node knows its parent, each module its string constants and the
functions that only return a dict literal (payload builders)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache

from scripts.docs_reference import ROOT

PACKAGE = ROOT / "crmgraph"


@dataclass
class Module:
    name: str  # crmgraph/operations/customers.py
    tree: ast.Module
    parents: dict[ast.AST, ast.AST] = field(default_factory=dict)
    nodes: list[ast.AST] = field(default_factory=list)  # every node, walked once

    def constants(self) -> dict[str, str]:
        """Module-level ``NAME = "text"`` assignments."""
        return {
            node.targets[0].id: node.value.value
            for node in self.tree.body
            if isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        }

    def ancestors(self, node: ast.AST) -> Iterator[ast.AST]:
        while node in self.parents:
            node = self.parents[node]
            yield node


@cache
def modules() -> tuple[Module, ...]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        module = Module(str(path.relative_to(ROOT)), tree)
        module.nodes = list(ast.walk(tree))
        for parent in module.nodes:
            for child in ast.iter_child_nodes(parent):
                module.parents[child] = parent
        found.append(module)
    return tuple(found)


def call_name(call: ast.Call) -> str:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")


def strings(node: ast.AST) -> list[str]:
    """The texts an expression may be: a constant, or either branch of ``a if c else b``."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.IfExp):
        return strings(node.body) + strings(node.orelse)
    return []


def text_of(node: ast.AST | None) -> str:
    """A message as written: a constant, or an f-string with ``{…}`` for its values."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(text_of(v) if isinstance(v, ast.Constant) else "{…}" for v in node.values)
    if isinstance(node, ast.BinOp):
        return text_of(node.left) + text_of(node.right)
    return ""


@cache
def dict_builders() -> dict[str, ast.Dict]:
    """Functions whose last statement returns a dict literal, by name."""
    found = {}
    for module in modules():
        for node in module.nodes:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
                last = node.body[-1]
                if isinstance(last, ast.Return) and isinstance(last.value, ast.Dict):
                    found[node.name] = last.value
    return found


def dict_keys(node: ast.AST | None) -> list[str]:
    """The keys a payload expression has, as far as the code shows them:
    a dict literal, a lambda returning one, a call of a function returning
    one; ``…`` for keys it merges in from elsewhere."""
    if isinstance(node, ast.Lambda):
        return dict_keys(node.body)
    if isinstance(node, ast.Call) and call_name(node) in dict_builders():
        return dict_keys(dict_builders()[call_name(node)])
    if isinstance(node, ast.BinOp):
        return dict_keys(node.left) + dict_keys(node.right)
    if not isinstance(node, ast.Dict):
        return ["…"] if node is not None else []
    keys = []
    for key in node.keys:
        if isinstance(key, ast.Constant):
            keys.append(str(key.value))
        elif key is None:
            keys.append("…")
    return keys
