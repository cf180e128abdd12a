"""A PgBouncer of a test's own, in transaction mode, in front of the test PostgreSQL.

Debian's ``pgbouncer`` binary, started as a child process with a config in a
temporary directory (never the system service): it listens on a free port
of 127.0.0.1, trusts the ``postgres`` user (as the test PostgreSQL does),
and keeps at most ``pool_size`` server connections per database, handed out
round robin, so the server connection under a client really changes from
one transaction to the next. Any database name is passed through to the
same name on PostgreSQL. Part of crmgraph.testing.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from crmgraph.db.engine import postgres_config
from crmgraph.testing.databases import IN_CI, PG_SERVER, pg_answers

START_SECONDS = 20.0

CONFIG = """\
[databases]
* = host={host} port={port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {listen_port}
unix_socket_dir =
auth_type = trust
auth_file = {directory}/users.txt
pool_mode = transaction
default_pool_size = {pool_size}
min_pool_size = 0
reserve_pool_size = 0
max_client_conn = 200
server_round_robin = 1
ignore_startup_parameters = extra_float_digits
"""


def pgbouncer_binary() -> str | None:
    found = shutil.which("pgbouncer")
    if found:
        return found
    debian = Path("/usr/sbin/pgbouncer")  # not on a normal user's PATH
    return str(debian) if debian.exists() else None


def require_pgbouncer() -> str:
    """The binary; skips locally and fails in CI (.ci/run installs it) without one."""
    binary = pgbouncer_binary()
    if binary is None:
        message = "pgbouncer is not installed (Debian: apt-get install pgbouncer)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return binary


def unprivileged_user() -> str:
    """Whom PgBouncer runs as when we are root (it refuses to run as root):
    ``postgres`` where Debian's PostgreSQL made that user, else ``nobody``."""
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return "nobody"
    return "postgres"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _answers(url: str) -> bool:
    return pg_answers(url, timeout=2, statement_cache_size=0)


@contextlib.contextmanager
def pgbouncer(pool_size: int = 2, server: str = PG_SERVER) -> Iterator[str]:
    """A running PgBouncer in front of ``server``; its URL without a database
    name (append ``/<database>``)."""
    binary = require_pgbouncer()
    target = postgres_config(f"{server}/postgres")
    listen_port = free_port()
    with tempfile.TemporaryDirectory(prefix="crmgraph-pgbouncer-") as directory:
        os.chmod(directory, 0o755)  # readable by the user PgBouncer runs as
        config = Path(directory) / "pgbouncer.ini"
        config.write_text(
            CONFIG.format(
                host=target["host"],
                port=target["port"],
                listen_port=listen_port,
                directory=directory,
                pool_size=pool_size,
            )
        )
        (Path(directory) / "users.txt").write_text(f'"{target["user"]}" ""\n')
        for path in Path(directory).iterdir():
            path.chmod(0o644)
        command = [binary, *(["-u", unprivileged_user()] if os.geteuid() == 0 else []), str(config)]
        log = Path(directory) / "pgbouncer.log"
        with log.open("wb") as output:
            process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
        url = f"postgresql://{target['user']}@127.0.0.1:{listen_port}"
        try:
            _wait_until_up(process, f"{url}/postgres", log)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def _wait_until_up(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + START_SECONDS
    while not _answers(url):  # a condition polled with a deadline
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"pgbouncer did not start:\n{log.read_text(errors='replace')}")
        time.sleep(0.05)
