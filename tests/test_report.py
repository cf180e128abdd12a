"""`crmgraph report`: the real command on a small database (SQLite and
PostgreSQL) whose funnel, satisfaction and cohorts are worked out by hand below,
then its HTML report opened offline in headless Chromium.

The data (period 2025-01-01 to 2025-03-31, times 10:00 UTC; Alice owns P1, P2
and C2, Bob owns P3 and C1):

- P1, a prospect since Jan 1: contacted Jan 3, qualified Jan 7, converted Jan 17
  (now a client, active since Jan 17);
- P2, a prospect since Jan 10: contacted Jan 14, disqualified Jan 20;
- P3, a prospect since Feb 1, still a new lead;
- C1, a client since 2024-12-01 (before the period): engaged Jan 5,
  negotiating Jan 15, active Feb 14;
- C2, a client since Feb 1: engaged Feb 11, negotiating Mar 1, churned Mar 11.

Prospect funnel: "New lead" entered by P1, P2, P3, of whom P1 and P2 moved on
(conversion 2/3), P3 is still there (current 1), stays of 2 and 4 days (median
3); "Contacted": P1 went on, P2 was disqualified (50% / 50%; 4 and 6 days);
"Qualified": P1 converted (100%; 10 days). Client funnel: "Interest" entered in
the period only by C2 (10 days); "Engaged" by C1 and C2, both went on (10 and
18 days: median 14); "Negotiating": C1 went on after 30 days, C2 churned after
10 (50% / 50%, median 20); "Active": P1 (converted) and C1, both still there.

Phases (per customer, across types): ENGAGEMENT entered by all 5; P1, C1 and C2
reached a later phase (3/5), P2 ended without doing so (1/5); ACQUISITION by
P1, C1, C2: P1 converted, C1 became active (2/3), C2 churned (1/3).

Rated interactions in the period: EMAIL 5 (P1, Jan), 4 (C1, Feb), 2 (C2, Feb):
3 rated, average 3.67, 2 of 3 satisfied; PHONE 3 (P2, Jan), 5 (C1, Mar): 2,
4.00, 50%; MEETING 1 (C2, Mar). Ratings of December and April are outside the
period; one interaction (P1, Feb) is not rated. Cohorts: January (P1, P2) all
active in January, P1 in February, nobody in March; February (P3, C2): C2
active in February and March.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from crmgraph import auth
from crmgraph.app import AppState, with_state
from crmgraph.db import writes
from crmgraph.testing import settings_for
from tests.conftest import fresh_database
from tests.helpers import DevTools, chromium, cli_in_process, insert_customer, poll

ALICE, BOB = "alice@example.com", "bob@example.com"
PERIOD = ("--from", "2025-01-01", "--to", "2025-03-31")
TRICKY_OUTCOME = "escalated [bold]<b>now</b> & co"  # rich markup and HTML, both inert


def at(month: int, day: int, year: int = 2025) -> datetime.datetime:
    return datetime.datetime(year, month, day, 10, tzinfo=datetime.UTC)


# name: (owner, created, [(kind, stage, at)]); the customer's type is the last one entered
CUSTOMERS: dict[str, tuple[str, datetime.datetime, list[tuple[str, str, datetime.datetime]]]] = {
    "P1": (ALICE, at(1, 1), [("prospect", "new", at(1, 1)), ("prospect", "contacted", at(1, 3)),
                             ("prospect", "qualified", at(1, 7)),
                             ("prospect", "converted", at(1, 17)), ("client", "active", at(1, 17))]),
    "P2": (ALICE, at(1, 10), [("prospect", "new", at(1, 10)), ("prospect", "contacted", at(1, 14)),
                              ("prospect", "disqualified", at(1, 20))]),
    "P3": (BOB, at(2, 1), [("prospect", "new", at(2, 1))]),
    "C1": (BOB, at(12, 1, 2024), [("client", "interest", at(12, 1, 2024)),
                                  ("client", "engaged", at(1, 5)),
                                  ("client", "negotiating", at(1, 15)),
                                  ("client", "active", at(2, 14))]),
    "C2": (ALICE, at(2, 1), [("client", "interest", at(2, 1)), ("client", "engaged", at(2, 11)),
                             ("client", "negotiating", at(3, 1)), ("client", "churned", at(3, 11))]),
}  # fmt: skip
# (customer, channel, at, satisfaction, outcome)
INTERACTIONS = [
    ("P1", "EMAIL", at(1, 10), 5, "order_placed"),
    ("P1", "EMAIL", at(2, 12), None, None),
    ("P2", "PHONE", at(1, 20), 3, "callback_requested"),
    ("C1", "EMAIL", at(12, 15, 2024), 1, "order_placed"),
    ("C1", "EMAIL", at(2, 5), 4, "order_placed"),
    ("C1", "PHONE", at(3, 5), 5, "order_placed"),
    ("C2", "EMAIL", at(2, 20), 2, TRICKY_OUTCOME),
    ("C2", "MEETING", at(3, 15), 1, None),
    ("C2", "EMAIL", at(4, 10), 1, "order_placed"),
]


async def seed(state: AppState) -> dict[str, int]:
    """The data set above, written as the CRM writes it (customer, its roles and
    stage history, interactions), with the times chosen here. Returns user ids."""
    db = state.db
    users = {email: await auth.create_user(db, email, email, "agent") for email in (ALICE, BOB)}
    async with db.transaction():
        for name, (owner, created, history) in CUSTOMERS.items():
            pk = await insert_customer(state, name, created, history, users[owner])
            for customer, channel, when, rating, outcome in INTERACTIONS:
                if customer == name:
                    await writes.insert(db, "interaction", {
                        "customer": pk, "channel": channel, "direction": "INBOUND",
                        "occurred_at": when, "subject": "hello", "satisfaction": rating,
                        "outcome": outcome, "created_at": when,
                    })  # fmt: skip
    return users


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def report_db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, dict[str, int]]]:
    """The data set in a fresh database on each engine, shared by this module's
    tests (they only read it)."""
    path = tmp_path_factory.mktemp("report") / "report.sqlite"
    with fresh_database(request.param, request, path) as url:
        yield url, asyncio.run(with_state(settings_for(url), seed))


def report(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": "/usr/bin:/bin",
        "CRMGRAPH_LOAD_ENTRY_POINTS": "0",
        "CRMGRAPH_DATABASE_URL": database_url,
        "PYTHONIOENCODING": "utf-8",
    }
    return subprocess.run(
        [sys.executable, "-m", "crmgraph", "report", *args],
        env=env, capture_output=True, text=True, encoding="utf-8", timeout=120,
    )  # fmt: skip


def report_in_process(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """:func:`report` run by ``crmgraph.cli.main`` in this process, without a
    process's 1.5 s of imports: for the tests of what the report says, once
    :func:`report`'s own process has shown the command's output as printed."""
    return cli_in_process(database_url, "report", *args)


def run_report(database_url: str, *args: str, in_process: bool = True) -> str:
    result = (report_in_process if in_process else report)(database_url, *args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def table(output: str, title: str) -> dict[str, list[str]]:
    """The rows of the rich table titled ``title``, by first cell."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == title)
    rows: dict[str, list[str]] = {}
    for line in lines[start + 1 :]:
        if line.startswith("└"):
            return rows
        if line.startswith("│"):
            cells = [cell.strip() for cell in line.split("│")[1:-1]]
            rows[cells[0]] = cells[1:]
    raise AssertionError(f"table {title!r} has no end:\n{output}")


def test_report_prints_the_funnel_and_satisfaction(report_db: tuple[str, dict[str, int]]) -> None:
    out = run_report(report_db[0], *PERIOD, in_process=False)  # the real command
    assert "period: 2025-01-01 to 2025-03-31 · types: all · owner: all" in out

    # stage: phase, entered, current, conversion, drop-off, median days
    assert table(out, "Funnel · prospect") == {
        "New lead": ["ENGAGEMENT", "3", "1", "66.7%", "0.0%", "3.0"],
        "Contacted": ["ENGAGEMENT", "2", "0", "50.0%", "50.0%", "5.0"],
        "Qualified": ["ACQUISITION", "1", "0", "100.0%", "0.0%", "10.0"],
        "Converted": ["ENDED", "1", "1", "0.0%", "0.0%", "—"],
        "Disqualified": ["ENDED", "1", "1", "0.0%", "0.0%", "—"],
    }
    assert table(out, "Funnel · client") == {
        "Interest": ["ENGAGEMENT", "1", "0", "100.0%", "0.0%", "10.0"],
        "Engaged": ["ENGAGEMENT", "2", "0", "100.0%", "0.0%", "14.0"],
        "Negotiating": ["ACQUISITION", "2", "0", "50.0%", "50.0%", "20.0"],
        "Active": ["RETENTION", "2", "2", "0.0%", "0.0%", "—"],
        "Loyal": ["EXPANSION", "0", "0", "—", "—", "—"],
        "Expanding": ["EXPANSION", "0", "0", "—", "—", "—"],
        "At risk": ["RETENTION", "0", "0", "—", "—", "—"],
        "Churned": ["ENDED", "1", "1", "0.0%", "0.0%", "—"],
    }
    assert "employee: no stage entries in the period" in out
    # phase: entered, current (by the customer's present type), advanced, dropped off, rates
    assert table(out, "Funnel by phase") == {
        "ENGAGEMENT": ["5", "1", "3", "1", "60.0%", "20.0%"],
        "ACQUISITION": ["3", "0", "2", "1", "66.7%", "33.3%"],
        "RETENTION": ["2", "2", "0", "0", "0.0%", "0.0%"],
        "EXPANSION": ["0", "0", "0", "0", "—", "—"],
        "ENDED": ["3", "2", "0", "0", "0.0%", "0.0%"],
    }

    # rated, average, satisfied share
    assert table(out, "Satisfaction by channel") == {
        "EMAIL": ["3", "3.67", "66.7%"],
        "MEETING": ["1", "1.00", "0.0%"],
        "PHONE": ["2", "4.00", "50.0%"],
    }
    assert table(out, "Satisfaction by outcome") == {
        "callback_requested": ["1", "3.00", "0.0%"],
        TRICKY_OUTCOME: ["1", "2.00", "0.0%"],
        "order_placed": ["3", "4.67", "100.0%"],
        "(none)": ["1", "1.00", "0.0%"],
    }


def test_report_filters_by_owner_and_kind(report_db: tuple[str, dict[str, int]]) -> None:
    url, users = report_db
    bob = run_report(url, *PERIOD, "--owner", BOB)
    assert f"owner: {BOB}" in bob
    assert table(bob, "Funnel · prospect")["New lead"] == [
        "ENGAGEMENT", "1", "1", "0.0%", "0.0%", "—"
    ]  # fmt: skip
    client = table(bob, "Funnel · client")
    assert client["Engaged"] == ["ENGAGEMENT", "1", "0", "100.0%", "0.0%", "10.0"]
    assert client["Negotiating"] == ["ACQUISITION", "1", "0", "100.0%", "0.0%", "30.0"]
    assert table(bob, "Satisfaction by channel") == {
        "EMAIL": ["1", "4.00", "100.0%"],
        "PHONE": ["1", "5.00", "100.0%"],
    }

    # Alice by id, prospects only: the funnel follows the prospect history (P1
    # converted, so is a client now); satisfaction, the customers now prospects (P2).
    alice = run_report(url, *PERIOD, "--owner", str(users[ALICE]), "--kind", "prospect")
    assert f"owner: {ALICE}" in alice and "types: prospect" in alice
    assert "Funnel · client" not in alice
    prospect = table(alice, "Funnel · prospect")
    assert prospect["New lead"] == ["ENGAGEMENT", "2", "0", "100.0%", "0.0%", "3.0"]
    assert prospect["Contacted"] == ["ENGAGEMENT", "2", "0", "50.0%", "50.0%", "5.0"]
    assert table(alice, "Satisfaction by channel") == {"PHONE": ["1", "3.00", "0.0%"]}

    # without a period: everything up to now, December's and April's ratings included
    everything = run_report(url)
    assert "period: the beginning to " in everything
    assert table(everything, "Satisfaction by channel")["EMAIL"] == ["5", "2.60", "40.0%"]


def test_report_needs_a_migrated_database(tmp_path: Path) -> None:
    result = report(f"sqlite:///{tmp_path / 'empty.sqlite'}")
    assert result.returncode == 2
    assert "run `crmgraph migrate`" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--owner", "nobody@example.com"), "error: no user with e-mail nobody@example.com"),
        (("--owner", "999"), "error: no user with id 999"),
        (("--kind", "client", "--kind", "dragon"), "error: unknown customer type dragon"),
        (("--from", "2025-03-01", "--to", "2025-01-31"), "error: --from must come before --to"),
        (("--from", "March"), "not an ISO date or date-time: 'March'"),
    ],
)
def test_report_refuses_bad_arguments(
    report_db: tuple[str, dict[str, int]], args: tuple[str, ...], message: str
) -> None:
    result = report_in_process(report_db[0], *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert result.stdout == ""


CHARTS_JS = """(() => {
  const charts = {};
  for (const svg of document.querySelectorAll('svg[data-chart]')) {
    const box = svg.getBoundingClientRect();
    charts[svg.dataset.chart] = {
      width: box.width, height: box.height,
      title: svg.querySelector(':scope > title').textContent,
      labelledBy: svg.getAttribute('aria-labelledby'),
      bars: [...svg.querySelectorAll('.bar rect')].map(r => r.getBBox().width),
      lines: [...svg.querySelectorAll('path.line')].map(p => [
        p.closest('.series').querySelector('title').textContent, p.getTotalLength()]),
      points: svg.querySelectorAll('circle.point').length,
      cells: [...svg.querySelectorAll('.cell')].map(c => c.querySelector('text').textContent),
      axisTitles: [...svg.querySelectorAll('.axis-title')].map(t => t.textContent),
    };
  }
  return {
    title: document.title,
    headings: [...document.querySelectorAll('h1, h2, h3')].map(h => h.textContent),
    figures: [...document.querySelectorAll('figure')].map(
      f => [!!f.querySelector('svg'), f.querySelector('figcaption')?.textContent || '']),
    links: [...document.querySelectorAll('[src], [href]')].map(
      e => e.getAttribute('src') ?? e.getAttribute('href')),
    scripts: document.scripts.length,
    bold: document.querySelectorAll('b').length,
    tables: [...document.querySelectorAll('table')].map(t => t.innerText).join('\\n'),
    resources: performance.getEntriesByType('resource').map(e => e.name),
    charts,
  };
})()"""


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[DevTools]:
    with chromium(tmp_path) as devtools:
        yield devtools


@pytest.mark.browser
def test_html_report_renders_offline_in_chromium(
    report_db: tuple[str, dict[str, int]], browser: DevTools, tmp_path: Path
) -> None:
    page = tmp_path / "report.html"
    result = report(report_db[0], *PERIOD, "--html", str(page))
    assert result.returncode == 0, result.stderr
    assert f"HTML report written to {page}" in result.stderr
    html = page.read_text(encoding="utf-8")
    assert "escalated [bold]&lt;b&gt;now&lt;/b&gt; &amp; co" in html
    assert "<script" not in html and "://" not in html

    browser.send("Page.navigate", url=page.as_uri())
    poll("the report to load", lambda: browser.evaluate("document.readyState") == "complete")
    seen: dict[str, Any] = browser.evaluate(CHARTS_JS)

    assert seen["title"] == "crmgraph report · 2025-01-01 to 2025-03-31"
    assert seen["headings"][:3] == ["crmgraph report", "Lifecycle funnel", "agenda"]
    assert {"Satisfaction", "Cohort retention", "By phase"} <= set(seen["headings"])
    assert all(has_svg and caption for has_svg, caption in seen["figures"]), seen["figures"]
    charts = seen["charts"]
    assert set(charts) == {"funnel-client", "funnel-prospect", "funnel-phases", "satisfaction",
                           "cohorts"}  # fmt: skip
    for name, chart in charts.items():
        assert chart["width"] > 100 and chart["height"] > 100, (name, chart)
        assert chart["title"] and chart["labelledBy"], name
        assert len(chart["axisTitles"]) == 2, (name, chart["axisTitles"])

    # funnel: a bar per stage (per phase), as long as the stage's entries
    prospect = charts["funnel-prospect"]["bars"]  # new, contacted, qualified, converted, disq.
    assert len(prospect) == 5
    assert prospect[0] == pytest.approx(3 * prospect[2]) and prospect[1] == pytest.approx(
        2 * prospect[2]
    )
    assert len(charts["funnel-client"]["bars"]) == 8
    assert charts["funnel-client"]["bars"][4] == 0  # nobody became loyal
    phases = charts["funnel-phases"]["bars"]
    assert len(phases) == 5 and phases[0] == pytest.approx(5 / 3 * phases[1])

    # satisfaction: a line per channel; EMAIL and PHONE have two months, MEETING one
    lines = dict(charts["satisfaction"]["lines"])
    assert set(lines) == {"EMAIL", "MEETING", "PHONE"}
    assert lines["EMAIL"] > 0 and lines["PHONE"] > 0 and lines["MEETING"] == 0
    assert charts["satisfaction"]["points"] == 5

    # cohorts: January (3 months) and February (2 months)
    assert charts["cohorts"]["cells"] == ["100%", "50%", "0%", "50%", "50%"]

    # the tables, with database text shown as text
    assert TRICKY_OUTCOME in seen["tables"]
    assert seen["bold"] == 0 and seen["scripts"] == 0

    # offline: nothing linked but in-page anchors, nothing requested but the file
    assert all(link.startswith("#") for link in seen["links"]), seen["links"]
    assert seen["resources"] == []
    requested = [
        event["params"]["request"]["url"]
        for event in browser.events
        if event["method"] == "Network.requestWillBeSent"
    ]
    assert set(requested) <= {page.as_uri()}, requested
    errors = [e["params"] for e in browser.events if e["method"] == "Runtime.exceptionThrown"]
    assert errors == []

    size = browser.send("Page.getLayoutMetrics")["cssContentSize"]
    shot = browser.send(
        "Page.captureScreenshot",
        format="png",
        captureBeyondViewport=True,
        clip={"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1},
    )["data"]
    (tmp_path / "report.png").write_bytes(base64.b64decode(shot))
    if os.environ.get("CRMGRAPH_REPORT_SCREENSHOT"):
        Path(os.environ["CRMGRAPH_REPORT_SCREENSHOT"]).write_bytes(base64.b64decode(shot))
