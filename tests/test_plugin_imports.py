"""Plugins import only the public API: every Python file of crmgraph/plugins/,
of each partner package under plugins/ (its tests included) and of a freshly
scaffolded package imports from ``crmgraph`` and nothing else of crmgraph
(tests may also import ``crmgraph.testing``), wherever the import is: at
module level, under ``TYPE_CHECKING`` or inside a function.

One allowance, and only for the built-in feature plugins listed in
``FEATURE_MODULES`` (teamwork, privacy, dedupe, analytics, imports,
webhooks): a feature plugin's own modules, as a partner package imports its
own. Each plugin file names the module prefixes of its feature, which no
other feature shares; a module of the core or one several features use
(``crmgraph.schema.customers``, ``crmgraph.schema.build``,
``crmgraph.access``, ...) is no feature's own, so a feature plugin reaches
it through ``crmgraph`` or the ``types`` its hooks receive, as a partner
does. Customer-type plugins, the partner packages and the scaffold keep the
strict rule.

A failure names each offending import with its file and line.
"""

from __future__ import annotations

import ast
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import pytest

from crmgraph import scaffold

ROOT = Path(__file__).resolve().parent.parent
PUBLIC = "crmgraph"
TEST_FIXTURES = "crmgraph.testing"

# a built-in feature plugin's file -> the prefixes of its feature's own modules
FEATURE_MODULES: dict[str, tuple[str, ...]] = {
    "analytics.py": (
        "crmgraph.analytics",
        "crmgraph.schema.analytics",
        "crmgraph.schema.analytics_root",
    ),
    "dedupe.py": (
        "crmgraph.schema.duplicates",
        "crmgraph.schema.merge",
        "crmgraph.schema.dismissals",
    ),
    "imports.py": ("crmgraph.schema.imports",),
    "privacy.py": ("crmgraph.schema.privacy", "crmgraph.schema.consent_types"),
    "teamwork.py": (
        "crmgraph.schema.teamwork",
        "crmgraph.schema.teamwork_mutations",
        "crmgraph.schema.teamwork_timeline",
        "crmgraph.schema.teamwork_loaders",
    ),
    "webhooks.py": (
        "crmgraph.webhooks",
        "crmgraph.schema.webhooks",
        "crmgraph.schema.webhook_loaders",
    ),
}


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


def is_within(module: str, prefixes: Collection[str]) -> bool:
    """Whether ``module`` is one of ``prefixes`` or inside one (a package)."""
    return any(module == prefix or module.startswith(f"{prefix}.") for prefix in prefixes)


def offences(path: Path, shown_as: str, in_tests: bool, own: Collection[str] = ()) -> list[Offence]:
    """The imports of crmgraph in ``path`` other than the public API (and the
    test fixtures in tests, and ``own``: a feature plugin's own modules)."""
    allowed = {PUBLIC, TEST_FIXTURES} if in_tests else {PUBLIC}
    return [
        Offence(shown_as, line, module)
        for line, module in crmgraph_imports(path.read_text(encoding="utf-8"))
        if module not in allowed and not is_within(module, own)
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


def test_a_feature_plugin_may_import_its_own_modules_and_no_others(tmp_path: Path) -> None:
    source = (
        "from crmgraph import hookimpl\nfrom crmgraph.schema.teamwork import NODES\n"
        "import crmgraph.schema.teamwork_timeline.sub\nfrom crmgraph.schema.teamwork2 import x\n"
        "from crmgraph.schema.customers import load_customer\nfrom crmgraph.webhooks import y\n"
    )
    module = tmp_path / "teamwork.py"
    module.write_text(source)
    found = offences(module, "teamwork.py", in_tests=False, own=FEATURE_MODULES["teamwork.py"])
    assert [o.module for o in found] == [
        "crmgraph.schema.teamwork2",
        "crmgraph.schema.customers",
        "crmgraph.webhooks",
    ]


BUILTIN_PLUGINS = python_files(ROOT / "crmgraph" / "plugins")


def module_file(module: str) -> Path:
    """Where ``module`` would be: a .py file or a package's __init__.py."""
    path = ROOT.joinpath(*module.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def test_there_are_builtin_plugins_to_check() -> None:
    names = {path.stem for path in BUILTIN_PLUGINS}
    assert {"client", "prospect", "core_access", "agenda"} <= names
    assert set(FEATURE_MODULES) <= {path.name for path in BUILTIN_PLUGINS}


def test_feature_modules_exist_and_belong_to_one_feature() -> None:
    """Each declared own module exists (the allowance cannot outlive a
    rename) and is no other feature's, nor the public API or the fixtures."""
    every = [prefix for prefixes in FEATURE_MODULES.values() for prefix in prefixes]
    assert [prefix for prefix in every if not module_file(prefix).is_file()] == []
    assert len(every) == len(set(every))
    for feature, prefixes in FEATURE_MODULES.items():
        others = [p for other, ps in FEATURE_MODULES.items() if other != feature for p in ps]
        assert not any(is_within(prefix, others) for prefix in prefixes), feature
        assert all(prefix.startswith(f"{PUBLIC}.") for prefix in prefixes)
        assert not is_within(PUBLIC, prefixes) and not is_within(TEST_FIXTURES, prefixes)


@pytest.mark.parametrize("path", BUILTIN_PLUGINS, ids=lambda path: path.name)
def test_a_builtin_plugin_imports_only_crmgraph(path: Path) -> None:
    own = FEATURE_MODULES.get(path.name, ())
    found = offences(path, path.relative_to(ROOT).as_posix(), in_tests=False, own=own)
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
