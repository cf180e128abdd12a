"""``crmgraph plugin new``: the generated package passes its own tests and ruff."""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from crmgraph import scaffold
from crmgraph.testing import IN_CI


def run_cli(*argv: str) -> int:
    # The scaffold's own parser, wired as crmgraph/cli.py wires it.
    parser = argparse.ArgumentParser(prog="crmgraph")
    scaffold.add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def test_generated_plugin_passes_its_own_tests_and_ruff(tmp_path: Path) -> None:
    target = tmp_path / "acme"
    assert run_cli("plugin", "new", "acme_widgets", "--directory", str(target)) == 0

    package = target / "crmgraph_acme_widgets"
    expected = {
        ".gitignore",
        "pyproject.toml",
        "README.md",
        "crmgraph_acme_widgets/__init__.py",
        "crmgraph_acme_widgets/plugin.py",
        "crmgraph_acme_widgets/tables.py",
        "crmgraph_acme_widgets/piccolo_app.py",
        "crmgraph_acme_widgets/migrations/__init__.py",
        "crmgraph_acme_widgets/migrations/crmgraph_acme_widgets_0001_initial.py",
        "tests/conftest.py",
        "tests/test_conformance.py",
        "tests/test_plugin.py",
    }
    assert {p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file()} == expected
    pyproject = (target / "pyproject.toml").read_text()
    assert 'name = "crmgraph-acme-widgets"' in pyproject
    assert '[project.entry-points.crmgraph]\nacme_widgets = "crmgraph_acme_widgets.plugin"' in (
        pyproject
    )
    assert "{{" not in "".join(p.read_text() for p in package.rglob("*.py"))
    ignored = (target / ".gitignore").read_text().splitlines()
    assert {"__pycache__/", "*.egg-info/", ".venv/", "*.sqlite"} <= set(ignored)

    env = {**os.environ, "PYTHONPATH": str(target)}
    env.pop("CRMGRAPH_TEST_DATABASE", None)  # the generated suite on SQLite, quickly
    result = subprocess.run(
        [sys.executable, "-m", "pytest", str(target / "tests"), "-q", "-p", "no:cacheprovider"],
        cwd=target,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "6 passed" in result.stdout  # test_conformance.py: crmgraph plugin check

    if importlib.util.find_spec("ruff") is None:
        if IN_CI:
            pytest.fail("ruff is not installed")
        pytest.skip("ruff is not installed")
    for check in (["check"], ["format", "--check"]):
        lint = subprocess.run(
            [sys.executable, "-m", "ruff", *check, str(target)],
            cwd=target,
            capture_output=True,
            text=True,
        )
        assert lint.returncode == 0, lint.stdout + lint.stderr


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("Acme", "snake_case"),
        ("acme-widgets", "snake_case"),
        ("a" * 31, "at most 30"),
        ("crmgraph_acme", "prefix"),
        ("client", "clash"),
        ("node", "clash"),
    ],
)
def test_bad_names_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, problem: str
) -> None:
    assert run_cli("plugin", "new", name, "--directory", str(tmp_path / "out")) == 2
    assert problem in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_an_existing_directory_is_not_overwritten(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(scaffold.ScaffoldError, match="not empty"):
        scaffold.write_plugin("acme_widgets", tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def test_default_directory_is_the_distribution_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert scaffold.write_plugin("acme_widgets") == tmp_path / "crmgraph-acme-widgets"
    assert (tmp_path / "crmgraph-acme-widgets" / "crmgraph_acme_widgets" / "plugin.py").is_file()
