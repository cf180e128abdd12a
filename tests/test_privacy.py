"""Personal data rights on both engines, through real API keys and a real
server: a customer with data in every core table and in crmgraph-loyalty's is
exported (every piece present) and erased, after which a scan of every
column of every table (found by introspecting the database) finds none of
its values while the analytics totals are unchanged; later writes are
refused (ERASED) and it is no longer offered as a duplicate; permissions;
a plugin that raises aborts the erasure with nothing changed; the command line."""

from __future__ import annotations

import dataclasses
import datetime
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from crmgraph.analytics import cohorts, funnel, needs, revenue, satisfaction
from crmgraph.analytics.metrics import plugin_metrics
from crmgraph.analytics.report import scope_for
from crmgraph.app import AppState
from crmgraph.privacy import ERASED_NAME
from tests.helpers import RoleWorld, codes, pk

PLUGINS = ("crmgraph_loyalty.plugin", "tests.plugins_for_tests.privacy_guard")
ROLES = ("admin", "manager", "agent", "viewer")

# Every value the customer's records hold about the person; the scan looks
# for each, case-insensitively, in every column of every table.
PERSONAL = {
    "name": "Zoltan Quibble-Marsh",
    "email": "zoltan.quibble@personal.example",
    "phone": "+34611223344",
    "industry": "Quibbleworks",
    "tax_id": "B99887766",
    "website": "zoltanquibble.example",
    "merged_name": "Zoltan Q. Marsh",
    "merged_email": "zqm@otherbox.example",
    "contact_name": "Yolanda Fernwhistle",
    "contact_email": "yolanda.fern@personal.example",
    "contact_phone": "+34622334455",
    "job_title": "Chief Hedgewarden",
    "contact_notes": "prefers calls after the siesta",
    "home_address": "12 Bramblethorn Lane",
    "subject": "Asked about the Marsh estate",
    "interaction_notes": "mentioned a knee operation",
    "need_title": "Storage for heirlooms",
    "need_description": "grandmother's clock collection",
    "note_body": "Met at the Villaquibble fair",
    "task_title": "Send the Quibble family catalogue",
    "task_description": "use the Bramblethorn address",
    "stage_reason": "keen after the Villaquibble fair",
    "evidence": "form signed at Villaquibble",
    "award_reason": "birthday gift for Zoltan",
    "merge_reason": "same Quibble household",
}
BIRTHDAY = "1979-02-03"
NEEDLES = sorted({*PERSONAL.values(), "Zoltan", "Quibble", "Fernwhistle", "Bramblethorn", BIRTHDAY})
AMOUNT = "120.00"


class World(RoleWorld):
    def export(self, gid: str, role: str = "admin") -> dict[str, Any] | None:
        found = self.data(
            "query($id: ID!) { personalDataExport(customerId: $id) { customerId document } }",
            {"id": gid},
            role,
        )["personalDataExport"]
        return found["document"] if found else None

    def erase(self, gid: str, reason: str = "request #7", role: str = "admin") -> Any:
        out = "customer { id name email erasedAt } erasure { id reason erasedCustomerIds counts { what count } erasedBy { name } }"
        return self.mutate("erasePersonalData", {"customerId": gid, "reason": reason}, out, role)


@pytest.fixture
def world(database_url: str) -> Iterator[World]:
    with World.serving(database_url, PLUGINS, ROLES, "privacy.example") as world:
        yield world


def populate(world: World) -> dict[str, str]:
    """The customer with a record in every core table and in loyalty_account,
    a customer merged into it, and a third party it is linked to."""
    p = PERSONAL
    # created with an Idempotency-Key: its stored response quotes the name
    response = world.server.http.post(
        "/graphql",
        json={
            "query": "mutation($input: CreateCustomerInput!) { createCustomer(input: $input) "
            "{ customer { id name email } } }",
            "variables": {
                "input": {
                    "kind": "CLIENT",
                    "name": p["name"],
                    "email": p["email"],
                    "phone": p["phone"],
                    "client": {
                        "segment": "ENTERPRISE",
                        "industry": p["industry"],
                        "taxId": p["tax_id"],
                        "website": p["website"],
                    },
                }
            },
        },
        headers={"Authorization": f"Bearer {world.keys['admin']}", "Idempotency-Key": "zq-1"},
    )
    c = response.json()["data"]["createCustomer"]["customer"]["id"]
    other = world.create(p["merged_name"], email=p["merged_email"])
    third = world.create("Unrelated Ltd")
    contact = world.ok(
        "addContact",
        {
            "customerId": c,
            "name": p["contact_name"],
            "email": p["contact_email"],
            "phone": p["contact_phone"],
            "jobTitle": p["job_title"],
            "notes": p["contact_notes"],
            "birthday": BIRTHDAY,
            "homeAddress": p["home_address"],
        },
        "contact { id }",
    )["contact"]["id"]
    world.ok(
        "recordConsent",
        {
            "customerId": c,
            "contactId": contact,
            "channel": "EMAIL",
            "purpose": "MARKETING",
            "granted": True,
            "source": "PAPER",
            "evidence": p["evidence"],
        },
        "consent { id }",
    )
    interaction = {"customerId": c, "contactId": contact, "channel": "EMAIL"}
    world.ok(
        "logInteraction",
        {
            **interaction,
            "direction": "INBOUND",
            "subject": p["subject"],
            "notes": p["interaction_notes"],
            "outcome": "sold",
            "satisfaction": 4,
            "amount": AMOUNT,
        },
    )
    world.ok(
        "logInteraction",
        {**interaction, "direction": "OUTBOUND", "subject": "Spring offer", "purpose": "MARKETING"},
    )
    need = world.ok(
        "recordNeed",
        {"customerId": c, "title": p["need_title"], "description": p["need_description"]},
        "need { id }",
    )["need"]["id"]
    world.ok("addNote", {"customerId": c, "body": f"{p['note_body']}, @manager@privacy.example"})
    world.ok(
        "createTask",
        {
            "customerId": c,
            "needId": need,
            "title": p["task_title"],
            "description": p["task_description"],
        },
    )
    world.ok(
        "transitionCustomer",
        {
            "id": c,
            "toStage": "engaged",
            "expectedVersion": world.version(c),
            "reason": p["stage_reason"],
        },
    )
    world.ok("linkCustomers", {"fromId": c, "toId": third, "kind": "refers"})
    world.ok("linkCustomers", {"fromId": third, "toId": c, "kind": "refers"})
    world.ok(
        "awardLoyaltyPoints",
        {"customerId": c, "points": 120, "reason": p["award_reason"]},
        "account { points }",
    )
    world.ok(
        "mergeCustomers",
        {"survivorId": c, "mergedId": other, "reason": p["merge_reason"]},
        "merge { id }",
    )
    seed_delivery_log(world, c)
    return {"c": c, "other": other, "third": third, "contact": contact}


def seed_delivery_log(world: World, customer: str) -> None:
    """A webhook whose receiver echoed an event of the customer back in its
    answer, and a handler error quoting the customer: what the delivery log
    and the outbox keep of a failed attempt."""

    async def seed(state: AppState) -> None:
        db = state.db
        (event,) = await db.fetch(
            "SELECT id FROM event WHERE customer = {} AND type = 'customer.created'", pk(customer)
        )
        await db.fetch(
            "UPDATE event SET last_error = {} WHERE id = {}",
            f"handler failed on {PERSONAL['name']}",
            event["id"],
        )
        hook = await db.fetch(
            "INSERT INTO webhook (url, event_types, secret) VALUES ({}, {}, {}) RETURNING id",
            "http://127.0.0.1:9/hook",
            '["*"]',
            "s3cret",
        )
        delivery = await db.fetch(
            "INSERT INTO webhook_delivery (webhook, event, event_type, customer, status, "
            "last_error) VALUES ({}, {}, {}, {}, {}, {}) RETURNING id",
            hook[0]["id"],
            event["id"],
            "customer.created",
            pk(customer),
            "failed",
            f"500 for {PERSONAL['email']}",
        )
        await db.fetch(
            "INSERT INTO webhook_attempt (delivery, attempt, started_at, duration_ms, "
            "status_code, error, response_body) VALUES ({}, {}, {}, {}, {}, {}, {})",
            delivery[0]["id"],
            1,
            datetime.datetime.now(datetime.UTC),
            12,
            500,
            "server error",
            json.dumps({"echo": {"name": PERSONAL["name"], "phone": PERSONAL["phone"]}}),
        )

    world.run(seed)


def every_value(world: World) -> list[tuple[str, str, str]]:
    """(table, column, text) for every non-null value of every table, the
    tables found by introspecting the database."""

    async def scan(state: AppState) -> list[tuple[str, str, str]]:
        db = state.db
        if db.is_sqlite:
            tables = await db.fetch(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        else:
            tables = await db.fetch(
                "SELECT table_name AS name FROM information_schema.tables "
                "WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
            )
        found = []
        for table in sorted(row["name"] for row in tables):
            for row in await db.fetch(f'SELECT * FROM "{table}"'):
                found += [(table, c, str(v)) for c, v in row.items() if v is not None]
        return found

    return world.run(scan)


def hits(world: World) -> list[tuple[str, str, str]]:
    return [
        (table, column, needle)
        for table, column, text in every_value(world)
        for needle in NEEDLES
        if needle.lower() in text.lower()
    ]


def totals(world: World, ends: datetime.datetime) -> dict[str, Any]:
    """Every analytics report over every customer, as of ``ends``."""

    async def gather(state: AppState) -> dict[str, Any]:
        db = state.db
        scope, _ = await scope_for(db, state.catalog, (), None, None, ends)
        found: dict[str, Any] = {
            "funnel": await funnel.lifecycle_funnel(db, state.catalog, scope),
            "cohorts": await cohorts.cohort_retention(db, scope),
            "needs": await needs.needs_summary(db, scope),
            "metrics": await plugin_metrics(db, scope, state.catalog.metrics),
        }
        for by in ("CHANNEL", "OUTCOME"):
            found[f"satisfaction:{by}"] = await satisfaction.satisfaction(db, scope, by, "MONTH")
        for by in ("KIND", "STAGE", "CHANNEL", "RFM_SEGMENT"):
            found[f"revenue:{by}"] = await revenue.revenue(db, scope, by)
        return {key: plain(value) for key, value in found.items()}

    return world.run(gather)


def plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return plain(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def test_export_then_erase_leaves_no_personal_value_and_the_same_totals(world: World) -> None:
    ids = populate(world)
    c = ids["c"]
    assert {needle for _, _, needle in hits(world)} == set(NEEDLES)  # all of them are there

    document = world.export(c)
    assert document is not None
    assert document["customerIds"] == [c, ids["other"]]
    customer, merged = document["customers"]
    assert (customer["name"], customer["email"], customer["phone"]) == (
        PERSONAL["name"],
        PERSONAL["email"],
        PERSONAL["phone"],
    )
    assert customer["attributes"]["tax_id"] == PERSONAL["tax_id"]
    assert merged["email"] == PERSONAL["merged_email"]
    (contact,) = document["contacts"]
    assert (contact["email"], contact["home_address"], contact["birthday"]) == (
        PERSONAL["contact_email"],
        PERSONAL["home_address"],
        BIRTHDAY,
    )
    assert {i["subject"] for i in document["interactions"]} == {PERSONAL["subject"], "Spring offer"}
    assert document["needs"][0]["description"] == PERSONAL["need_description"]
    assert len(document["relationships"]) == 2  # both ends
    assert PERSONAL["note_body"] in document["notes"][0]["body"]
    assert len(document["noteMentions"]) == 1
    assert document["tasks"][0]["title"] == PERSONAL["task_title"]
    assert PERSONAL["stage_reason"] in {s["reason"] for s in document["stageHistory"]}
    assert document["consents"][0]["evidence"] == PERSONAL["evidence"]
    actions = {a["action"] for a in document["auditTrail"]}
    assert {"customer.created", "contact.added", "consent.changed", "customer.merged"} <= actions
    assert "loyalty.points_awarded" in {e["type"] for e in document["events"]}
    assert document["matchKeys"] and document["merges"] and document["roles"]
    assert document["erasures"] == []
    # keyed by the plugin's stable name (PLUGIN_NAME), not by how it was loaded
    assert document["plugins"]["loyalty"]["accounts"][0]["points"] == 120
    assert document["plugins"][PLUGINS[1]] == {"checked": [pk(c), pk(ids["other"])]}
    ends = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=1)
    before = totals(world, ends)

    payload = world.erase(c, "GDPR request #7")
    assert payload["userErrors"] == []
    assert payload["customer"]["name"] == ERASED_NAME and payload["customer"]["email"] is None
    assert payload["customer"]["erasedAt"] is not None
    erasure = payload["erasure"]
    assert erasure["reason"] == "GDPR request #7" and erasure["erasedBy"] == {"name": "Admin"}
    assert erasure["erasedCustomerIds"] == [c, ids["other"]]
    counted = {row["what"]: row["count"] for row in erasure["counts"]}
    assert counted["customer"] == 2 and counted["contact"] == 1 and counted["interaction"] == 2
    assert counted["loyalty.accountsKept"] == 1 and counted["idempotency_record"] == 1

    assert hits(world) == []
    assert totals(world, ends) == before
    (event,) = world.sql("SELECT payload FROM event WHERE type = 'customer.erased'")
    assert json.loads(str(event["payload"]))["reason"] == "GDPR request #7"
    (record,) = world.sql("SELECT * FROM customer_erasure")
    assert record["customer"] == pk(c) and record["reason"] == "GDPR request #7"
    (account,) = world.sql("SELECT points FROM loyalty_account")
    assert account["points"] == 120
    after = world.export(c)
    assert after is not None and len(after["erasures"]) == 1
    assert after["customers"][0]["name"] == ERASED_NAME


def test_writes_to_an_erased_customer_are_refused_and_it_is_no_duplicate(world: World) -> None:
    c = world.create("Ada Quill", email="ada.quill@personal.example", phone="+34633445566")
    contact = world.ok("addContact", {"customerId": c, "name": "Bo Quill"}, "contact { id }")
    contact_id = contact["contact"]["id"]
    assert world.erase(c)["userErrors"] == []
    version = world.version(c)
    refused = {
        "updateCustomer": {"id": c, "expectedVersion": version, "name": "Ada Quill"},
        "addContact": {"customerId": c, "name": "Ada Quill"},
        "updateContact": {"id": contact_id, "name": "Bo Quill"},
        "logInteraction": {"customerId": c, "channel": "EMAIL", "direction": "INBOUND",
                           "subject": "back again"},
        "recordNeed": {"customerId": c, "title": "anything"},
        "addNote": {"customerId": c, "body": "Ada called"},
        "createTask": {"customerId": c, "title": "call Ada"},
        "transitionCustomer": {"id": c, "toStage": "engaged", "expectedVersion": version},
        "recordConsent": {"customerId": c, "channel": "EMAIL", "purpose": "MARKETING",
                          "granted": True, "source": "WEB_FORM"},
        "awardLoyaltyPoints": {"customerId": c, "points": 5, "reason": "welcome back"},
    }  # fmt: skip
    for name, values in refused.items():
        payload = world.mutate(name, values)
        if name == "awardLoyaltyPoints":  # the plugin's own mutation: its own checks
            continue
        assert [code for _, code in codes(payload)] == ["ERASED"], (name, payload)
    again = world.erase(c)
    assert codes(again) == [("customerId", "ERASED")]
    assert world.version(c) == version  # nothing was written
    assert world.sql("SELECT id FROM customer_match_key WHERE customer = {}", pk(c)) == []
    twin = world.mutate(
        "createCustomer",
        {"kind": "CLIENT", "name": "Ada Quill", "email": "ada.quill@personal.example",
         "phone": "+34633445566"},
        "customer { id } duplicates { customer { id } }",
    )  # fmt: skip
    assert twin["duplicates"] == []
    other = world.create("Someone Else")
    assert world.erase(other)["userErrors"] == []
    # two erased customers of one kind share nothing a match could use
    pairs = world.data(
        "{ duplicates(first: 20, minScore: 0.5) { edges { node { left { id } right { id } } } } }"
    )["duplicates"]["edges"]
    erased = {c, other}
    assert not [e for e in pairs if {e["node"]["left"]["id"], e["node"]["right"]["id"]} & erased]


def test_a_merged_customer_is_erased_through_its_survivor(world: World) -> None:
    survivor = world.create("Cyd Marlow", email="cyd@personal.example")
    merged = world.create("Cyd M.", email="cyd.m@personal.example")
    world.ok("mergeCustomers", {"survivorId": survivor, "mergedId": merged}, "merge { id }")
    refused = world.erase(merged)
    assert codes(refused) == [("customerId", "MERGED")]
    assert survivor in refused["userErrors"][0]["message"]
    assert world.export(merged)["customerId"] == survivor  # type: ignore[index]
    assert world.erase(survivor)["userErrors"] == []
    rows = world.sql(
        "SELECT name, email, erased_at FROM customer WHERE id IN ({}, {}) ORDER BY id",
        pk(survivor),
        pk(merged),
    )
    assert [(r["name"], r["email"]) for r in rows] == [(ERASED_NAME, None)] * 2
    assert all(r["erased_at"] is not None for r in rows)
    images = world.sql("SELECT survivor_before, merged_before FROM customer_merge")
    assert "cyd" not in json.dumps([dict(r) for r in images], default=str).lower()


def test_only_holders_of_the_privacy_permissions_export_or_erase(world: World) -> None:
    c = world.create("Dee Holloway", email="dee@personal.example")
    assert world.export(c, role="manager") is not None  # managers hold privacy.export
    for role in ("agent", "viewer"):
        body = world.post(
            "query($id: ID!) { personalDataExport(customerId: $id) { customerId } }",
            {"id": c},
            role,
        )
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN", body
        assert body["errors"][0]["extensions"]["permissions"] == ["privacy.export"]
    for role in ("manager", "agent", "viewer"):  # erasure is for admins only
        assert codes(world.erase(c, role=role)) == [(None, "FORBIDDEN")]
    assert world.sql("SELECT email FROM customer WHERE id = {}", pk(c)) == [
        {"email": "dee@personal.example"}
    ]
    permissions = world.data("{ viewer { permissions } }", role="manager")["viewer"]
    assert "privacy.export" in permissions["permissions"]
    assert "privacy.erase" not in permissions["permissions"]
    blank = world.mutate("erasePersonalData", {"customerId": c, "reason": "  "})
    assert codes(blank) == [("reason", "REQUIRED")]


def test_a_plugin_that_raises_aborts_the_erasure_with_nothing_erased(world: World) -> None:
    c = world.create("Eli Varga", email="eli@personal.example", phone="+34644556677")
    world.ok("addContact", {"customerId": c, "name": "Flo Varga", "email": "flo@personal.example"})
    tables = ("customer", "contact", "audit_entry", "event", "customer_match_key", "stage_change")
    # the outbox's delivery marks (live, webhooks, plugin event handlers) advance
    # in the background at their own pace
    delivery = ("published_at", "webhooks_claimed_at", "delivered_at", "attempts", "last_error")

    def rows() -> dict[str, list[dict[str, Any]]]:
        return {
            t: [
                {k: v for k, v in row.items() if t != "event" or k not in delivery}
                for row in world.sql(f"SELECT * FROM {t} ORDER BY id")
            ]
            for t in tables
        }

    before = rows()
    payload = world.erase(c, "legal hold")
    assert codes(payload) == [(None, "PLUGIN_ERROR")]
    message = payload["userErrors"][0]["message"]
    assert "privacy_guard" in message and "legal hold" in message
    assert rows() == before
    assert world.sql("SELECT id FROM customer_erasure") == []
    # and the server keeps serving: the same erasure for another reason goes through
    assert world.erase(c, "request #8")["userErrors"] == []


def test_the_command_line_exports_and_erases(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    from crmgraph.cli import main

    monkeypatch.setenv("CRMGRAPH_LOAD_ENTRY_POINTS", "0")
    monkeypatch.setenv("CRMGRAPH_PLUGINS", ",".join(PLUGINS))
    c = world.create("Gil Thorne", email="gil.thorne@personal.example")
    url = world.settings.database_url
    out = tmp_path / "gil.json"
    assert main(["--database", url, "privacy", "export", c, "--output", str(out)]) == 0
    document = json.loads(out.read_text())
    assert document["customers"][0]["email"] == "gil.thorne@personal.example"
    assert main(["--database", url, "privacy", "export", "999999"]) == 2

    by = "admin@privacy.example"
    assert main(["--database", url, "privacy", "erase", str(pk(c)), "--reason", "letter 12",
                 "--by", by]) == 0  # fmt: skip
    assert "erased customer" in capsys.readouterr().out
    (record,) = world.sql("SELECT erased_by, reason FROM customer_erasure")
    assert (record["erased_by"], record["reason"]) == (pk(world.users["admin"]), "letter 12")
    assert main(["--database", url, "privacy", "erase", c, "--reason", "again"]) == 1
    assert "already erased" in capsys.readouterr().err
    assert world.sql("SELECT email FROM customer WHERE id = {}", pk(c)) == [{"email": None}]
