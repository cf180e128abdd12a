"""What a ``crmgraph`` process loads (crmgraph.commands.common): ``--help``
loads neither the settings (pydantic), the plugins nor the app, and a command
that works on the database loads the plugins and their catalog but not the
server (the ASGI app, the GraphQL schema), while refusing what the server
would refuse in the plugins' settings. Each runs in a process of its own, as
a user's command does: in this one, other tests have loaded everything."""

from __future__ import annotations

import json
import os
import subprocess
import sys

# runs crmgraph's main() with argv, then prints which of these modules it loaded
PROBE = """
import json, sys
from crmgraph.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
except Exception as exc:  # what would end the command with a traceback
    code = f"{type(exc).__name__}: {exc}"
watched = ["pydantic", "crmgraph.settings", "crmgraph.plugins.client", "crmgraph.registry",
           "crmgraph.app", "crmgraph.schema.build", "starlette.applications"]
print(json.dumps({"code": code, "loaded": [m for m in watched if m in sys.modules]}))
"""


def crmgraph(database_url: str, *argv: str, **env: str) -> tuple[dict, str]:
    """``crmgraph *argv`` in a new process: (its probe, its output before the probe)."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *argv],
        env={**os.environ, "CRMGRAPH_DATABASE_URL": database_url,
             "CRMGRAPH_LOAD_ENTRY_POINTS": "0", **env},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    *printed, probe = done.stdout.strip().splitlines()
    return json.loads(probe), "\n".join(printed) + done.stderr


def test_help_loads_no_settings_plugins_or_app() -> None:
    probe, printed = crmgraph("sqlite:///unused.sqlite", "--help")
    assert probe == {"code": 0, "loaded": []}
    assert "serve" in printed and "keys" in printed and "import" in printed


def test_a_database_command_loads_the_plugins_not_the_server(database_url: str) -> None:
    probe, printed = crmgraph(
        database_url, "users", "create", "--name", "Ada", "--email", "ada@start.example"
    )
    assert probe["code"] == 0, printed
    assert "ada@start.example (agent)" in printed
    assert "crmgraph.plugins.client" in probe["loaded"]
    assert not {"crmgraph.app", "crmgraph.schema.build", "starlette.applications"} & {
        *probe["loaded"]
    }
    probe, printed = crmgraph(database_url, "keys", "create", "--email", "ada@start.example")
    prefix = printed.split("_")[1][:12]
    listed, printed = crmgraph(database_url, "keys", "list")
    assert listed["code"] == 0 and f"{prefix}  ada@start.example" in printed


def test_a_database_command_refuses_grants_the_server_refuses(database_url: str) -> None:
    probe, _ = crmgraph(database_url, "keys", "list", CRMGRAPH_GRANTS="agent=no.such")
    assert "CRMGRAPH_GRANTS: unknown permission(s) no.such" in probe["code"]
