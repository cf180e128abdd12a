"""Safe defaults of the command line, run as a real ``crmgraph`` process.

Commands that change data (keys, users, teams, import, privacy) refuse to
create a SQLite file that is not there unless given ``--create``, naming the
path. ``serve --demo`` bound to a non-loopback address puts no key in
GraphiQL's page and says how to get one; on 127.0.0.1 the page still holds it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from crmgraph import graphiql
from tests.helpers import free_port, poll, stop

CHANGES = [
    ("users", "create", "--name", "Ann", "--email", "ann@example.com"),
    ("keys", "create", "--email", "ann@example.com"),
    ("keys", "list"),
    ("teams", "create", "north"),
    ("import", "customers", "customers.csv"),
    ("privacy", "erase", "1", "--reason", "ticket 1"),
]


def crmgraph(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRMGRAPH_")}
    env["CRMGRAPH_LOAD_ENTRY_POINTS"] = "0"
    return subprocess.run(
        [sys.executable, "-m", "crmgraph", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@pytest.mark.parametrize("command", CHANGES, ids=lambda c: " ".join(c[:2]))
def test_a_command_that_changes_data_does_not_create_a_database(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    missing = tmp_path / "typo.sqlite"
    done = crmgraph(tmp_path, "--database", f"sqlite:///{missing}", *command)
    assert done.returncode == 2, done.stderr
    assert f"there is no database at {missing}" in done.stderr
    assert "--create" in done.stderr
    assert not missing.exists()


def test_the_default_database_is_not_created_either(tmp_path: Path) -> None:
    done = crmgraph(tmp_path, "teams", "create", "north")
    assert done.returncode == 2 and "there is no database at" in done.stderr, done.stderr
    assert list(tmp_path.iterdir()) == []


def test_create_makes_the_database(tmp_path: Path) -> None:
    new = tmp_path / "new.sqlite"
    url = f"sqlite:///{new}"
    done = crmgraph(tmp_path, "--database", url, "--create", "teams", "create", "north")
    assert done.returncode == 0, done.stderr
    assert new.exists()
    # once it is there, no --create is needed
    listed = crmgraph(tmp_path, "--database", url, "teams", "list")
    assert listed.returncode == 0 and "north" in listed.stdout, listed.stderr


@pytest.fixture
def assets(tmp_path: Path) -> Path:
    """Stand-in GraphiQL assets: without them the page is the "not installed" one."""
    directory = tmp_path / "assets"
    directory.mkdir()
    for name in graphiql.ASSET_FILES:
        (directory / name).write_text("")
    return directory


def demo_page(tmp_path: Path, assets: Path, host: str) -> tuple[str, str]:
    """``serve --demo --host host``: (its GraphiQL page fetched from
    127.0.0.1, what it printed)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRMGRAPH_")}
    env |= {"CRMGRAPH_LOAD_ENTRY_POINTS": "0", "CRMGRAPH_GRAPHIQL_ASSETS": str(assets)}
    log = tmp_path / f"serve-{port}.log"
    command = [
        sys.executable, "-m", "crmgraph", "--database", f"sqlite:///{tmp_path / 'demo.sqlite'}",
        "serve", "--demo", "--demo-customers", "5", "--host", host, "--port", str(port),
        "--log-level", "warning",
    ]  # fmt: skip
    with log.open("w") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:

        def ready() -> bool:
            assert process.poll() is None, log.read_text()
            try:
                return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).is_success
            except httpx.TransportError:
                return False

        poll("the demo server", ready, attempts=600)
        page = httpx.get(f"http://127.0.0.1:{port}/graphql", headers={"accept": "text/html"})
        assert page.status_code == 200 and "graphiql.js" in page.text
        return page.text, log.read_text()
    finally:
        stop(process, 30)


def admin_key(printed: str) -> str:
    found = re.search(r"demo admin key: (\S+)", printed)
    assert found, printed
    return found.group(1)


def test_demo_on_all_interfaces_puts_no_key_in_graphiql(tmp_path: Path, assets: Path) -> None:
    page, printed = demo_page(tmp_path, assets, "0.0.0.0")
    assert admin_key(printed) not in page
    assert '"keys":{}' in page  # nor the role switch's agent and viewer keys
    assert not any(key in page for key in re.findall(r"demo \w+ key[^:]*: (\S+)", printed))
    assert "GraphiQL's page holds no key" in printed and "crmgraph keys create" in printed


def test_demo_on_loopback_still_hands_the_local_browser_its_key(
    tmp_path: Path, assets: Path
) -> None:
    page, printed = demo_page(tmp_path, assets, "127.0.0.1")
    assert admin_key(printed) in page
    keys = re.findall(r"demo \w+ key[^:]*: (\S+)", printed)  # admin, agent, viewer
    assert len(keys) == 3 and all(key in page for key in keys)
    assert "holds no key" not in printed
