"""The servers of the GraphQL load benchmark, each started as its own process
on a free loopback port and stopped afterwards: crmgraph (``crmgraph serve``,
one worker) and PostGraphile 5 (Node 22, installed by npm into a cache
directory outside git)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.load_queries import CRMGRAPH, POSTGRAPHILE

READY_TIMEOUT_SECONDS = 120.0
POLL_SECONDS = 0.1
CRMGRAPH_BIN = Path(sys.executable).with_name("crmgraph")
# what npm installs into the cache (the node package holds a Node 22 binary)
PEER_PACKAGES = {
    "node": "22",
    "postgraphile": "5",
    "postgraphile-plugin-connection-filter": "4",  # search (contains, or); related (some)
}


@dataclass
class Server:
    kind: str
    url: str  # the GraphQL endpoint
    process: asyncio.subprocess.Process
    headers: dict[str, str] = field(default_factory=dict)
    version: str = ""
    label: str = ""  # names a variant (a second crmgraph with other settings)

    @property
    def name(self) -> str:
        return self.label or self.kind


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_ready(server: Server, probe: str, body: bytes | None) -> None:
    """Poll ``probe`` (GET, or POST ``body``) until it answers 200; fail if the
    process exits or the time limit passes."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + READY_TIMEOUT_SECONDS
    async with httpx.AsyncClient(timeout=5) as client:
        while True:
            if server.process.returncode is not None:
                raise RuntimeError(f"{server.kind} exited with {server.process.returncode}")
            with contextlib.suppress(httpx.TransportError):
                if body is None:
                    response = await client.get(probe)
                else:
                    response = await client.post(
                        probe, content=body, headers={"content-type": "application/json"}
                    )
                if response.status_code == 200:
                    return
            if loop.time() > deadline:
                raise RuntimeError(f"{server.kind} not ready after {READY_TIMEOUT_SECONDS} s")
            await asyncio.sleep(POLL_SECONDS)  # polling interval, not synchronisation


async def stop(server: Server) -> None:
    if server.process.returncode is None:
        server.process.terminate()
        try:
            await asyncio.wait_for(server.process.wait(), 20)
        except TimeoutError:
            server.process.kill()
            await server.process.wait()


@contextlib.asynccontextmanager
async def running(server: Server) -> AsyncIterator[Server]:
    try:
        yield server
    finally:
        await stop(server)


async def start_crmgraph(
    database_url: str, api_key: str, env: Mapping[str, str] | None = None, label: str = ""
) -> Server:
    """``crmgraph serve`` with one worker and the production defaults, except
    a rate-limit budget no run can spend (the limiter still runs on every
    request) and no migrations at start (the benchmark migrated)."""
    port = free_port()
    environ = {
        **os.environ,
        "CRMGRAPH_DATABASE_URL": database_url,
        "CRMGRAPH_RATE_LIMIT_COST": str(10**15),
        "CRMGRAPH_EXPOSE_SQL_COUNT": "0",
        **(env or {}),
    }
    process = await asyncio.create_subprocess_exec(
        str(CRMGRAPH_BIN),
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--log-level",
        "warning",
        env=environ,
        stdin=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {api_key}"}
    server = Server(CRMGRAPH, f"{base}/graphql", process, headers, label=label)
    try:
        await wait_ready(server, f"{base}/readyz", None)
    except BaseException:
        await stop(server)
        raise
    return server


def ensure_peer(cache: Path) -> Path:
    """Install PostGraphile 5 and Node 22 into ``cache`` with npm (once);
    returns the Node 22 binary."""
    cache.mkdir(parents=True, exist_ok=True)
    wanted = {"private": True, "dependencies": PEER_PACKAGES}
    manifest = cache / "package.json"
    installed = cache / "node_modules" / "postgraphile" / "package.json"
    if not installed.exists() or json.loads(manifest.read_text()) != wanted:
        manifest.write_text(json.dumps(wanted, indent=2) + "\n")
        print(f"installing {', '.join(PEER_PACKAGES)} into {cache} with npm", file=sys.stderr)
        subprocess.run(["npm", "install", "--no-audit", "--no-fund"], cwd=cache, check=True)
    for candidate in (
        cache / "node_modules" / "node" / "bin" / "node",
        *sorted((cache / "node_modules").glob("**/node-linux-*/bin/node")),
    ):
        if candidate.exists() and node_major(candidate) == 22:
            return candidate
    raise SystemExit(f"no Node 22 binary under {cache}/node_modules (npm package node@22)")


def node_major(binary: Path) -> int | None:
    try:
        version = subprocess.run(
            [str(binary), "--version"], capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    return int(version.strip().lstrip("v").split(".")[0])


def package_version(cache: Path, package: str) -> str:
    path = cache / "node_modules" / package / "package.json"
    return str(json.loads(path.read_text())["version"])


def postgraphile_config(database_url: str, port: int) -> str:
    """Amber preset, the connection-filter plugin (for the search, and its
    relation filters for ``related``) and every column orderable and
    filterable (crmgraph orders contacts by columns that have no index); no
    GraphiQL, no watch mode."""
    return f"""\
import {{ PostGraphileAmberPreset }} from "postgraphile/presets/amber";
import {{ makePgService }} from "postgraphile/adaptors/pg";
import {{ PostGraphileConnectionFilterPreset }} from "postgraphile-plugin-connection-filter";

export default {{
  extends: [PostGraphileAmberPreset, PostGraphileConnectionFilterPreset],
  disablePlugins: ["PgIndexBehaviorsPlugin"],
  schema: {{ connectionFilterRelations: true }},
  pgServices: [
    makePgService({{ connectionString: {json.dumps(database_url)}, schemas: ["public"] }}),
  ],
  grafserv: {{ host: "127.0.0.1", port: {port}, graphiql: false, watch: false }},
}};
"""


async def start_postgraphile(cache: Path, node: Path, database_url: str) -> Server:
    port = free_port()
    # the config imports the packages, so it lives beside node_modules
    config = cache / f"graphile-{port}.config.mjs"
    config.write_text(postgraphile_config(database_url, port))
    cli = cache / "node_modules" / "postgraphile" / "dist" / "cli-run.js"
    process = await asyncio.create_subprocess_exec(
        str(node),
        str(cli),
        "--config",
        str(config),
        cwd=cache,
        env={**os.environ, "NODE_ENV": "production"},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
    )
    server = Server(
        POSTGRAPHILE,
        f"http://127.0.0.1:{port}/graphql",
        process,
        version=f"postgraphile {package_version(cache, 'postgraphile')}, node 22",
    )
    try:
        await wait_ready(server, server.url, b'{"query": "{ __typename }"}')
    except BaseException:
        await stop(server)
        raise
    finally:
        config.unlink(missing_ok=True)  # read at start-up only
    return server
