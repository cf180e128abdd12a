"""The features' writes called as plain functions (crmgraph.operations.webhooks,
.privacy and .dedupe), without GraphQL, on both engines: what each leaves
(rows, audit entries, events), the refusals that touch nothing (no
permission, bad input, with the input's problems in the order the API
reports them), and the ``then`` step run inside the write's transaction."""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

import orjson
import pytest
from graphql import GraphQLError

from crmgraph.db import writes
from crmgraph.dedupe.dismissals import DISMISSED
from crmgraph.ids import encode_id
from crmgraph.operations import contacts
from crmgraph.operations import dedupe as dedupe_ops
from crmgraph.operations import privacy as privacy_ops
from crmgraph.operations import webhooks as webhook_ops
from crmgraph.validation import Problem, UserInputError
from tests.operations_world import (
    World,
    problems_of,
    world_fixture,  # noqa: F401  (the world fixture)
)

# ---------------------------------------------------------------- webhooks


async def test_a_webhook_is_created_audited_without_its_secret_and_writes_no_event(
    world: World,
) -> None:
    admin = await world.actor("admin")
    in_transaction: list[bool] = []

    async def then(pk: int) -> None:
        in_transaction.append(world.db.in_transaction)

    new = webhook_ops.NewWebhook(
        " https://example.com/hook ", ["customer.*", "customer.*", "*"], "s" * 20, " CRM "
    )
    done = await webhook_ops.create_webhook(
        world.db, world.catalog, world.pm, admin, new, then=then
    )

    assert in_transaction == [True]
    assert done.secret == "s" * 20 and done.row["secret"] == "s" * 20
    assert (done.row["url"], done.row["description"]) == ("https://example.com/hook", "CRM")
    assert orjson.loads(done.row["event_types"]) == ["*", "customer.*"]
    assert done.row["created_by"] == admin.user_id
    (audit,) = await world.db.fetch("SELECT action, by, changes FROM audit_entry")
    assert (audit["action"], audit["by"]) == ("webhook.created", admin.user_id)
    changes = orjson.loads(audit["changes"])
    assert changes["secret"] == [None, "(replaced)"]
    assert "s" * 20 not in audit["changes"]
    assert await world.db.fetch("SELECT id FROM event") == []

    # reading webhooks needs webhook.manage too (a GraphQL error: reads have no userErrors)
    assert [row["id"] for row in await webhook_ops.webhooks(world.db, admin)] == [done.row["id"]]
    found = await webhook_ops.webhook(world.db, admin, encode_id("Webhook", done.row["id"]))
    assert found is not None and found["url"] == "https://example.com/hook"
    assert await webhook_ops.webhook(world.db, admin, encode_id("Customer", 1)) is None
    manager = await world.actor("manager")
    with pytest.raises(GraphQLError) as refused:
        await webhook_ops.webhooks(world.db, manager)
    assert refused.value.extensions == {"code": "FORBIDDEN", "permissions": ["webhook.manage"]}


async def test_webhook_input_problems_come_in_the_apis_order_before_any_statement(
    world: World,
) -> None:
    admin, manager = await world.actor("admin"), await world.actor("manager")
    new = webhook_ops.NewWebhook("ftp://example.com", ["Bad Type"], "short", "x" * 201)
    refused = await world.refused(webhook_ops.create_webhook, admin, new)
    assert problems_of(refused) == [
        ("url", "INVALID"),
        ("eventTypes", "INVALID"),
        ("secret", "INVALID"),
        ("description", "TOO_LONG"),
    ]

    # a manager holds no webhook.manage: refused first, whatever the input
    refused = await world.refused(webhook_ops.create_webhook, manager, new)
    assert problems_of(refused) == [(None, "FORBIDDEN")]
    assert "webhook.manage" in refused.value.problems[0].message

    # an ID problem found by the caller comes before the fields'
    change = webhook_ops.WebhookChange(
        None,
        {"url": None, "active": None},
        [Problem("id", "id: 'x' is not a valid ID", "INVALID_ID")],
    )
    with pytest.raises(UserInputError) as refused:
        await webhook_ops.update_webhook(world.db, world.catalog, world.pm, admin, change)
    assert problems_of(refused) == [
        ("id", "INVALID_ID"),
        ("url", "REQUIRED"),
        ("active", "REQUIRED"),
    ]


async def test_re_enabling_a_webhook_clears_its_failures_and_a_null_secret_makes_one(
    world: World,
) -> None:
    admin = await world.actor("admin")
    new = webhook_ops.NewWebhook("https://example.com/h", ["*"])
    made = await webhook_ops.create_webhook(world.db, world.catalog, world.pm, admin, new)
    pk = made.row["id"]
    await world.db.fetch(
        "UPDATE webhook SET active = {}, consecutive_failures = 5, disabled_reason = {} "
        "WHERE id = {}",
        False,
        "too many failures",
        pk,
    )

    change = webhook_ops.WebhookChange(pk, {"active": True, "secret": None})
    done = await webhook_ops.update_webhook(world.db, world.catalog, world.pm, admin, change)

    assert done.secret is not None and done.secret != made.secret
    assert done.row["secret"] == done.secret
    assert (bool(done.row["active"]), done.row["consecutive_failures"]) == (True, 0)
    assert done.row["disabled_reason"] is None
    (audit,) = await world.db.fetch(
        "SELECT changes FROM audit_entry WHERE action = {}", "webhook.updated"
    )
    changes = orjson.loads(audit["changes"])
    # the secret is never written down, so its replacement shows no [old, new] pair
    assert done.secret not in audit["changes"] and made.secret not in audit["changes"]
    assert sorted(changes) == ["active", "consecutive_failures", "disabled_reason"]
    assert changes["consecutive_failures"] == [5, 0]
    assert changes["disabled_reason"] == ["too many failures", None]


async def test_replaying_a_delivery_starts_a_fresh_round_and_refuses_a_pending_one(
    world: World,
) -> None:
    admin, manager = await world.actor("admin"), await world.actor("manager")
    customer = await world.customer(manager, "Acme")
    made = await webhook_ops.create_webhook(
        world.db, world.catalog, world.pm, admin, webhook_ops.NewWebhook("https://e.com/h", ["*"])
    )
    (event,) = await world.db.fetch("SELECT id, type FROM event")
    at = writes.now()
    await world.db.fetch(
        "INSERT INTO webhook_delivery (webhook, event, event_type, customer, status, attempts, "
        "next_attempt_at, created_at, updated_at) VALUES ({}, {}, {}, {}, {}, {}, {}, {}, {})",
        made.row["id"],
        event["id"],
        event["type"],
        customer,
        "failed",
        3,
        None,
        at,
        at,
    )
    (delivery,) = await world.db.fetch("SELECT id FROM webhook_delivery")
    target = webhook_ops.Target(delivery["id"])

    row = await webhook_ops.replay_delivery(world.db, world.catalog, world.pm, admin, target)

    assert (row["status"], row["round_start"], row["attempts"]) == ("pending", 3, 3)
    assert ("webhook.delivery_replayed", "webhook_delivery", delivery["id"]) in (
        await world.actions()
    )
    with pytest.raises(UserInputError) as refused:
        await webhook_ops.replay_delivery(world.db, world.catalog, world.pm, admin, target)
    assert problems_of(refused) == [("id", "INVALID")]
    assert "still pending" in refused.value.problems[0].message
    with pytest.raises(UserInputError) as refused:
        await webhook_ops.replay_delivery(
            world.db, world.catalog, world.pm, admin, webhook_ops.Target(delivery["id"] + 99)
        )
    assert problems_of(refused) == [("id", "NOT_FOUND")]

    # deleting the webhook takes its delivery log with it
    deleted = await webhook_ops.delete_webhook(
        world.db, world.catalog, world.pm, admin, webhook_ops.Target(made.row["id"])
    )
    assert deleted == made.row["id"]
    assert await world.db.fetch("SELECT id FROM webhook_delivery") == []
    (audit,) = await world.db.fetch(
        "SELECT changes FROM audit_entry WHERE action = {}", "webhook.deleted"
    )
    assert orjson.loads(audit["changes"]) == {
        "url": ["https://e.com/h", None],
        "active": [True, None],
    }


# ---------------------------------------------------------------- privacy


async def test_a_consent_in_the_future_or_from_another_customers_contact_is_refused(
    world: World,
) -> None:
    manager = await world.actor("manager")
    acme, other = await world.customer(manager, "Acme"), await world.customer(manager, "Other")
    contact = await contacts.add_contact(
        world.db, world.catalog, world.pm, manager, contacts.NewContact(other, {"name": "Bo"})
    )

    later = writes.now() + datetime.timedelta(hours=1)
    future = privacy_ops.NewConsent(
        acme, None, "EMAIL", "MARKETING", True, "FORM", "x" * 501, later
    )
    refused = await world.refused(privacy_ops.record_consent, manager, future)
    assert problems_of(refused) == [("evidence", "TOO_LONG"), ("at", "OUT_OF_RANGE")]

    seen: list[tuple[int, bool]] = []

    async def then(pk: int) -> None:
        seen.append((pk, world.db.in_transaction))

    given = privacy_ops.NewConsent(acme, None, "EMAIL", "MARKETING", True, "FORM", " form-7 ")
    pk = await privacy_ops.record_consent(
        world.db, world.catalog, world.pm, manager, given, then=then
    )
    assert seen == [(pk, True)]
    (row,) = await world.db.fetch("SELECT customer, granted, evidence FROM consent_change")
    assert (row["customer"], bool(row["granted"]), row["evidence"]) == (acme, True, "form-7")

    foreign = privacy_ops.NewConsent(acme, contact, "EMAIL", "MARKETING", False, "FORM")
    with pytest.raises(UserInputError) as refused:
        await privacy_ops.record_consent(world.db, world.catalog, world.pm, manager, foreign)
    assert problems_of(refused) == [("contactId", "INVALID")]
    assert len(await world.db.fetch("SELECT id FROM consent_change")) == 1


async def test_erasure_needs_its_permission_and_a_reason_and_leaves_its_record(
    world: World,
) -> None:
    manager, admin = await world.actor("manager"), await world.actor("admin")
    pk = await world.customer(manager, "Ana Pérez", email="ana@example.com")

    request = privacy_ops.ErasureRequest(pk, "gdpr-1")
    refused = await world.refused(privacy_ops.erase_personal_data, manager, request)
    assert problems_of(refused) == [(None, "FORBIDDEN")]
    with pytest.raises(UserInputError) as refused:
        request = privacy_ops.ErasureRequest(pk, "  ")
        await privacy_ops.erase_personal_data(world.db, world.catalog, world.pm, admin, request)
    assert problems_of(refused) == [("reason", "REQUIRED")]

    request = privacy_ops.ErasureRequest(pk, "gdpr-1")
    erasure_id = await privacy_ops.erase_personal_data(
        world.db, world.catalog, world.pm, admin, request
    )
    record = await privacy_ops.erasure_record(world.db, erasure_id)
    assert (record["customer"], record["reason"], record["erased_by"]) == (
        pk,
        "gdpr-1",
        admin.user_id,
    )
    (row,) = await world.db.fetch("SELECT name, email, erased_at FROM customer WHERE id = {}", pk)
    assert row["name"] != "Ana Pérez" and row["email"] != "ana@example.com"
    assert row["erased_at"] is not None
    assert "customer.erased" in [r["type"] for r in await world.db.fetch("SELECT type FROM event")]
    with pytest.raises(UserInputError) as refused:
        await privacy_ops.erase_personal_data(world.db, world.catalog, world.pm, admin, request)
    assert problems_of(refused) == [("customerId", "ERASED")]


async def test_an_export_names_the_survivor_and_keeps_row_scope(world: World) -> None:
    manager, agent = await world.actor("manager"), await world.actor("agent")
    survivor = await world.customer(manager, "Acme")
    merged = await world.customer(manager, "ACME Ltd")
    await dedupe_ops.merge_customers(
        world.db, world.catalog, world.pm, manager, dedupe_ops.MergeInput(survivor, merged)
    )

    async def load(pk: int) -> dict[str, Any] | None:
        rows = await world.db.fetch("SELECT * FROM customer WHERE id = {}", pk)
        return rows[0] if rows else None

    admin = await world.actor("admin")
    document = await privacy_ops.personal_data_export(
        world.db, world.pm, admin, encode_id("Customer", merged), load
    )
    assert document is not None and document["customerId"] == encode_id("Customer", survivor)
    assert (
        await privacy_ops.personal_data_export(world.db, world.pm, admin, "nonsense", load) is None
    )
    with pytest.raises(GraphQLError) as refused:
        await privacy_ops.personal_data_export(
            world.db, world.pm, agent, encode_id("Customer", survivor), load
        )
    assert refused.value.extensions == {"code": "FORBIDDEN", "permissions": ["privacy.export"]}


# ---------------------------------------------------------------- dedupe


async def test_merge_input_problems_follow_the_ids_and_touch_nothing(world: World) -> None:
    manager, agent = await world.actor("manager"), await world.actor("agent")
    data = dedupe_ops.MergeInput(
        1,
        0,
        [("name", "MERGED"), (" name ", "SURVIVOR")],
        reason="x" * 2001,
        problems=[Problem("mergedId", "mergedId: 'x' is not a valid ID", "INVALID_ID")],
    )
    refused = await world.refused(dedupe_ops.merge_customers, manager, data)
    assert problems_of(refused) == [
        ("mergedId", "INVALID_ID"),
        ("fieldChoices.1.field", "DUPLICATE"),
        ("reason", "INVALID"),
    ]
    with pytest.raises(UserInputError) as refused:
        await dedupe_ops.merge_customers(world.db, world.catalog, world.pm, agent, data)
    assert problems_of(refused) == [(None, "FORBIDDEN")]


async def test_a_merge_and_its_undo_run_their_then_step_in_the_transaction(
    world: World,
) -> None:
    manager = await world.actor("manager")
    survivor = await world.customer(manager, "Acme")
    merged = await world.customer(manager, "ACME Ltd", email="ops@acme.example")
    merged_in: list[tuple[int, bool]] = []

    async def after_merge(pk: int) -> None:
        merged_in.append((pk, world.db.in_transaction))

    data = dedupe_ops.MergeInput(survivor, merged, [("name", "MERGED")], reason=" same firm ")
    merge_id = await dedupe_ops.merge_customers(
        world.db, world.catalog, world.pm, manager, data, then=after_merge
    )
    assert merged_in == [(merge_id, True)]
    (row,) = await world.db.fetch("SELECT name, email FROM customer WHERE id = {}", survivor)
    assert row == {"name": "ACME Ltd", "email": "ops@acme.example"}
    (merge,) = await world.db.fetch("SELECT merged_by, reason FROM customer_merge")
    assert (merge["merged_by"], merge["reason"]) == (manager.user_id, "same firm")

    assert await dedupe_ops.undo_blockers(world.db, merge_id) == []
    undone_in: list[tuple[int, int, bool]] = []

    async def after_undo(undone: Mapping[str, Any]) -> None:
        undone_in.append((undone["survivor"], undone["merged"], world.db.in_transaction))

    undone = await dedupe_ops.undo_merge(
        world.db, world.catalog, world.pm, manager, dedupe_ops.UndoInput(merge_id), then=after_undo
    )
    assert undone_in == [(survivor, merged, True)]
    assert undone["undone_by"] == manager.user_id
    assert await dedupe_ops.undo_blockers(world.db, merge_id) == ["the merge was already undone"]
    (row,) = await world.db.fetch("SELECT name, merged_into FROM customer WHERE id = {}", survivor)
    assert row == {"name": "Acme", "merged_into": None}
    with pytest.raises(UserInputError) as refused:
        await dedupe_ops.undo_merge(
            world.db, world.catalog, world.pm, manager, dedupe_ops.UndoInput(merge_id + 1)
        )
    assert problems_of(refused) == [("mergeId", "NOT_FOUND")]


async def test_a_dismissal_is_checked_kept_audited_and_restored(world: World) -> None:
    manager = await world.actor("manager")
    left, right = await world.customer(manager, "Acme"), await world.customer(manager, "Acme 2")

    too_long = dedupe_ops.PairInput(right, left, "x" * 2001)
    refused = await world.refused(dedupe_ops.dismiss_duplicate, manager, too_long)
    assert problems_of(refused) == [("reason", "INVALID")]

    pair = dedupe_ops.PairInput(right, left, "  two firms  ")
    made = await dedupe_ops.dismiss_duplicate(world.db, world.catalog, world.pm, manager, pair)
    assert (made["customer_a"], made["customer_b"], made["reason"]) == (left, right, "two firms")
    audited = [(kind, pk) for action, kind, pk in await world.actions() if action == DISMISSED]
    assert audited == [("Customer", left), ("Customer", right)]
    with pytest.raises(UserInputError) as refused:
        await dedupe_ops.dismiss_duplicate(world.db, world.catalog, world.pm, manager, pair)
    assert problems_of(refused) == [("otherId", "ALREADY_DISMISSED")]

    restored = await dedupe_ops.restore_duplicate(
        world.db, world.catalog, world.pm, manager, dedupe_ops.PairInput(left, right)
    )
    assert restored == left
    assert await world.db.fetch("SELECT customer_a FROM duplicate_dismissal") == []
    with pytest.raises(UserInputError) as refused:
        await dedupe_ops.restore_duplicate(
            world.db, world.catalog, world.pm, manager, dedupe_ops.PairInput(left, left)
        )
    assert [p.code for p in refused.value.problems] == ["SAME_CUSTOMER"]
