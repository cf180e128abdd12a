"""The GraphQL load benchmark's numbers and their table: per scenario and
server, req/s, the ratio crmgraph / PostGraphile, latencies, server CPU, database
time, statements and round trips per request, and the answers that were not
right (non-2xx; GraphQL errors or userErrors where the load checks them)."""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from bench.load_queries import CRMGRAPH, POSTGRAPHILE
from bench.load_wrk import Load

VARIANT = "crmgraph-b"
NAMES = {CRMGRAPH: "crmgraph", POSTGRAPHILE: "PostGraphile"}


class Named(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def description(self) -> str: ...


@dataclass
class Results:
    loads: dict[tuple[str, str], list[Load]] = field(default_factory=dict)  # (scenario, server)
    # CPU time the server process spent per request during each load, in ms
    cpu_ms: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    # database time (pg_stat_statements: execution + planning) per request, in ms
    db_ms: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    # the same, with requests sent one at a time (no wait for CPU or locks)
    db_ms_serial: dict[tuple[str, str], str] = field(default_factory=dict)
    statements: dict[tuple[str, str], str] = field(default_factory=dict)
    round_trips: dict[tuple[str, str], str] = field(default_factory=dict)
    checked: set[str] = field(default_factory=set)  # scenarios whose answers wrk checks

    def add(
        self, scenario: str, server: str, load: Load, cpu_seconds: float, db_ms: float | None
    ) -> None:
        self.loads.setdefault((scenario, server), []).append(load)
        requests = max(1, load.requests)
        self.cpu_ms.setdefault((scenario, server), []).append(cpu_seconds * 1000 / requests)
        if db_ms is not None:
            self.db_ms.setdefault((scenario, server), []).append(db_ms / requests)


def header(servers: list[str], pairs: list[tuple[str, str]]) -> list[str]:
    names = [NAMES.get(s, s) for s in servers]
    cells = ["scenario"]
    cells += [f"{n} req/s" for n in names]
    cells += [f"ratio {NAMES.get(a, a)} / {NAMES.get(b, b)}" for a, b in pairs]
    cells += [f"{n} p50 / p99 ms" for n in names]
    cells += [f"{n} CPU ms/req" for n in names]
    cells += [f"{n} DB ms/req" for n in names]
    cells += [f"{n} DB ms/req serial" for n in names]
    cells += [f"{n} SQL/req" for n in names]
    cells += [f"{n} round trips/req" for n in names]
    cells += [f"{n} non-2xx / errors" for n in names]
    return cells


def row(
    results: Results, scenario: str, servers: list[str], pairs: list[tuple[str, str]]
) -> list[str]:
    loads = {s: results.loads[(scenario, s)] for s in servers}
    cells = [scenario]
    cells += [f"{statistics.median(x.rps for x in loads[s]):.0f}" for s in servers]
    for a, b in pairs:
        rounds = zip(loads[a], loads[b], strict=True)
        cells.append(f"{statistics.median(x.rps / y.rps for x, y in rounds):.2f}")
    for s in servers:
        p50 = statistics.median(x.p50_ms for x in loads[s])
        p99 = statistics.median(x.p99_ms for x in loads[s])
        cells.append(f"{p50:.1f} / {p99:.1f}")
    cells += [f"{statistics.median(results.cpu_ms[(scenario, s)]):.2f}" for s in servers]
    for s in servers:
        db = results.db_ms.get((scenario, s))
        cells.append(f"{statistics.median(db):.2f}" if db else "-")
    cells += [results.db_ms_serial.get((scenario, s), "-") for s in servers]
    cells += [results.statements.get((scenario, s), "-") for s in servers]
    cells += [results.round_trips.get((scenario, s), "-") for s in servers]
    for s in servers:
        status = sum(x.bad_status + x.socket_errors for x in loads[s])
        errors = sum(x.graphql_errors for x in loads[s]) if scenario in results.checked else "-"
        cells.append(f"{status} / {errors}")
    return cells


def report(
    results: Results,
    chosen: Sequence[Named],
    servers: list[str],
    args: argparse.Namespace,
    notes: Sequence[str] = (),
) -> None:
    """One row per scenario: each server's req/s, the ratio of crmgraph's to
    every other server's (median of the rounds' ratios), latencies, CPU, DB
    time, SQL and round trips per request, wrong answers."""
    # every crmgraph against the peer, and the default crmgraph against the variant
    pairs = [(s, POSTGRAPHILE) for s in servers if s != POSTGRAPHILE and POSTGRAPHILE in servers]
    if VARIANT in servers:
        pairs.append((CRMGRAPH, VARIANT))
    print(
        f"\n{args.rounds} rounds of {args.duration:g} s per scenario and server, "
        f"{args.connections} connections, wrk on loopback; medians over rounds\n"
    )
    cells = header(servers, pairs)
    print("| " + " | ".join(cells) + " |")
    print("|" + "|".join("---" if i == 0 else "---:" for i in range(len(cells))) + "|")
    for scenario in chosen:
        print("| " + " | ".join(row(results, scenario.name, servers, pairs)) + " |")
    print("\nscenarios:")
    for scenario in chosen:
        print(f"  {scenario.name}: {scenario.description}")
    print(
        "ratio: req/s / the other server's req/s in the same round, median over rounds; "
        "CPU ms/req: the server process's user+system time over requests served (not the "
        "database's); DB ms/req: pg_stat_statements' execution + planning time of the "
        "database's statements during the load over requests served (wall time in the "
        "backend: with many connections it includes waiting for a CPU or a lock), serial: "
        "the same over the counting pass's requests sent one at a time; SQL/req: Execute (E) "
        "and simple Query (Q) messages on the wire"
        + (" (crmgraph's sqlStatements on SQLite)" if args.sqlite else "")
        + "; round trips/req: Sync (S) + simple Query (Q) messages; non-2xx / errors: "
        "summed over the rounds' loads, errors = answers with GraphQL errors or userErrors "
        "(checked by wrk on the write scenarios, '-' where not checked)"
    )
    for note in notes:
        print(note)
    if args.compare_env:
        print(f"{VARIANT}: crmgraph started with {' '.join(args.compare_env)}")
