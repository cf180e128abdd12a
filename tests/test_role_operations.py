"""Every role against every operation, on both engines, through real API keys.

Each role (admin, manager, agent, viewer) runs every query and mutation of the
schema on records it may see (customers the agent owns, so the agent sees
them too). What a role may do is not written here: it is what the server says
the role holds (``viewer { permissions }``, built from the plugins' permission
declarations); the table below only says which permissions an operation needs,
so an operation a role holds every permission for must succeed, and any other
must be refused with FORBIDDEN (a userError from a mutation, a GraphQL error
from a query, a rejected row from an import), nothing else. Every Mutation and
Query field of the schema must be in the table, so a new operation cannot be
left out, and a read and a write of every guarded field are generated from the
permission policy. The server grants agents ``customer.import`` as an operator
could, so the table also shows a guarded import column refused to an importer.

The personal profile fields (``Contact.birthday``/``homeAddress`` and the
address-book contact's ``AgendaContact.birthday``) need ``contact.read_profile``
to be read or written, on the resolver path, the direct (compiled) path, in
subscriptions and in the audit trail. Only what a write changes needs it: a
field left out is no write, nor is a null on a new record; a null on an
existing one clears the field, which is.

One database and one server per engine; the failures of a whole table are
collected and reported together.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from crmgraph import auth
from crmgraph.access import Policy
from crmgraph.app import AppState
from crmgraph.compiled.direct import ANSWERED_HEADER
from crmgraph.registry import Catalog, make_plugin_manager
from crmgraph.schema.ids import decode_id, encode_id
from crmgraph.settings import Settings
from crmgraph.testing import LiveServer, live_server, settings_for
from crmgraph.validation import camel
from tests.conftest import fresh_database
from tests.helpers import add_people, poll
from tests.test_subscriptions import graphql_ws, subscriptions_open

ROLES = ("admin", "manager", "agent", "viewer")
TEAM = "Red"
OK, REFUSED = "ok", "FORBIDDEN"

WRITE = "customer.write"
DELETE = "customer.delete"
ASSIGN = "customer.assign"
MERGE = "customer.merge"
AUDIT = "audit.read"
PROFILE = "contact.read_profile"
MODERATE = "note.moderate"
EXPORT = "privacy.export"
ERASE = "privacy.erase"
IMPORT = "customer.import"
WEBHOOKS = "webhook.manage"
PAY = "employee.read_pay"
SETTINGS = Settings(load_entry_points=False)  # the built-in plugins, as the test server
# an operator's grant (CRMGRAPH_GRANTS): agents import, but still without the
# personal profile, so a guarded column is refused to an importer
GRANTS = {"agent": (IMPORT,)}


@dataclass
class Api:
    """The server, a key and a user per role, and the rows the tests need
    made beforehand (a failed webhook delivery per role)."""

    server: LiveServer
    keys: dict[str, str]
    users: dict[str, str]  # role -> the user's global ID
    team: str
    deliveries: dict[str, str]
    serial: Iterator[int] = field(default_factory=itertools.count)

    def post(
        self, role: str, query: str, variables: dict[str, Any] | None = None
    ) -> httpx.Response:
        return self.server.http.post(
            "/graphql",
            json={"query": query, "variables": variables or {}},
            headers={"Authorization": f"Bearer {self.keys[role]}"},
        )

    def body(self, role: str, query: str, variables: dict[str, Any] | None = None) -> dict:
        response = self.post(role, query, variables)
        assert response.status_code == 200, response.text
        return response.json()

    def call(self, role: str, name: str, values: dict[str, Any], out: str = "") -> dict:
        """A mutation's whole answer ({data, errors})."""
        query = (
            f"mutation($input: {name[0].upper()}{name[1:]}Input!) {{ {name}(input: $input) "
            f"{{ {out} userErrors {{ field message code }} }} }}"
        )
        return self.body(role, query, {"input": values})

    def made(self, name: str, values: dict[str, Any], out: str, role: str = "admin") -> Any:
        """A mutation that must succeed (arranging a test): its payload."""
        body = self.call(role, name, values, out)
        assert not body.get("errors"), body
        payload = body["data"][name]
        assert payload["userErrors"] == [], (name, values, payload["userErrors"])
        return payload

    def upload(self, role: str, name: str, rows: list[list[str]]) -> dict:
        text = io.StringIO()
        csv.writer(text).writerows(rows)
        query = (
            f"mutation($input: {name[0].upper()}{name[1:]}Input!) {{ {name}(input: $input) "
            "{ summary { read created merged skippedDuplicates rejected } "
            "rejectedRows { reasons { field code } } userErrors { field message code } } }"
        )
        response = self.server.http.post(
            "/graphql",
            data={
                "operations": json.dumps({"query": query, "variables": {"input": {"file": None}}}),
                "map": json.dumps({"0": ["variables.input.file"]}),
            },
            files={"0": ("rows.csv", text.getvalue().encode(), "text/csv")},
            headers={"Authorization": f"Bearer {self.keys[role]}"},
        )
        assert response.status_code == 200, response.text
        return response.json()

    # ------------------------------------------------------------ records

    def customer(self, kind: str = "CLIENT", **fields: Any) -> str:
        """A new customer the agent owns (so every role may see it)."""
        values = {"kind": kind, "name": f"Party {next(self.serial)}", **fields}
        values.setdefault("ownerId", self.users["agent"])
        return self.made("createCustomer", values, "customer { id }")["customer"]["id"]

    def customer_with_contact(self) -> str:
        customer = self.customer()
        self.contact(customer)
        return customer

    def contact(self, customer: str) -> str:
        values = {"customerId": customer, "name": "Pat", "birthday": "1980-02-03"}
        return self.made("addContact", values, "contact { id }")["contact"]["id"]

    def note(self, customer: str, author: str) -> str:
        values = {"customerId": customer, "body": "A note"}
        return self.made("addNote", values, "note { id }", author)["note"]["id"]

    def link(self, a: str, b: str) -> str:
        values = {"fromId": a, "toId": b, "kind": "refers"}
        return self.made("linkCustomers", values, "relationship { id }")["relationship"]["id"]

    def merge(self, survivor: str, merged: str) -> str:
        values = {"survivorId": survivor, "mergedId": merged}
        return self.made("mergeCustomers", values, "merge { id }")["merge"]["id"]

    def webhook(self) -> str:
        values = {"url": "http://127.0.0.1:9/hook", "eventTypes": ["roles.never_emitted"]}
        return self.made("createWebhook", values, "webhook { id }")["webhook"]["id"]


def outcome(body: dict[str, Any], name: str) -> str:
    """OK, REFUSED, or what went wrong (anything else is a failure)."""
    if body.get("errors"):
        codes = {e.get("extensions", {}).get("code") for e in body["errors"]}
        return REFUSED if codes == {"FORBIDDEN"} else f"errors {body['errors']}"
    payload = body["data"][name]
    if isinstance(payload, dict) and "userErrors" in payload:
        codes = {e["code"] for e in payload["userErrors"]}
        if not codes:
            return OK
        return REFUSED if codes == {"FORBIDDEN"} else f"userErrors {payload['userErrors']}"
    return OK


def query_outcome(body: dict[str, Any], name: str, check: Callable[[Any], bool]) -> str:
    """A query's outcome; an answer must also pass ``check`` (e.g. the record is there)."""
    result = outcome(body, name)
    if result == OK and not check(body["data"][name]):
        return f"unexpected answer {body['data']}"
    return result


def present(value: Any) -> bool:
    return value is not None


# ------------------------------------------------------------------ the table
# Each entry: (the schema field, what sets it apart, the permissions it needs,
# how a role runs it). Arranging is done as admin; only the operation itself
# runs as the role.

Run = Callable[[Api, str], str]


def mutation(name: str, values: Callable[[Api, str], dict[str, Any]], out: str = "") -> Run:
    return lambda api, role: outcome(api.call(role, name, values(api, role), out), name)


def query(text: str, name: str, variables: Callable[[Api], dict] | None = None,
          check: Callable[[Any], bool] = present) -> Run:  # fmt: skip
    return lambda api, role: query_outcome(
        api.body(role, text, variables(api) if variables else None), name, check
    )


def guarantor_role(api: Api) -> str:
    """A new customer holding a further guarantor role (at version 2)."""
    customer = api.customer()
    values = {"customerId": customer, "kind": "GUARANTOR", "expectedVersion": 1}
    api.made("addRole", values, "customer { id }")
    return customer


def employee_role(api: Api, role: str, change: dict[str, Any]) -> dict:
    """updateRole of a new client's further employee role (at version 2)."""
    customer = api.customer()
    values = {"customerId": customer, "kind": "EMPLOYEE", "expectedVersion": 1}
    api.made("addRole", {**values, "employee": {"salary": "1000"}}, "customer { id }")
    return {**values, "expectedVersion": 2, "employee": change}


def writer(role: str) -> str:
    """Who writes a record the role then changes as its author: the role
    itself, or the admin for a role that may write nothing (refused anyway)."""
    return role if role != "viewer" else "admin"


def other_author(role: str) -> str:
    return "manager" if role == "admin" else "admin"


def update_customer(api: Api, role: str) -> dict:
    return {"id": api.customer(), "expectedVersion": 1, "name": "Renamed"}


def employee_pay(api: Api, role: str) -> dict:
    employee = api.customer("EMPLOYEE", employee={"salary": "1000"})
    return {"id": employee, "expectedVersion": 1, "employee": {"salary": "2000"}}


def employee_title(api: Api, role: str) -> dict:
    employee = api.customer("EMPLOYEE", employee={"salary": "1000"})
    return {"id": employee, "expectedVersion": 1, "employee": {"jobTitle": "Lead"}}


def agenda_birthday(api: Api, role: str) -> dict:
    agenda = api.customer("AGENDA")
    return {"id": agenda, "expectedVersion": 1, "agenda": {"birthday": None}}


def restore(api: Api, role: str) -> dict:
    customer = api.customer()
    api.made("deleteCustomer", {"id": customer}, "customer { id }")
    return {"id": customer}


def update_contact(**change: Any) -> Callable[[Api, str], dict]:
    return lambda api, role: {"id": api.contact(api.customer()), **change}


def update_need(api: Api, role: str) -> dict:
    values = {"customerId": api.customer(), "title": "A need"}
    need = api.made("recordNeed", values, "need { id }")["need"]["id"]
    return {"id": need, "status": "IN_PROGRESS"}


def update_task(api: Api, role: str) -> dict:
    values = {"customerId": api.customer(), "title": "A task"}
    task = api.made("createTask", values, "task { id }")["task"]["id"]
    return {"id": task, "title": "Renamed"}


def note_of(author: Callable[[str], str], **change: Any) -> Callable[[Api, str], dict]:
    return lambda api, role: {"id": api.note(api.customer(), author(role)), **change}


def undo_merge(api: Api, role: str) -> dict:
    return {"mergeId": api.merge(api.customer(), api.customer())}


def restore_duplicate(api: Api, role: str) -> dict:
    pair = {"customerId": api.customer(), "otherId": api.customer()}
    api.made("dismissDuplicate", pair, "dismissal { reason }")
    return pair


def import_run(name: str, rows: Callable[[Api], list[list[str]]]) -> Run:
    """An import of one row: OK when it is created; REFUSED when the
    caller may not import, or the row is rejected for FORBIDDEN fields only
    (an import reports refused rows, it does not fail)."""

    def run(api: Api, role: str) -> str:
        body = api.upload(role, name, rows(api))
        result = outcome(body, name)
        payload = body["data"][name] if result == OK else {}
        reasons = {r["code"] for row in payload.get("rejectedRows", ()) for r in row["reasons"]}
        if result == OK and reasons == {"FORBIDDEN"} and payload["summary"]["created"] == 0:
            return REFUSED
        if result == OK and body["data"][name]["summary"] != {
            "read": 1,
            "created": 1,
            "merged": 0,
            "skippedDuplicates": 0,
            "rejected": 0,
        }:
            return f"unexpected summary {body['data'][name]}"
        return result

    return run


OPERATIONS: list[tuple[str, str, tuple[str, ...], Run]] = [
    # ---- customers
    ("createCustomer", "", (WRITE,),
     mutation("createCustomer", lambda api, role: {"kind": "PROSPECT", "name": "Lead"})),
    ("createCustomer", "with salary", (WRITE, PAY),
     mutation("createCustomer", lambda api, role: {
         "kind": "EMPLOYEE", "name": "Eve", "employee": {"salary": "1000"}})),
    ("createCustomer", "address-book contact", (WRITE,),
     mutation("createCustomer", lambda api, role: {
         "kind": "AGENDA", "name": "Ann", "agenda": {"category": "PRESS"}})),
    ("createCustomer", "address-book contact's birthday", (WRITE, PROFILE),
     mutation("createCustomer", lambda api, role: {
         "kind": "AGENDA", "name": "Ann", "agenda": {"birthday": "1990-04-05"}})),
    ("createCustomer", "address-book contact's birthday: null (nothing written)", (WRITE,),
     mutation("createCustomer", lambda api, role: {
         "kind": "AGENDA", "name": "Ann", "agenda": {"birthday": None}})),
    ("updateCustomer", "", (WRITE,), mutation("updateCustomer", update_customer)),
    ("updateCustomer", "salary", (WRITE, PAY), mutation("updateCustomer", employee_pay)),
    ("updateCustomer", "employee's job title", (WRITE,),
     mutation("updateCustomer", employee_title)),
    ("updateCustomer", "birthday cleared (null)", (WRITE, PROFILE),
     mutation("updateCustomer", agenda_birthday)),
    ("assignCustomer", "to the caller's team", (WRITE,),
     mutation("assignCustomer", lambda api, role: {
         "customerId": api.customer(), "teamId": api.team})),
    ("assignCustomer", "to another owner", (WRITE, ASSIGN),
     mutation("assignCustomer", lambda api, role: {
         "customerId": api.customer(), "ownerId": api.users["manager"]})),
    ("deleteCustomer", "", (DELETE,),
     mutation("deleteCustomer", lambda api, role: {"id": api.customer()})),
    ("restoreCustomer", "", (DELETE,), mutation("restoreCustomer", restore)),
    ("transitionCustomer", "", (WRITE,),
     mutation("transitionCustomer", lambda api, role: {
         "id": api.customer(), "toStage": "engaged", "expectedVersion": 1})),
    ("addRole", "", (WRITE,),
     mutation("addRole", lambda api, role: {
         "customerId": api.customer(), "kind": "GUARANTOR", "expectedVersion": 1})),
    ("updateRole", "employee's job title", (WRITE,),
     mutation("updateRole", lambda api, role: employee_role(api, role, {"jobTitle": "Lead"}))),
    ("updateRole", "salary", (WRITE, PAY),
     mutation("updateRole", lambda api, role: employee_role(api, role, {"salary": "2000"}))),
    ("endRole", "", (WRITE,),
     mutation("endRole", lambda api, role: {
         "customerId": guarantor_role(api), "kind": "GUARANTOR", "expectedVersion": 2})),
    # ---- contacts: the personal profile needs its permission only when sent
    ("addContact", "", (WRITE,),
     mutation("addContact", lambda api, role: {"customerId": api.customer(), "name": "Al"})),
    ("addContact", "with a personal profile", (WRITE, PROFILE),
     mutation("addContact", lambda api, role: {
         "customerId": api.customer(), "name": "Al", "birthday": "1970-01-02",
         "homeAddress": "1 Home St"})),
    ("addContact", "every field sent, the profile null (nothing written)", (WRITE,),
     mutation("addContact", lambda api, role: {
         "customerId": api.customer(), "name": "Al", "email": None, "phone": None,
         "jobTitle": None, "notes": None, "birthday": None, "homeAddress": None})),
    ("updateContact", "", (WRITE,), mutation("updateContact", update_contact(jobTitle="CEO"))),
    ("updateContact", "birthday cleared (null)", (WRITE, PROFILE),
     mutation("updateContact", update_contact(birthday=None))),
    ("updateContact", "home address", (WRITE, PROFILE),
     mutation("updateContact", update_contact(homeAddress="2 Home St"))),
    # ---- activity
    ("logInteraction", "", (WRITE,),
     mutation("logInteraction", lambda api, role: {
         "customerId": api.customer(), "channel": "EMAIL", "direction": "INBOUND",
         "subject": "Hello"})),
    ("recordNeed", "", (WRITE,),
     mutation("recordNeed", lambda api, role: {"customerId": api.customer(), "title": "More"})),
    ("updateNeed", "", (WRITE,), mutation("updateNeed", update_need)),
    ("linkCustomers", "", (WRITE,),
     mutation("linkCustomers", lambda api, role: {
         "fromId": api.customer(), "toId": api.customer(), "kind": "refers"})),
    ("unlinkCustomers", "", (WRITE,),
     mutation("unlinkCustomers", lambda api, role: {
         "id": api.link(api.customer(), api.customer())})),
    ("recordConsent", "", (WRITE,),
     mutation("recordConsent", lambda api, role: {
         "customerId": api.customer(), "channel": "EMAIL", "purpose": "MARKETING",
         "granted": True, "source": "API"})),
    # ---- teamwork: authors change their own notes, moderators anyone's
    ("addNote", "", (WRITE,),
     mutation("addNote", lambda api, role: {"customerId": api.customer(), "body": "Hi"})),
    ("updateNote", "own", (WRITE,), mutation("updateNote", note_of(writer, body="Edited"))),
    ("updateNote", "another's", (WRITE, MODERATE),
     mutation("updateNote", note_of(other_author, body="Edited"))),
    ("deleteNote", "own", (WRITE,), mutation("deleteNote", note_of(writer))),
    ("deleteNote", "another's", (WRITE, MODERATE), mutation("deleteNote", note_of(other_author))),
    ("createTask", "", (WRITE,),
     mutation("createTask", lambda api, role: {"customerId": api.customer(), "title": "Call"})),
    ("updateTask", "", (WRITE,), mutation("updateTask", update_task)),
    # ---- duplicates and merges
    ("mergeCustomers", "", (MERGE,),
     mutation("mergeCustomers", lambda api, role: {
         "survivorId": api.customer(), "mergedId": api.customer()})),
    ("undoMerge", "", (MERGE,), mutation("undoMerge", undo_merge)),
    ("dismissDuplicate", "", (MERGE,),
     mutation("dismissDuplicate", lambda api, role: {
         "customerId": api.customer(), "otherId": api.customer()})),
    ("restoreDuplicate", "", (MERGE,), mutation("restoreDuplicate", restore_duplicate)),
    # ---- privacy
    ("erasePersonalData", "", (ERASE,),
     mutation("erasePersonalData", lambda api, role: {
         "customerId": api.customer(), "reason": "Asked to"})),
    # ---- imports (a file over GraphQL multipart)
    ("importCustomers", "", (IMPORT,),
     import_run("importCustomers", lambda api: [["name", "kind", "email"], ["Imported", "prospect", f"i{next(api.serial)}@example.com"]])),
    ("importCustomers", "address-book contact's birthday", (IMPORT, PROFILE),
     import_run("importCustomers", lambda api: [
         ["name", "kind", "email", "attributes.birthday"],
         ["Ann", "agenda", f"i{next(api.serial)}@example.com", "1990-04-05"]])),
    ("importContacts", "", (IMPORT,),
     import_run("importContacts", lambda api: [["customer", "name"], [api.customer(), "Al"]])),
    ("importContacts", "with a birthday", (IMPORT, PROFILE),
     import_run("importContacts", lambda api: [
         ["customer", "name", "birthday"], [api.customer(), "Al", "1970-01-02"]])),
    ("importInteractions", "", (IMPORT,),
     import_run("importInteractions", lambda api: [
         ["customer", "channel", "direction", "subject"],
         [api.customer(), "EMAIL", "INBOUND", "Hi"]])),
    # ---- webhooks
    ("createWebhook", "", (WEBHOOKS,),
     mutation("createWebhook", lambda api, role: {
         "url": "http://127.0.0.1:9/hook", "eventTypes": ["roles.never_emitted"]})),
    ("updateWebhook", "", (WEBHOOKS,),
     mutation("updateWebhook", lambda api, role: {"id": api.webhook(), "description": "x"})),
    ("deleteWebhook", "", (WEBHOOKS,),
     mutation("deleteWebhook", lambda api, role: {"id": api.webhook()})),
    ("replayWebhookDelivery", "", (WEBHOOKS,),
     mutation("replayWebhookDelivery", lambda api, role: {"id": api.deliveries[role]})),
    # ---- queries
    ("analytics", "", (), query("{ analytics { funnel { __typename } } }", "analytics")),
    ("node", "", (),
     query("query($id: ID!) { node(id: $id) { id } }", "node",
           lambda api: {"id": api.customer()})),
    ("nodes", "", (),
     query("query($ids: [ID!]!) { nodes(ids: $ids) { id } }", "nodes",
           lambda api: {"ids": [api.customer()]}, lambda nodes: None not in nodes)),
    ("customer", "", (),
     query("query($id: ID!) { customer(id: $id) { name } }", "customer",
           lambda api: {"id": api.customer()})),
    ("customer", "salary", (PAY,),
     query("query($id: ID!) { customer(id: $id) { ... on Employee { salary } } }", "customer",
           lambda api: {"id": api.customer("EMPLOYEE", employee={"salary": "1000"})},
           lambda c: c == {"salary": "1000"})),
    ("customer", "a contact's personal profile", (PROFILE,),
     query("query($id: ID!) { customer(id: $id) { contacts { birthday homeAddress } } }",
           "customer", lambda api: {"id": api.customer_with_contact()},
           lambda c: c["contacts"][0]["birthday"] == "1980-02-03")),
    ("customer", "an address-book contact's birthday", (PROFILE,),
     query("query($id: ID!) { customer(id: $id) { ... on AgendaContact { birthday } } }",
           "customer",
           lambda api: {"id": api.customer("AGENDA", agenda={"birthday": "1990-04-05"})},
           lambda c: c == {"birthday": "1990-04-05"})),
    ("customers", "", (),
     query("{ customers(first: 5) { totalCount } }", "customers",
           check=lambda page: page["totalCount"] > 0)),
    ("customerKinds", "", (), query("{ customerKinds { kind } }", "customerKinds", check=bool)),
    ("auditTrail", "", (AUDIT,),
     query("query($id: ID!) { auditTrail(customerId: $id) { edges { node { action } } } }",
           "auditTrail", lambda api: {"id": api.customer()}, lambda t: len(t["edges"]) > 0)),
    ("permissions", "", (), query("{ permissions { key } }", "permissions", check=bool)),
    ("pluginMetrics", "", (), query("{ pluginMetrics { key } }", "pluginMetrics")),
    ("teams", "", (), query("{ teams { name } }", "teams", check=bool)),
    ("viewer", "", (), query("{ viewer { role } }", "viewer")),
    ("users", "", (), query("{ users { id } }", "users", check=bool)),
    ("myTasks", "", (), query("{ myTasks { edges { cursor } } }", "myTasks")),
    ("duplicateCandidates", "", (),
     query("query($id: ID!) { duplicateCandidates(customerId: $id) { score } }",
           "duplicateCandidates", lambda api: {"id": api.customer()})),
    ("duplicates", "", (), query("{ duplicates { edges { cursor } } }", "duplicates")),
    ("personalDataExport", "", (EXPORT,),
     query("query($id: ID!) { personalDataExport(customerId: $id) { customerId } }",
           "personalDataExport", lambda api: {"id": api.customer()})),
    ("webhooks", "", (WEBHOOKS,), query("{ webhooks { id } }", "webhooks")),
    ("webhook", "", (WEBHOOKS,),
     query("query($id: ID!) { webhook(id: $id) { id } }", "webhook",
           lambda api: {"id": api.webhook()})),
]  # fmt: skip


def guarded_field_operations() -> list[tuple[str, str, tuple[str, ...], Run]]:
    """A read and a write (clearing it: null) of every guarded field the
    plugins declare, needing the permission that guards it: a field guarded
    tomorrow is in the table without editing it."""
    catalog = Catalog.from_plugin_manager(make_plugin_manager(SETTINGS))
    kinds = {d.graphql_name: d for d in catalog.customer_types}
    made = []
    for (type_name, name), permission in sorted(
        Policy.from_catalog(catalog).guarded_fields.items()
    ):
        coordinate = f"{type_name}.{name}"
        if type_name == "Contact":
            read = f"query($id: ID!) {{ customer(id: $id) {{ contacts {{ {name} }} }} }}"
            made += [
                (
                    "customer",
                    f"read {coordinate}",
                    (permission,),
                    query(read, "customer", lambda api: {"id": api.customer_with_contact()}),
                ),
                (
                    "updateContact",
                    f"clear {coordinate}",
                    (WRITE, permission),
                    mutation("updateContact", update_contact(**{name: None})),
                ),
            ]
            continue
        role_of = {d.role_graphql_name: d for d in kinds.values()}
        if type_name in role_of:  # a kind's role type (Customer.roles): read on its primary role
            kind = role_of[type_name].key.upper()
            read = f"query($id: ID!) {{ customer(id: $id) {{ roles {{ ... on {type_name} {{ {name} }} }} }} }}"
            made.append((
                "customer",
                f"read {coordinate}",
                (permission,),
                query(read, "customer", lambda api, kind=kind: {"id": api.customer(kind)}),
            ))  # fmt: skip
            continue
        assert type_name in kinds, f"the role table cannot reach the guarded field {coordinate}"
        kind, attributes = kinds[type_name].key.upper(), camel(kinds[type_name].key)
        read = f"query($id: ID!) {{ customer(id: $id) {{ ... on {type_name} {{ {name} }} }} }}"
        made += [
            (
                "customer",
                f"read {coordinate}",
                (permission,),
                query(read, "customer", lambda api, kind=kind: {"id": api.customer(kind)}),
            ),
            (
                "updateCustomer",
                f"clear {coordinate}",
                (WRITE, permission),
                mutation(
                    "updateCustomer",
                    lambda api, role, kind=kind, attributes=attributes, name=name: {
                        "id": api.customer(kind),
                        "expectedVersion": 1,
                        attributes: {name: None},
                    },
                ),
            ),
        ]
    return made


OPERATIONS += guarded_field_operations()


# ------------------------------------------------------------------ set-up


async def users_and_keys(state: AppState) -> tuple[dict[str, str], dict[str, str], str]:
    keys, pks = await add_people(state, {role: role for role in ROLES}, "roles.example")
    users = {role: encode_id("User", pk) for role, pk in pks.items()}
    team = await auth.create_team(state.db, TEAM)
    await auth.add_team_member(state.db, TEAM, "agent@roles.example")
    return keys, users, encode_id("Team", team)


def failed_deliveries(webhook: str, roles: tuple[str, ...]) -> Callable[[AppState], Any]:
    """A finished (failed) delivery of ``webhook`` per role, for replayWebhookDelivery."""

    async def make(state: AppState) -> dict[str, str]:
        db = state.db
        events = await db.fetch("SELECT id FROM event ORDER BY id LIMIT {}", len(roles))
        made = {}
        for role, event in zip(roles, events, strict=True):
            await db.fetch(
                "INSERT INTO webhook_delivery (webhook, event, event_type, status, attempts) "
                "VALUES ({}, {}, 'roles.never_emitted', 'failed', 1)",
                decode_id(webhook, "Webhook")[1],
                event["id"],
            )
            row = await db.fetch("SELECT id FROM webhook_delivery WHERE event = {}", event["id"])
            made[role] = encode_id("WebhookDelivery", row[0]["id"])
        return made

    return make


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    path = tmp_path_factory.mktemp("roles") / "crm.sqlite"
    with (
        fresh_database(request.param, request, path) as url,
        live_server(settings_for(url, anonymous=False, grants=GRANTS)) as server,
    ):
        # made on the server's own state: no second app built for either
        keys, users, team = server.run(users_and_keys)
        api = Api(server, keys, users, team, {})
        for _ in ROLES:  # events for the deliveries to point at
            api.customer()
        api.deliveries = server.run(failed_deliveries(api.webhook(), ROLES))
        yield api


def held(api: Api) -> dict[str, frozenset[str]]:
    """Each role's permissions as the server declares them."""
    return {
        role: frozenset(
            api.body(role, "{ viewer { permissions } }")["data"]["viewer"]["permissions"]
        )
        for role in ROLES
    }


# ------------------------------------------------------------------ tests


def test_the_table_names_every_operation_and_only_declared_permissions(api: Api) -> None:
    schema = api.body(
        "admin",
        "{ __schema { queryType { fields(includeDeprecated: true) { name } } "
        "mutationType { fields(includeDeprecated: true) { name } } } }",
    )["data"]["__schema"]
    operations = {
        f["name"] for root in ("queryType", "mutationType") for f in schema[root]["fields"]
    }
    in_table = {name for name, *_ in OPERATIONS}
    assert operations - in_table == set(), "operations the role table does not run"
    assert in_table - operations == set(), "the table names operations the schema lacks"
    declared = {
        p["key"] for p in api.body("admin", "{ permissions { key } }")["data"]["permissions"]
    }
    needed = {p for _, _, needs, _ in OPERATIONS for p in needs}
    assert needed <= declared
    grants = held(api)
    assert grants["admin"] == declared  # admin holds every permission
    for role in ("manager", "agent", "viewer"):  # each role is refused something
        assert any(not set(needs) <= grants[role] for _, _, needs, _ in OPERATIONS), role


def test_every_role_may_do_what_its_permissions_allow_and_nothing_else(api: Api) -> None:
    grants = held(api)
    failures = []
    for role in ROLES:
        for name, variant, needs, run in OPERATIONS:
            expected = OK if set(needs) <= grants[role] else REFUSED
            try:
                got = run(api, role)
            except AssertionError as exc:  # arranging failed: report it with the rest
                got = f"arranging failed: {exc}"
            if got != expected:
                failures.append(f"{role} {name} {variant}: expected {expected}, got {got}")
    assert failures == [], f"{api.server.engine}:\n" + "\n".join(failures)


AGENDA_BIRTHDAY = "{ customers(first: 50) { nodes { id ... on AgendaContact { birthday } } } }"


def test_an_address_book_birthday_needs_read_profile_on_the_direct_path_too(api: Api) -> None:
    api.customer("AGENDA", agenda={"birthday": "1990-04-05"})
    answers = {}
    for role in ("admin", "viewer", "agent", "manager"):
        for attempt in range(2):  # the second one: the direct path has the document
            response = api.post(role, AGENDA_BIRTHDAY)
            assert response.status_code == 200
            answers[role, attempt] = (
                response.json(),
                response.headers.get(ANSWERED_HEADER.decode()),
            )
    for role in ("admin", "manager"):
        body, path = answers[role, 1]
        assert path == "direct", role
        birthdays = [n.get("birthday") for n in body["data"]["customers"]["nodes"] if n]
        assert "1990-04-05" in birthdays
        assert answers[role, 0][0]["data"] == body["data"]
    for role in ("viewer", "agent"):
        for attempt in range(2):
            body, path = answers[role, attempt]
            assert path is None  # refused by the view, naming the field
            assert body["data"] is None
            (error,) = body["errors"]
            assert error["extensions"]["code"] == "FORBIDDEN"
            assert error["extensions"]["fields"] == ["AgendaContact.birthday"]
            assert error["extensions"]["permissions"] == ["contact.read_profile"]


def test_no_input_field_that_may_be_guarded_defaults_to_a_value(api: Api) -> None:
    """A default (``= null``) is indistinguishable from a value the caller
    sent: a guarded field with one would be written, and refused, on every
    call that leaves it out (addContact's birthday did that to every agent).
    Guarded inputs default to UNSET, so only what was sent is checked."""
    policy = Policy.from_catalog(Catalog.from_plugin_manager(make_plugin_manager(SETTINGS)))
    guarded = {field_name for _, field_name in policy.guarded_fields}
    assert {"birthday", "homeAddress", "salary"} <= guarded
    types = api.body(
        "admin", "{ __schema { types { name kind inputFields { name defaultValue } } } }"
    )["data"]["__schema"]["types"]
    defaulted = [
        f"{t['name']}.{f['name']} = {f['defaultValue']}"
        for t in types
        if t["kind"] == "INPUT_OBJECT"
        for f in t["inputFields"]
        if f["name"] in guarded and f["defaultValue"] is not None
    ]
    assert defaulted == []


AGENDA_TRAIL = """query($id: ID!) { auditTrail(customerId: $id) { edges { node {
    action changes { field new redacted } } } } }"""


def test_an_address_book_birthday_is_redacted_in_the_audit_trail_without_read_profile(
    api: Api,
) -> None:
    agenda = api.customer("AGENDA", agenda={"birthday": "1990-04-05", "category": "PRESS"})
    seen = {}
    for role in ("agent", "manager"):
        edges = api.body(role, AGENDA_TRAIL, {"id": agenda})["data"]["auditTrail"]["edges"]
        (created,) = [e["node"] for e in edges if e["node"]["action"] == "customer.created"]
        seen[role] = {c["field"]: c for c in created["changes"]}
    assert seen["agent"]["agenda.birthday"] == {
        "field": "agenda.birthday",
        "new": None,
        "redacted": True,
    }
    assert seen["agent"]["agenda.category"]["new"] == "PRESS"  # the rest stays readable
    assert seen["manager"]["agenda.birthday"]["new"] == "1990-04-05"
    assert seen["manager"]["agenda.birthday"]["redacted"] is False


SUBSCRIBE_AGENDA = (
    "subscription { customerEvents { type customer { id ... on AgendaContact { birthday } } } }"
)


def test_an_address_book_birthday_needs_read_profile_in_a_subscription(api: Api) -> None:
    with graphql_ws(api.server.url, api.keys["agent"]) as agent:
        agent.acknowledged()
        agent.subscribe(SUBSCRIBE_AGENDA)
        message = agent.receive()
    errors = message["payload"] if message["type"] == "error" else message["payload"]["errors"]
    assert [e["extensions"]["code"] for e in errors] == ["FORBIDDEN"]
    assert errors[0]["extensions"]["fields"] == ["AgendaContact.birthday"]

    with graphql_ws(api.server.url, api.keys["manager"]) as manager:
        manager.acknowledged()
        manager.subscribe(SUBSCRIBE_AGENDA)
        poll("the manager's subscription", lambda: subscriptions_open(api.server.url, 1))
        agenda = api.customer("AGENDA", agenda={"birthday": "1991-05-06"})
        for _ in range(50):  # events of this test's own writes only: a few at most
            event = manager.receive()["payload"]["data"]["customerEvents"]
            if event["customer"] and event["customer"]["id"] == agenda:
                break
        assert event == {
            "type": "customer.created",
            "customer": {"id": agenda, "birthday": "1991-05-06"},
        }
