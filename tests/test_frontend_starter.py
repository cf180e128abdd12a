"""The typed frontend starter (examples/frontend) against real servers: its three
operations (a list query, a mutation with userErrors, a subscription over
graphql-ws) run by its Node smoke script against ``crmgraph serve --demo``, and
again against crmgraph in trusted-documents mode with the manifest the
starter's codegen wrote, where an ad-hoc query is refused.

Needs node and the starter's node_modules (``npm ci`` in examples/frontend; CI
runs it, see .ci/run): without them the test skips locally and fails in CI.
The fixture runs the starter's codegen, typecheck and build first, so the test
checks the sources as they are: its operations typed against the committed SDL
(a schema change that breaks one fails here; .ci/run only installs the packages).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import free_port, require, stop, wait_ready

STARTER = Path(__file__).resolve().parent.parent / "examples" / "frontend"
MANIFEST = STARTER / "src" / "gql" / "persisted-documents.json"


@pytest.fixture(scope="module")
def starter() -> Path:
    """The starter, generated, type-checked and built from its current sources."""
    npm = shutil.which("npm")
    require(npm is not None, "npm is missing: apt-get install nodejs npm")
    require(
        (STARTER / "node_modules" / ".bin" / "graphql-codegen").exists(),
        f"the starter's packages are not installed: cd {STARTER} && npm ci",
    )
    for script in ("codegen", "typecheck", "build"):
        done = subprocess.run(
            [str(npm), "run", "--silent", script], cwd=STARTER, capture_output=True, text=True,
            timeout=300,
        )  # fmt: skip
        assert done.returncode == 0, f"npm run {script}:\n{done.stdout}\n{done.stderr}"
    return STARTER


@contextlib.contextmanager
def crmgraph(
    tmp_path: Path, name: str, *args: str, env: dict[str, str] | None = None
) -> Iterator[tuple[str, str]]:
    """``crmgraph serve ARGS`` on 127.0.0.1 over tmp_path's SQLite file; yields
    its URL and what it printed so far."""
    port = free_port()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CRMGRAPH_GRAPHIQL")}
    environment |= {"CRMGRAPH_DATABASE_URL": f"sqlite:///{tmp_path / 'starter.sqlite'}",
                    "CRMGRAPH_LOAD_ENTRY_POINTS": "0", **(env or {})}  # fmt: skip
    log = tmp_path / f"{name}.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "crmgraph", "serve", *args, "--host", "127.0.0.1",
             "--port", str(port), "--log-level", "warning"],
            env=environment, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(process, url, log.read_text, attempts=600)
        yield url, log.read_text()
    finally:
        stop(process, 30)


def smoke(starter: Path, url: str, key: str) -> dict[str, Any]:
    """The starter's smoke script: its one JSON line."""
    done = subprocess.run(
        [shutil.which("node") or "node", "dist/smoke.js", f"{url}/graphql"],
        cwd=starter, env={**os.environ, "CRMGRAPH_API_KEY": key},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, f"smoke failed:\n{done.stdout}\n{done.stderr}"
    return json.loads(done.stdout.strip().splitlines()[-1])


def check(result: dict[str, Any]) -> None:
    assert result["listed"] == 5
    # the mutation's userErrors, by field, for an empty subject and satisfaction 9
    assert result["refused"] == ["subject:REQUIRED", "satisfaction:OUT_OF_RANGE"]
    assert result["logged"]
    assert result["event"]["type"] == "interaction.logged"


def test_the_starters_operations_run_on_the_demo_and_in_trusted_mode(
    starter: Path, tmp_path: Path, sqlite_template: Path
) -> None:
    # a copy of the migrated template: serve's migration finds nothing to do
    # (tests/test_serve_demo starts one on an empty file)
    shutil.copyfile(sqlite_template, tmp_path / "starter.sqlite")
    with crmgraph(tmp_path, "demo", "--demo", "--demo-customers", "20") as (url, printed):
        found = re.search(r"demo admin key: (\S+)", printed)
        assert found, printed
        key = found.group(1)
        check(smoke(starter, url, key))

    trusted = {"CRMGRAPH_TRUSTED_DOCUMENTS": str(MANIFEST)}
    with crmgraph(tmp_path, "trusted", env=trusted) as (url, _):
        check(smoke(starter, url, key))
        ad_hoc = httpx.post(
            f"{url}/graphql",
            headers={"Authorization": f"Bearer {key}"},
            json={"query": "{ customers(first: 1) { nodes { name } } }"},
            timeout=30,
        ).json()
        assert ad_hoc.get("data") is None, ad_hoc
        assert [e["extensions"]["code"] for e in ad_hoc["errors"]] == [
            "PERSISTED_QUERY_NOT_ALLOWED"
        ]
