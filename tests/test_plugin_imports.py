"""Plugins import only the public API: every Python file of crmgraph/plugins/,
of each partner package under plugins/ (its tests included) and of a freshly
scaffolded package imports from ``crmgraph`` and nothing else of crmgraph
(tests may also import ``crmgraph.testing``), wherever the import is: at
module level, under ``TYPE_CHECKING`` or inside a function.

A failure names each offending import with its file and line.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

from crmgraph import scaffold

ROOT = Path(__file__).resolve().parent.parent
PUBLIC = "crmgraph"
TEST_FIXTURES = "crmgraph.testing"


@dataclass(frozen=True)
class Offence:
    """One import of a crmgraph module a plugin file may not use."""

    file: str
    line: int
    module: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: imports {self.module}"


def crmgraph_imports(source: str) -> list[tuple[int, str]]:
    """(line, module) of every absolute import of crmgraph or a module in it."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
    return sorted(
        (line, name) for line, name in found if name == PUBLIC or name.startswith(f"{PUBLIC}.")
    )


def offences(path: Path, shown_as: str, in_tests: bool) -> list[Offence]:
    allowed = {PUBLIC, TEST_FIXTURES} if in_tests else {PUBLIC}
    return [
        Offence(shown_as, line, module)
        for line, module in crmgraph_imports(path.read_text(encoding="utf-8"))
        if module not in allowed
    ]


def python_files(root: Path) -> list[Path]:
    return sorted(
        path
        for path in root.rglob("*.py")
        if "__pycache__" not in path.parts
        and not any(part.endswith(".egg-info") for part in path.parts)
    )


def package_offences(package: Path, shown_from: Path) -> list[Offence]:
    """Every offence in a plugin package's files; those under its ``tests``
    folder may use the test fixtures too."""
    found: list[Offence] = []
    for path in python_files(package):
        relative = path.relative_to(package)
        found += offences(path, path.relative_to(shown_from).as_posix(), "tests" in relative.parts)
    return found


def failure(found: list[Offence]) -> str:
    lines = "\n".join(f"  {offence}" for offence in found)
    return f"plugin code imports crmgraph modules other than the public API:\n{lines}"


def test_the_checker_sees_every_kind_of_import(tmp_path: Path) -> None:
    source = (
        "import crmgraph\nfrom crmgraph import hookimpl\nimport crmgraph.db.engine\n"
        "import crmgraph_loyalty.ledger\nfrom . import sibling\n"
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
        "    from crmgraph.lifecycle import Facts\n"
        "def late():\n    from crmgraph.schema import ids\n    from crmgraph.testing import run_sql\n"
    )
    module = tmp_path / "mod.py"
    module.write_text(source)
    assert [str(o) for o in offences(module, "pkg/mod.py", in_tests=False)] == [
        "pkg/mod.py:3: imports crmgraph.db.engine",
        "pkg/mod.py:8: imports crmgraph.lifecycle",
        "pkg/mod.py:10: imports crmgraph.schema",
        "pkg/mod.py:11: imports crmgraph.testing",
    ]
    assert [o.module for o in offences(module, "pkg/tests/mod.py", in_tests=True)] == [
        "crmgraph.db.engine",
        "crmgraph.lifecycle",
        "crmgraph.schema",
    ]


BUILTIN_PLUGINS = python_files(ROOT / "crmgraph" / "plugins")


def test_there_are_builtin_plugins_to_check() -> None:
    names = {path.stem for path in BUILTIN_PLUGINS}
    assert {"client", "prospect", "core_access", "agenda"} <= names


@pytest.mark.parametrize("path", BUILTIN_PLUGINS, ids=lambda path: path.name)
def test_a_builtin_plugin_imports_only_crmgraph(path: Path) -> None:
    found = offences(path, path.relative_to(ROOT).as_posix(), in_tests=False)
    if found:
        pytest.fail(failure(found), pytrace=False)


PARTNER_PACKAGES = sorted(
    path for path in (ROOT / "plugins").iterdir() if (path / "pyproject.toml").is_file()
)


def test_there_are_partner_packages_to_check() -> None:
    assert "crmgraph-loyalty" in {package.name for package in PARTNER_PACKAGES}
    for package in PARTNER_PACKAGES:
        files = python_files(package)
        assert any("tests" in f.relative_to(package).parts for f in files), package.name
        assert any("tests" not in f.relative_to(package).parts for f in files), package.name


@pytest.mark.parametrize("package", PARTNER_PACKAGES, ids=lambda path: path.name)
def test_a_partner_package_imports_only_crmgraph(package: Path) -> None:
    found = package_offences(package, ROOT)
    if found:
        pytest.fail(failure(found), pytrace=False)


def test_a_scaffolded_package_imports_only_crmgraph(tmp_path: Path) -> None:
    target = scaffold.write_plugin("acme_widgets", tmp_path / "crmgraph-acme-widgets")
    files = {path.relative_to(target).as_posix() for path in python_files(target)}
    assert {"crmgraph_acme_widgets/plugin.py", "tests/test_plugin.py"} <= files
    found = package_offences(target, tmp_path)
    if found:
        pytest.fail(failure(found), pytrace=False)
