"""``crmgraph events failed|retry`` on both engines: an operator sees the
events the dispatcher gave up on, with their last error, and hands chosen
ones (or all) to the event handlers again, which then receive them."""

from __future__ import annotations

import asyncio

import pytest

from crmgraph import cli
from crmgraph.app import with_state
from crmgraph.db import writes
from crmgraph.events import EVENT_MAX_ATTEMPTS
from crmgraph.testing import run_sql, settings_for
from tests.plugins_for_tests import flaky_handler

PLUGIN = "tests.plugins_for_tests.flaky_handler"


def command(database_url: str, *argv: str) -> int:
    """``crmgraph --database URL events ...``, as the command line runs it."""
    return cli.main(["--database", database_url, "events", *argv])


def given_up_event(database_url: str, event_type: str) -> int:
    rows = run_sql(
        settings_for(database_url),
        "INSERT INTO event (type, payload, created_at, attempts, last_error) "
        "VALUES ({}, {}, {}, {}, {}) RETURNING id",
        event_type,
        "{}",
        writes.now(),
        EVENT_MAX_ATTEMPTS,
        f"{event_type}: downstream system unavailable",
    )
    return int(rows[0]["id"])


def deliver(database_url: str) -> int:
    """One pass of a server's dispatcher, with the recording handler."""
    settings = settings_for(database_url, plugins=(PLUGIN,))
    return asyncio.run(with_state(settings, lambda state: state.events.deliver_pending()))


def test_given_up_events_are_listed_and_handed_out_again(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    flaky_handler.reset()
    first = given_up_event(database_url, "test.first")
    second = given_up_event(database_url, "test.second")
    assert deliver(database_url) == 0  # given up: no pass hands them out

    assert command(database_url, "failed") == 0
    listed = capsys.readouterr()
    lines = listed.out.splitlines()
    assert [int(line.split("\t")[0]) for line in lines] == [first, second]
    assert "test.first: downstream system unavailable" in lines[0]
    assert f"{EVENT_MAX_ATTEMPTS} attempts" in lines[0]
    assert "2 given-up events" in listed.err

    assert command(database_url, "retry", str(first), "999999") == 2
    said = capsys.readouterr()
    assert said.out.startswith("1 events") and "999999" in said.err
    assert deliver(database_url) == 1
    assert [c.event for c in flaky_handler.calls] == [first]

    assert command(database_url, "failed") == 0
    assert [line.split("\t")[0] for line in capsys.readouterr().out.splitlines()] == [str(second)]
    assert command(database_url, "retry", "--all") == 0
    assert capsys.readouterr().out.startswith("1 events")
    assert deliver(database_url) == 1
    rows = run_sql(settings_for(database_url), "SELECT * FROM event ORDER BY id")
    assert all(r["delivered_at"] and r["attempts"] == 1 and not r["last_error"] for r in rows)
