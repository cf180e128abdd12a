"""Issues 24 and 25 attacked over a real socket, on both engines: clients
racing to give one party the same role (some as dry runs) leave exactly one
role, one version step and one event; malformed ``dryRun`` and ``asOf``
values are refused before anything runs and write nothing; an ``asOf`` after
now answers the present."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from crmgraph.testing import LiveServer
from tests.helpers import create_customer
from tests.test_customer_roles import ADD, events

RACERS = 8
READ = """query($id: ID!, $at: DateTime) { customer(id: $id, asOf: $at) {
  name version roles { kind } } }"""


async def race(url: str, cid: str) -> list[dict[str, Any]]:
    """RACERS addRole GUARANTOR at version 1, every third a dry run, at once."""

    async def one(client: httpx.AsyncClient, n: int) -> dict[str, Any]:
        data = {"customerId": cid, "kind": "GUARANTOR", "expectedVersion": 1}
        data["dryRun"] = n % 3 == 0
        response = await client.post(
            f"{url}/graphql", json={"query": ADD, "variables": {"input": data}}
        )
        return {"dry": data["dryRun"], **response.json()["data"]["addRole"]}

    async with httpx.AsyncClient(timeout=60) as client:
        return list(await asyncio.gather(*(one(client, n) for n in range(RACERS))))


def test_racing_adds_of_one_role_leave_one(server: LiveServer) -> None:
    cid = create_customer(server, name="Rhea Raced", client={"segment": "CONSUMER"})["id"]
    answers = asyncio.run(race(server.url, cid))
    real = [a for a in answers if not a["dry"]]
    won = [a for a in real if not a["userErrors"]]
    assert len(won) == 1, real
    lost = {e["code"] for a in real if a["userErrors"] for e in a["userErrors"]}
    assert lost <= {"VERSION_CONFLICT", "ROLE_HELD"}, real
    dry = {e["code"] for a in answers if a["dry"] for e in a["userErrors"]}
    assert dry <= {"VERSION_CONFLICT", "ROLE_HELD"}, answers
    read = server.gql(READ, {"id": cid, "at": None})["customer"]
    assert read["version"] == 2
    assert [r["kind"] for r in read["roles"]] == ["CLIENT", "GUARANTOR"]
    added = [payload for kind, payload in events(server, cid) if kind == "customer.role_added"]
    assert len(added) == 1


def test_malformed_dry_run_and_as_of_are_refused_and_write_nothing(server: LiveServer) -> None:
    cid = create_customer(server, name="Mal Formed", client={"segment": "CONSUMER"})["id"]
    before = events(server, cid)
    bad_dry = {"customerId": cid, "kind": "GUARANTOR", "expectedVersion": 1, "dryRun": "yes"}
    body = server.post(ADD, {"input": bad_dry})
    assert body.get("data") is None and "dryRun" in body["errors"][0]["message"]
    for at in ("yesterday", "2026-13-40T00:00:00Z", 12):
        body = server.post(READ, {"id": cid, "at": at})
        assert body.get("data") is None and body["errors"], at
    assert events(server, cid) == before
    assert server.gql(READ, {"id": cid, "at": None})["customer"]["version"] == 1


def test_as_of_after_now_answers_the_present(server: LiveServer) -> None:
    cid = create_customer(server, name="Fay Future", client={"segment": "CONSUMER"})["id"]
    present = server.gql(READ, {"id": cid, "at": None})["customer"]
    later = server.gql(READ, {"id": cid, "at": "2999-01-01T00:00:00Z"})["customer"]
    assert later == present
