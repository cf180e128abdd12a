"""The load generator: ``wrk`` (Debian package) POSTing GraphQL over keep-alive
connections for a fixed time, with a Lua script that prints the numbers this
benchmark reads: one body for every request (reads), or a body made per
request by a Lua ``make_body(t, n)`` (writes: thread ``t``, its ``n``-th
request), whose answers are checked for GraphQL errors and userErrors."""

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


# the per-request script around a make_body(t, n) the caller defines; thread
# t of T, its requests n = 1, 2, ...; stops a thread after LIMIT answers (0: no
# limit); prints the first bad answer of each thread on stderr
DYNAMIC = """\
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
{headers}
LIMIT = {limit}
{definitions}
local threads = {{}}
setup = function(thread)
  thread:set("t", #threads)
  table.insert(threads, thread)
end
init = function(args)
  n = 0
  answered = 0
  bad = 0
  sample = ""
end
request = function()
  n = n + 1
  return wrk.format(nil, nil, nil, make_body(t, n))
end
response = function(status, headers, body)
  answered = answered + 1
  if status >= 300 or string.find(body, '"errors":', 1, true)
      or string.find(body, '"userErrors":%s*%[%s*{{') then
    bad = bad + 1
    if sample == "" then sample = body end
  end
  if LIMIT > 0 and answered >= LIMIT then wrk.thread:stop() end
end
done = function(summary, latency, requests)
  local e = summary.errors
  local wrong, made, answers = 0, 0, 0
  for _, thread in ipairs(threads) do
    wrong = wrong + thread:get("bad")
    made = made + thread:get("n")
    answers = answers + thread:get("answered")
    local s = thread:get("sample")
    if s ~= "" then io.stderr:write("BAD " .. string.gsub(s, "\\n", " ") .. "\\n") end
  end
  io.write(string.format("RESULT %d %d %d %d %d %d %d %d\\n", summary.requests,
    summary.duration, latency:percentile(50), latency:percentile(99), e.status,
    e.connect + e.read + e.write + e.timeout, wrong, made - answers))
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
    # answers with GraphQL errors or userErrors (dynamic scripts only)
    graphql_errors: int = 0
    bad_sample: str = ""
    # bodies made but not answered (dynamic scripts only): at most the requests
    # in flight when wrk stopped, unless requests were lost (wrk makes a new
    # body when it reconnects)
    unanswered: int = 0

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
    return SCRIPT.format(body=text, headers=header_lines(headers))


def header_lines(headers: dict[str, str]) -> str:
    return "\n".join(f'wrk.headers["{name}"] = "{value}"' for name, value in headers.items())


def dynamic_script(definitions: str, headers: dict[str, str], limit: int = 0) -> str:
    """A wrk script POSTing ``make_body(t, n)`` (defined by ``definitions``)."""
    return DYNAMIC.format(headers=header_lines(headers), limit=limit, definitions=definitions)


async def run_wrk(
    url: str, body: bytes, headers: dict[str, str], seconds: float, connections: int
) -> Load:
    return await run_script(url, lua_script(body, headers), seconds, connections)


async def run_script(url: str, script_text: str, seconds: float, connections: int) -> Load:
    with tempfile.TemporaryDirectory(prefix="crmgraph-wrk-") as tmp:
        script = Path(tmp) / "post.lua"
        script.write_text(script_text)
        process = await asyncio.create_subprocess_exec(
            wrk_binary(),
            f"--threads={threads(connections)}",
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
        raise RuntimeError(f"wrk printed no result: {out.decode()} {err.decode()}")
    numbers = [int(x) for x in line.split()[1:]]
    requests, duration_us, p50, p99, status, errors = numbers[:6]
    wrong, unanswered = (numbers[6], numbers[7]) if len(numbers) > 7 else (0, 0)
    sample = next((x[4:] for x in err.decode().splitlines() if x.startswith("BAD ")), "")
    return Load(
        requests,
        duration_us / 1e6,
        p50 / 1000,
        p99 / 1000,
        status,
        errors,
        wrong,
        sample,
        unanswered,
    )


def threads(connections: int) -> int:
    return min(2, connections)
