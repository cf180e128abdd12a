"""The load generator: ``wrk`` (Debian package) POSTing one GraphQL body over
keep-alive connections for a fixed time, with a Lua script that prints the
numbers this benchmark reads."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

# wrk's done() prints one line: requests, duration (us), p50, p99 (us), non-2xx, socket errors
SCRIPT = """\
wrk.method = "POST"
wrk.body = [==[{body}]==]
wrk.headers["Content-Type"] = "application/json"
{headers}
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %d %d %d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), e.status,
    e.connect + e.read + e.write + e.timeout))
end
"""


@dataclass(frozen=True)
class Load:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    bad_status: int
    socket_errors: int

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


def wrk_binary() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise SystemExit("wrk not found: apt-get install -y wrk")
    return found


def lua_script(body: bytes, headers: dict[str, str]) -> str:
    text = body.decode()
    if "]==]" in text:
        raise ValueError("body cannot be quoted as a Lua long string")
    lines = "\n".join(f'wrk.headers["{name}"] = "{value}"' for name, value in headers.items())
    return SCRIPT.format(body=text, headers=lines)


async def run_wrk(
    url: str, body: bytes, headers: dict[str, str], seconds: float, connections: int
) -> Load:
    with tempfile.TemporaryDirectory(prefix="crmgraph-wrk-") as tmp:
        script = Path(tmp) / "post.lua"
        script.write_text(lua_script(body, headers))
        process = await asyncio.create_subprocess_exec(
            wrk_binary(),
            f"--threads={min(2, connections)}",
            f"--connections={connections}",
            f"--duration={max(1, round(seconds))}s",
            "--timeout=10s",
            f"--script={script}",
            url,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"wrk failed: {err.decode()}")
    line = next((x for x in out.decode().splitlines() if x.startswith("RESULT ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result: {out.decode()}")
    requests, duration_us, p50, p99, status, errors = (int(x) for x in line.split()[1:])
    return Load(requests, duration_us / 1e6, p50 / 1000, p99 / 1000, status, errors)
