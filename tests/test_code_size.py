"""Size limits on crmgraph's own code (issue 20): no function longer than 150
lines and no module longer than 600, migrations aside (piccolo writes those).

A function's length runs from its first decorator to its last line, nested
functions and classes included: a builder made of closures is as long as all
of them. A failure lists every offender with its length, longest first.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "crmgraph"
EXEMPT = (PACKAGE / "db" / "migrations",)
MAX_FUNCTION_LINES = 150
MAX_MODULE_LINES = 600


def modules() -> list[Path]:
    return sorted(
        path
        for path in PACKAGE.rglob("*.py")
        if "__pycache__" not in path.parts and not any(path.is_relative_to(e) for e in EXEMPT)
    )


def function_lengths(source: str) -> list[tuple[str, int, int]]:
    """(qualified name, first line, length) of every function and method."""
    found: list[tuple[str, int, int]] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                name = f"{prefix}{child.name}"
                if not isinstance(child, ast.ClassDef):
                    first = min([child.lineno, *(d.lineno for d in child.decorator_list)])
                    assert child.end_lineno is not None
                    found.append((name, first, child.end_lineno - first + 1))
                visit(child, f"{name}.")
            else:
                visit(child, prefix)

    visit(ast.parse(source), "")
    return found


def line_count(source: str) -> int:
    return len(source.splitlines())


def test_the_measures() -> None:
    source = (
        "@decorated\n"
        "def outer():\n"
        "    def inner():\n"
        "        return 1\n"
        "\n"
        "    return inner\n"
        "class Thing:\n"
        "    async def method(self):\n"
        "        pass\n"
    )
    assert function_lengths(source) == [
        ("outer", 1, 6),
        ("outer.inner", 3, 2),
        ("Thing.method", 8, 2),
    ]
    assert line_count(source) == 9
    assert len(modules()) > 50
    assert not any("migrations" in p.relative_to(PACKAGE).parts[:2] for p in modules())


def test_no_function_and_no_module_is_too_long() -> None:
    long_functions: list[tuple[int, str]] = []
    long_modules: list[tuple[int, str]] = []
    for path in modules():
        source = path.read_text(encoding="utf-8")
        shown = path.relative_to(ROOT).as_posix()
        if (lines := line_count(source)) > MAX_MODULE_LINES:
            long_modules.append((lines, shown))
        for name, first, length in function_lengths(source):
            if length > MAX_FUNCTION_LINES:
                long_functions.append((length, f"{shown}:{first} {name}"))
    report = [
        f"functions longer than {MAX_FUNCTION_LINES} lines:",
        *(f"  {length:5} {where}" for length, where in sorted(long_functions, reverse=True)),
        f"modules longer than {MAX_MODULE_LINES} lines:",
        *(f"  {length:5} {where}" for length, where in sorted(long_modules, reverse=True)),
    ]
    if long_functions or long_modules:
        pytest.fail("\n".join(report), pytrace=False)
