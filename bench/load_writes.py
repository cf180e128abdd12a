"""The GraphQL load benchmark's write scenarios (issue 21): the mutations a
CRM frontend sends, each against PostGraphile's nearest mutation on the same
tables, every request a valid write of its own.

wrk makes each body in Lua (``make_body(t, n)``: thread ``t``, its ``n``-th
request): e-mails and subjects carry a tag unique to the load plus ``t-n``, a
new client's name is two words no other request uses; the scenarios that
change a customer (``updateCustomer``, ``transitionCustomer``) give each
thread its own customers, taken in turn, so a customer's ``k``-th visit in a
load knows its version (the one read from the database before the load, plus
``k``) and its stage (clients go round engaged -> negotiating -> churned ->
engaged, moves without guards); that holds while no request takes longer
than its thread's whole turn of customers (seconds). The customers' versions
and stages are read again before every load, so a request that was cut off
when a load ended cannot desynchronise the next one. After each load the
benchmark waits for crmgraph's event backlog to drain (``drain_events``).

They run on a copy of the seeded database made for the run and dropped at the
end (``write_database``), so the read scenarios' rows stay as seeded.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import count
from typing import Any

import asyncpg

from bench import analytics
from bench.load_queries import CRMGRAPH, POSTGRAPHILE
from bench.load_reads import global_id
from bench.load_wrk import dynamic_script, threads
from bench.pg_stats import BENCH_MARK
from crmgraph.db.engine import postgres_config

WRITE_DATABASE_SUFFIX = "_writes"
# the loop of unguarded client moves the transition scenario goes round
CYCLE = ("engaged", "negotiating", "churned")
PHASES = {"engaged": "ENGAGEMENT", "negotiating": "ACQUISITION", "churned": "ENDED"}
POOL_LIMIT = 4000
ACTIVE_CLIENTS = (
    "FROM customer c JOIN customer_role r ON r.customer = c.id AND r.kind = c.kind "
    "WHERE c.kind = 'client' AND c.deleted_at IS NULL AND c.merged_into IS NULL "
    "AND c.erased_at IS NULL"
)
POOLS = {
    "customers": f"{BENCH_MARK} SELECT c.id, c.version, r.stage, r.id AS role {ACTIVE_CLIENTS} "
    f"ORDER BY c.id LIMIT {POOL_LIMIT}",
    "transitions": f"{BENCH_MARK} SELECT c.id, c.version, r.stage, r.id AS role "
    f"{ACTIVE_CLIENTS} "
    f"AND r.stage = ANY($1::text[]) ORDER BY c.id LIMIT {POOL_LIMIT}",
}
_tags = count(1)
PENDING_EVENTS = (
    f"{BENCH_MARK} SELECT COUNT(*) FROM event WHERE delivered_at IS NULL "
    "OR published_at IS NULL OR webhooks_claimed_at IS NULL"
)
DRAIN_TIMEOUT_SECONDS = 300
DRAIN_POLL_SECONDS = 0.2

# Lua helpers every body builder may use: row = {gid, id, version, stage index, role id}
LUA_HELPERS = """\
CYCLE = {"engaged", "negotiating", "churned"}
PHASE = {engaged = "ENGAGEMENT", negotiating = "ACQUISITION", churned = "ENDED"}
function stage_at(row, k) return CYCLE[(row[4] + k) % 3 + 1] end
function body_of(vars) return '{"query":' .. QUERY .. ',"variables":' .. vars .. '}' end
-- a word of its own for each number (base 19 consonants, each with a vowel)
function word(x)
  local s = ""
  repeat
    local d = x % 19
    local v = x % 5 + 1
    s = s .. string.sub("bcdfghjklmnprstvwxz", d + 1, d + 1) .. string.sub("aeiou", v, v)
    x = math.floor(x / 19)
  until x == 0
  return s
end
-- a person-like name of two words no other request shares: crmgraph's duplicate
-- screening locks the name's blocking keys (first and last word), so names
-- sharing a word would queue behind each other as no real customers' names do
function unique_name(t, n)
  local u = TAGNUM * 1000000 + t * 100000 + n
  local stem = word(u + 400)
  return stem .. "n " .. stem .. "s"
end
function make_body(t, n)
  local key = TAG .. "-" .. t .. "-" .. n
  local name = unique_name(t, n)
  local row, k = nil, 0
  if PER > 0 then
    row = ROWS[((n - 1) % PER) * T + t + 1]
    k = math.floor((n - 1) / PER)
  end
  return body_of(variables(key, row, k, name))
end
"""


@dataclass(frozen=True)
class WriteScenario:
    name: str
    description: str
    peer: str  # what PostGraphile is sent, in words
    documents: dict[str, str]  # server kind -> GraphQL document with $variables
    # server kind -> Lua body of variables(key, row, k), returning the JSON text
    variables: dict[str, str]
    pool: str = "customers"  # the customers it writes to (POOLS)


def write_scenarios() -> list[WriteScenario]:
    errors = "userErrors { field message code }"
    return [
        WriteScenario(
            "logInteraction",
            "log an inbound e-mail on a client (one client after another)",
            "createInteraction (one row; no activity roll-up, consent check or event)",
            {
                CRMGRAPH: "mutation Log($input: LogInteractionInput!) { logInteraction("
                f"input: $input) {{ interaction {{ id occurredAt subject }} {errors} }} }}",
                POSTGRAPHILE: "mutation Log($input: CreateInteractionInput!) { "
                "createInteraction(input: $input) { interaction { id occurredAt subject } } }",
            },
            {
                CRMGRAPH: """return string.format('{"input":{"customerId":"%s","channel":"EMAIL",'
  .. '"direction":"INBOUND","subject":"Bench write %s","outcome":"logged"}}', row[1], key)""",
                POSTGRAPHILE: """return string.format('{"input":{"interaction":{"customer":%d,'
  .. '"channel":"EMAIL","direction":"INBOUND","subject":"Bench write %s",'
  .. '"outcome":"logged"}}}', row[2], key)""",
            },
        ),
        WriteScenario(
            "createCustomer",
            "create a client with a unique two-word name and e-mail (duplicate screening "
            "runs; no other request shares a name word, so none waits on another's keys)",
            "createCustomer (the customer row only: no role, stage history, match keys, "
            "audit or event; PostGraphile cannot chain the role's insert to the new id)",
            {
                CRMGRAPH: "mutation Create($input: CreateCustomerInput!) { createCustomer("
                "input: $input) { customer { id name stage version } duplicates { score } "
                f"{errors} }} }}",
                POSTGRAPHILE: "mutation Create($input: CreateCustomerInput!) { createCustomer("
                "input: $input) { customer { id name version } } }",
            },
            {
                CRMGRAPH: """return string.format('{"input":{"kind":"CLIENT",'
  .. '"name":"%s","email":"client-%s@write.example",'
  .. '"client":{"segment":"SMALL_BUSINESS"}}}', name, key)""",
                POSTGRAPHILE: """return string.format('{"input":{"customer":{"kind":"client",'
  .. '"name":"%s","nameSort":"%s","nameFolded":"%s","email":"client-%s@write.example",'
  .. '"emailFolded":"client-%s@write.example","attributes":{"segment":"SMALL_BUSINESS"}}}}',
  name, name, name, key, key)""",
            },
            pool="",
        ),
        WriteScenario(
            "updateCustomer",
            "edit a client's e-mail and industry with expectedVersion (one client per request)",
            "updateCustomerByRowId setting email, attributes, version + 1 and updatedAt "
            "(no version check, audit or event)",
            {
                CRMGRAPH: "mutation Update($input: UpdateCustomerInput!) { updateCustomer("
                "input: $input) { customer { id version updatedAt ... on Client { industry } } "
                f"{errors} }} }}",
                POSTGRAPHILE: "mutation Update($input: UpdateCustomerByRowIdInput!) { "
                "updateCustomerByRowId(input: $input) { customer { id version updatedAt "
                "attributes } } }",
            },
            {
                CRMGRAPH: """return string.format('{"input":{"id":"%s","expectedVersion":%d,'
  .. '"email":"edit-%s@write.example","client":{"industry":"Retail %s"}}}',
  row[1], row[3] + k, key, key)""",
                POSTGRAPHILE: """return string.format('{"input":{"rowId":%d,"customerPatch":{'
  .. '"email":"edit-%s@write.example","emailFolded":"edit-%s@write.example",'
  .. '"attributes":{"industry":"Retail %s"},"version":%d,"updatedAt":"%s"}}}',
  row[2], key, key, key, row[3] + k + 1, NOW)""",
            },
        ),
        WriteScenario(
            "addContact",
            "add a contact to a client",
            "createContact",
            {
                CRMGRAPH: "mutation Add($input: AddContactInput!) { addContact(input: $input) "
                f"{{ contact {{ id name email }} {errors} }} }}",
                POSTGRAPHILE: "mutation Add($input: CreateContactInput!) { createContact("
                "input: $input) { contact { id name email } } }",
            },
            {
                CRMGRAPH: """return string.format('{"input":{"customerId":"%s",'
  .. '"name":"Bench write contact %s","email":"contact-%s@write.example",'
  .. '"jobTitle":"Buyer"}}', row[1], key, key)""",
                POSTGRAPHILE: """return string.format('{"input":{"contact":{"customer":%d,'
  .. '"name":"Bench write contact %s","nameFolded":"bench write contact %s",'
  .. '"email":"contact-%s@write.example","emailFolded":"contact-%s@write.example",'
  .. '"jobTitle":"Buyer","isPrimary":false}}}', row[2], key, key, key, key)""",
            },
        ),
        WriteScenario(
            "recordNeed",
            "record a need on a client",
            "createNeed",
            {
                CRMGRAPH: "mutation Need($input: RecordNeedInput!) { recordNeed(input: $input) "
                f"{{ need {{ id title status }} {errors} }} }}",
                POSTGRAPHILE: "mutation Need($input: CreateNeedInput!) { createNeed("
                "input: $input) { need { id title status } } }",
            },
            {
                CRMGRAPH: """return string.format('{"input":{"customerId":"%s",'
  .. '"title":"Bench need %s","category":"bench","priority":"HIGH","volume":10,'
  .. '"unit":"kg"}}', row[1], key)""",
                POSTGRAPHILE: """return string.format('{"input":{"need":{"customer":%d,'
  .. '"title":"Bench need %s","category":"bench","priority":"HIGH","volume":10,'
  .. '"unit":"kg"}}}', row[2], key)""",
            },
        ),
        WriteScenario(
            "transitionCustomer",
            "move a client one stage on (engaged -> negotiating -> churned -> engaged) with "
            "expectedVersion (one client per request)",
            "one request of three mutations: updateCustomerRoleByRowId (stage, phase, "
            "enteredAt), createStageChange, updateCustomerByRowId (version + 1); no guard, "
            "version check, closing of the previous stage row, audit or event",
            {
                CRMGRAPH: "mutation Move($input: TransitionCustomerInput!) { "
                "transitionCustomer(input: $input) { customer { id stage version } "
                f"stageChange {{ id fromStage toStage at }} {errors} }} }}",
                POSTGRAPHILE: "mutation Move($role: Int!, $customer: Int!, $from: String!, "
                "$to: String!, $phase: String!, $at: Datetime!, $version: Int!) { "
                "role: updateCustomerRoleByRowId(input: { rowId: $role, customerRolePatch: "
                "{ stage: $to, phase: $phase, enteredAt: $at } }) { customerRole { stage } } "
                "change: createStageChange(input: { stageChange: { customer: $customer, "
                'kind: "client", fromStage: $from, toStage: $to, at: $at } }) '
                "{ stageChange { id fromStage toStage at } } "
                "customer: updateCustomerByRowId(input: { rowId: $customer, customerPatch: "
                "{ version: $version, updatedAt: $at } }) { customer { id version } } }",
            },
            {
                CRMGRAPH: """return string.format('{"input":{"id":"%s","expectedVersion":%d,'
  .. '"toStage":"%s"}}', row[1], row[3] + k, stage_at(row, k + 1))""",
                POSTGRAPHILE: """local to = stage_at(row, k + 1)
return string.format('{"role":%d,"customer":%d,"from":"%s","to":"%s","phase":"%s",'
  .. '"at":"%s","version":%d}', row[5], row[2], stage_at(row, k), to, PHASE[to], NOW,
  row[3] + k + 1)""",
            },
            pool="transitions",
        ),
    ]


async def drain_events(conn: asyncpg.Connection) -> str:
    """Wait until crmgraph's background passes have handled every event the
    writes so far made (delivered to plugins, published live, fanned out to
    webhooks): a load's writes leave a backlog behind, whose work belongs to
    that load and must not run during the next one. Says how long it took."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    first = None
    while True:
        left = await conn.fetchval(PENDING_EVENTS)
        first = left if first is None else first
        if not left:
            break
        if loop.time() - start > DRAIN_TIMEOUT_SECONDS:
            print(f"  {left} events still pending after {DRAIN_TIMEOUT_SECONDS} s", file=sys.stderr)
            break
        await asyncio.sleep(DRAIN_POLL_SECONDS)  # polling the backlog, not synchronisation
    return f" (backlog {first} events, {loop.time() - start:.1f} s)" if first else ""


async def pool_rows(conn: asyncpg.Connection, pool: str) -> list[tuple[str, int, int, int, int]]:
    """The customers a load writes to, as the Lua rows {gid, id, version,
    stage index in CYCLE (0 outside it), role id}, read now."""
    if not pool:
        return []
    args = (list(CYCLE),) if pool == "transitions" else ()
    rows = await conn.fetch(POOLS[pool], *args)
    if not rows:
        raise SystemExit(f"no customers for the {pool} pool: reseed with --reseed")
    return [
        (
            global_id(r["id"]),
            r["id"],
            r["version"],
            CYCLE.index(r["stage"]) if r["stage"] in CYCLE else 0,
            r["role"],
        )
        for r in rows
    ]


def lua_rows(rows: list[tuple[str, int, int, int, int]]) -> str:
    return "{\n" + ",\n".join(f'{{"{g}", {i}, {v}, {s}, {r}}}' for g, i, v, s, r in rows) + "}"


async def write_script(
    conn: asyncpg.Connection,
    scenario: WriteScenario,
    server_kind: str,
    headers: dict[str, str],
    connections: int,
    limit: int = 0,
) -> str:
    """The wrk script of one load of ``scenario``: a fresh tag, the pool as
    it is in the database now, and ``limit`` answers per thread (0: none).
    The copy's statistics are taken again first: a restored copy has none,
    autovacuum is off on the seeded database, and without them every create
    load ran slower than the one before it (plans for a key table grown by
    the earlier loads), whichever server ran it."""
    await conn.execute("ANALYZE")
    rows = await pool_rows(conn, scenario.pool)
    tag = f"w{next(_tags)}"
    quoted = json.dumps(json.dumps(scenario.documents[server_kind]))
    definitions = "\n".join(
        [
            f"QUERY = {quoted}",
            f'TAG = "{tag}"',
            f'NOW = "{datetime.now(UTC).isoformat()}"',
            f"T = {threads(connections)}",
            f"ROWS = {lua_rows(rows)}",
            "PER = math.floor(#ROWS / T)",
            f"TAGNUM = {tag[1:]}",
            f"function variables(key, row, k, name)\n{scenario.variables[server_kind]}\nend",
            LUA_HELPERS,
        ]
    )
    return dynamic_script(definitions, headers, limit)


def write_url(source_url: str) -> str:
    config = postgres_config(source_url)
    return source_url.rsplit("/", 1)[0] + f"/{config['database']}{WRITE_DATABASE_SUFFIX}"


@contextlib.asynccontextmanager
async def write_database(source_url: str) -> AsyncIterator[str]:
    """A copy of the seeded database for the write scenarios, dropped at the
    end: CREATE DATABASE ... TEMPLATE, or, while other sessions use the source
    (the template must have none), pg_dump piped into pg_restore."""
    config = postgres_config(source_url)
    source, target = config["database"], config["database"] + WRITE_DATABASE_SUFFIX
    admin = await analytics.connect(source_url, "postgres")
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{target}" WITH (FORCE)')
        try:
            await admin.execute(f'CREATE DATABASE "{target}" TEMPLATE "{source}"')
            print(f"writes on {target} (a template copy of {source})")
        except asyncpg.ObjectInUseError:
            await admin.execute(f'CREATE DATABASE "{target}"')
            dump_restore(config, source, target)
            print(f"writes on {target} (pg_dump of {source}: other sessions use it)")
        yield write_url(source_url)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{target}" WITH (FORCE)')
        await admin.close()


def dump_restore(config: dict[str, Any], source: str, target: str) -> None:
    where = ["-h", str(config["host"]), "-p", str(config["port"]), "-U", str(config["user"])]
    env = {**os.environ, **({"PGPASSWORD": config["password"]} if "password" in config else {})}
    dump = subprocess.Popen(["pg_dump", *where, "-Fc", source], stdout=subprocess.PIPE, env=env)
    subprocess.run(
        ["pg_restore", *where, "--no-owner", "--exit-on-error", "-d", target],
        stdin=dump.stdout,
        check=True,
        env=env,
    )
    if dump.wait() != 0:
        raise RuntimeError(f"pg_dump {source} failed")
