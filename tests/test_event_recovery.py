"""The outbox survives a crash: events written while their handler fails are
still undelivered when the server is killed (SIGKILL, no shutdown), and the
next server process delivers every one of them, in order per customer."""

from __future__ import annotations

import os
from pathlib import Path

import httpx

from crmgraph.events import EVENT_MAX_ATTEMPTS
from crmgraph.testing import run_sql, settings_for
from tests.helpers import poll, server_process

PLUGIN = "tests.plugins_for_tests.event_journal"
POLL_SECONDS = 0.2
CREATE = """mutation($input: CreateCustomerInput!) {
  createCustomer(input: $input) { customer { id } userErrors { message } }
}"""


def server_env(database_url: str, journal: Path, poll_seconds: float) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
        "CRMGRAPH_DATABASE_URL": database_url,
        "CRMGRAPH_PLUGINS": PLUGIN,
        "CRMGRAPH_LOAD_ENTRY_POINTS": "0",
        "CRMGRAPH_ANONYMOUS": "1",
        "CRMGRAPH_RATE_LIMIT_COST": "0",
        "CRMGRAPH_EVENT_POLL_SECONDS": str(poll_seconds),
        "CRMGRAPH_TEST_JOURNAL": str(journal),
    }


def events(database_url: str) -> list[dict]:
    return run_sql(
        settings_for(database_url),
        "SELECT id, type, customer, attempts, delivered_at FROM event ORDER BY id",
    )


def all_rows(database_url: str, condition: str) -> list[dict] | None:
    """The outbox's rows if there are some and each meets ``condition``."""
    rows = events(database_url)
    checks = {"tried": lambda r: r["attempts"] >= 1, "delivered": lambda r: r["delivered_at"]}
    return rows if rows and all(checks[condition](r) for r in rows) else None


def test_events_undelivered_when_the_server_is_killed_are_delivered_after_restart(
    database_url: str, tmp_path: Path
) -> None:
    journal = tmp_path / "journal.txt"
    failing = tmp_path / "journal.txt.fail"
    failing.touch()
    # The first server polls as often as the second: the backoff (its default
    # policy, 2 s doubling) spaces the retries, so no event runs out of
    # attempts however long a loaded machine takes to kill it.
    env, log = server_env(database_url, journal, POLL_SECONDS), tmp_path / "server.log"
    with server_process(env, log) as (first, url):
        for name in ("Ada", "Grace", "Edsger"):
            body = httpx.post(
                f"{url}/graphql",
                json={"query": CREATE, "variables": {"input": {"kind": "CLIENT", "name": name}}},
                timeout=60,
            ).json()
            assert body["data"]["createCustomer"]["userErrors"] == [], body
        # every event was tried and failed: undelivered, but not forgotten
        pending = poll("failed delivery attempts", lambda: all_rows(database_url, "tried"))
        assert [r["type"] for r in pending] == ["customer.created"] * 3
        assert all(r["delivered_at"] is None for r in pending)
        assert all(r["attempts"] < EVENT_MAX_ATTEMPTS for r in events(database_url))
        first.kill()  # no shutdown: whatever was in flight is cut off
        first.wait(timeout=30)
    assert not journal.exists()

    failing.unlink()
    with server_process(server_env(database_url, journal, POLL_SECONDS), log):
        delivered = poll("every event delivered", lambda: all_rows(database_url, "delivered"))
    lines = journal.read_text().splitlines()
    # each event is in the journal once. Order is kept per customer only: these
    # three are of three customers, and their retries (each with its own
    # backoff, jittered) fall due in any order
    assert sorted(int(line.split()[0]) for line in lines) == [r["id"] for r in delivered]
    assert {line.split()[1] for line in lines} == {"customer.created"}
