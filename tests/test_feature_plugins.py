"""The built-in features are default plugins (issue 20, item 5): teamwork,
dedupe, privacy and analytics add their ``Customer`` fields, root fields,
types and node loaders through the hooks a partner's plugin uses.

- With every plugin the SDL is the committed ``docs/schema.graphql``, byte
  for byte (field order included).
- Disabling one (``CRMGRAPH_DISABLE_PLUGINS``) removes exactly its fields,
  from the interface and every customer type, its root fields and its types;
  the other fields keep their order; its permissions go with it.
- On a real server without it, on both engines, a customer is created and
  read with every other feature's fields, which answer; its own are refused.
- A plugin of our own tests uses the same hooks: a field on every customer
  type, a start-up step and a background service; a field name taken twice
  fails start-up naming the plugin.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import graphql
import orjson
import pytest

from crmgraph.ids import decode_id
from crmgraph.registry import Catalog, PluginError, make_plugin_manager
from crmgraph.schema.build import build_schema
from crmgraph.settings import Settings
from crmgraph.testing import live_server, settings_for
from tests.conftest import LiveServer
from tests.plugins_for_tests import service_probe

SDL = Path(__file__).resolve().parent.parent / "docs" / "schema.graphql"
PROBE = "tests.plugins_for_tests.service_probe"
CLASH = "tests.plugins_for_tests.clashing_customer_field"


@dataclass(frozen=True)
class Feature:
    customer: tuple[str, ...]  # Customer fields it adds
    query: tuple[str, ...]
    mutation: tuple[str, ...]
    types: tuple[str, ...]  # some of the types only it brings
    # a selection of its Customer fields, and what they answer for a new client
    selection: str
    answers: dict[str, Any]
    # a root query of it ($id: the client, when it takes one), and its answer
    root: str
    root_answer: dict[str, Any]
    # its fields on the core's other types
    elsewhere: tuple[tuple[str, str], ...] = ()


FEATURES: dict[str, Feature] = {
    "crmgraph.plugins.teamwork": Feature(
        customer=("notes", "tasks", "timeline"),
        query=("myTasks",),
        mutation=("addNote", "updateNote", "deleteNote", "createTask", "updateTask"),
        types=("Note", "Task", "NoteConnection", "TimelineItem", "TimelineKind", "AddNoteInput"),
        selection="notes { nodes { body } } tasks { nodes { title } }",
        answers={"notes": {"nodes": []}, "tasks": {"nodes": []}},
        root="{ myTasks { nodes { id } } }",
        root_answer={"myTasks": {"nodes": []}},  # the anonymous caller is assigned none
        elsewhere=(("Need", "tasks"),),
    ),
    "crmgraph.plugins.dedupe": Feature(
        customer=("merges",),
        query=("duplicateCandidates", "duplicates"),
        mutation=("mergeCustomers", "undoMerge", "dismissDuplicate", "restoreDuplicate"),
        types=("CustomerMerge", "DuplicatePair", "MergeCustomersInput", "DuplicateDismissal"),
        selection="merges { id }",
        answers={"merges": []},
        root="query($id: ID!) { duplicateCandidates(customerId: $id) { score } }",
        root_answer={"duplicateCandidates": []},
    ),
    "crmgraph.plugins.privacy": Feature(
        customer=("erasedAt", "consents", "consentHistory"),
        query=("personalDataExport",),
        mutation=("erasePersonalData", "recordConsent"),
        types=("Consent", "PersonalDataExport", "RecordConsentInput", "ConsentSource"),
        selection="erasedAt consents { granted } consentHistory { granted }",
        answers={"erasedAt": None, "consents": [], "consentHistory": []},
        root="query($id: ID!) { personalDataExport(customerId: $id) { customerId } }",
        root_answer={"personalDataExport": {"customerId": "$id"}},
    ),
    "crmgraph.plugins.analytics": Feature(
        customer=("knowledge",),
        query=("analytics",),
        mutation=(),
        types=("Analytics", "CustomerKnowledge", "RfmSegment", "ScoredCustomerConnection"),
        selection="knowledge { interactions openNeeds }",
        answers={"knowledge": {"interactions": 0, "openNeeds": 0}},
        root="{ analytics { cohorts { size } } }",
        root_answer={"analytics": {"cohorts": [{"size": 1}]}},
    ),
}


def sdl(**overrides: Any) -> str:
    settings = Settings(load_entry_points=False, **overrides)
    pm = make_plugin_manager(settings)
    schema, _ = build_schema(Catalog.from_plugin_manager(pm), pm)
    return schema.as_str() + "\n"


def fields(schema: graphql.GraphQLSchema, type_name: str) -> list[str]:
    found = schema.get_type(type_name)
    assert isinstance(found, (graphql.GraphQLObjectType, graphql.GraphQLInterfaceType))
    return list(found.fields)


def customer_types(schema: graphql.GraphQLSchema) -> list[str]:
    interface = schema.get_type("Customer")
    assert isinstance(interface, graphql.GraphQLInterfaceType)
    return ["Customer", *(t.name for t in schema.get_implementations(interface).objects)]


@pytest.fixture(scope="module")
def full() -> graphql.GraphQLSchema:
    return graphql.build_schema(sdl())


def test_with_every_plugin_the_sdl_is_the_committed_one() -> None:
    assert sdl() == SDL.read_text(encoding="utf-8")


@pytest.mark.parametrize("feature", FEATURES)
def test_disabling_a_feature_removes_exactly_its_fields(
    full: graphql.GraphQLSchema, feature: str
) -> None:
    expected = FEATURES[feature]
    without = graphql.build_schema(sdl(disabled_plugins=(feature,)))
    kinds = customer_types(full)
    assert len(kinds) >= 9 and customer_types(without) == kinds
    for type_name in kinds:
        before, after = fields(full, type_name), fields(without, type_name)
        assert set(before) - set(after) == set(expected.customer), type_name
        # the rest keep their places
        assert after == [name for name in before if name not in expected.customer], type_name
    for root, removed in (("Query", expected.query), ("Mutation", expected.mutation)):
        before, after = fields(full, root), fields(without, root)
        assert set(before) - set(after) == set(removed), root
        assert after == [name for name in before if name not in removed], root
    for type_name, name in expected.elsewhere:
        before, after = fields(full, type_name), fields(without, type_name)
        assert after == [f for f in before if f != name] and name in before, type_name
    for type_name in expected.types:
        assert full.get_type(type_name) is not None, type_name
        assert without.get_type(type_name) is None, type_name
    # every other feature keeps everything it adds
    for other, kept in FEATURES.items():
        if other != feature:
            assert set(kept.customer) <= set(fields(without, "Client")), other
            assert set(kept.query) <= set(fields(without, "Query")), other
            assert set(kept.mutation) <= set(fields(without, "Mutation")), other


def test_without_all_four_the_core_schema_still_builds(full: graphql.GraphQLSchema) -> None:
    without = graphql.build_schema(sdl(disabled_plugins=tuple(FEATURES)))
    gone = {name for f in FEATURES.values() for name in f.customer}
    assert fields(without, "Client") == [n for n in fields(full, "Client") if n not in gone]
    assert {"customers", "node", "auditTrail", "webhooks"} <= set(fields(without, "Query"))
    assert {"createCustomer", "importCustomers"} <= set(fields(without, "Mutation"))


def create_client(server: LiveServer, name: str) -> str:
    payload = server.gql(
        """mutation($input: CreateCustomerInput!) {
          createCustomer(input: $input) { customer { id } userErrors { message } }
        }""",
        {"input": {"kind": "CLIENT", "name": name, "email": "ana@example.com"}},
    )["createCustomer"]
    assert payload["userErrors"] == []
    return payload["customer"]["id"]


def refused(server: LiveServer, query: str, variables: dict[str, Any]) -> list[str]:
    body = server.post(query, variables)
    return [error["message"] for error in body.get("errors", [])]


@pytest.mark.parametrize("feature", FEATURES)
def test_the_rest_answers_on_a_server_without_a_feature(database_url: str, feature: str) -> None:
    disabled = FEATURES[feature]
    others = {name: f for name, f in FEATURES.items() if name != feature}
    with live_server(settings_for(database_url, disabled_plugins=(feature,))) as server:
        customer_id = create_client(server, "Ana Shop")
        selection = " ".join(f.selection for f in others.values())
        read = server.gql(
            f"query($id: ID!) {{ customer(id: $id) {{ id name {selection} }} }}",
            {"id": customer_id},
        )["customer"]
        assert read["name"] == "Ana Shop"
        for other in others.values():
            assert {key: read[key] for key in other.answers} == other.answers
        # and through the customer list (the compiled path, where it applies)
        listed = server.gql(f"{{ customers {{ nodes {{ name {selection} }} }} }}")
        assert [row["name"] for row in listed["customers"]["nodes"]] == ["Ana Shop"]
        for other in others.values():
            expected = orjson.loads(
                orjson.dumps(other.root_answer).replace(b"$id", customer_id.encode())
            )
            assert server.gql(other.root, {"id": customer_id}) == expected
        own = f"query($id: ID!) {{ customer(id: $id) {{ {disabled.selection} }} }}"
        assert any("Cannot query field" in m for m in refused(server, own, {"id": customer_id}))
        assert any(
            "Cannot query field" in m for m in refused(server, disabled.root, {"id": customer_id})
        )


def test_a_plugin_adds_a_customer_field_startup_work_and_a_service(database_url: str) -> None:
    schema = graphql.build_schema(sdl(plugins=(PROBE,)))
    # a resolver field of a plugin comes after the core's and the features' ones
    for type_name in ("Customer", "Client", "Supplier"):
        after_core = fields(schema, type_name)
        assert after_core[after_core.index("knowledge") + 1] == "probeLabel", type_name
    settings = settings_for(database_url, plugins=(PROBE,))
    kinds = len(Catalog.from_plugin_manager(make_plugin_manager(settings)).types)
    service_probe.calls.clear()
    service_probe.services.clear()
    with live_server(settings) as server:
        assert len(service_probe.services) == 1
        service = service_probe.services[0]
        # run once, before any request, with the catalog and the open database
        assert service_probe.calls == [f"startup:{kinds}:0"]
        assert (service.started, service.stopped) == (1, 0)
        customer_id = create_client(server, "Bruno Bikes")
        assert service.woken >= 1  # the create left events
        read = server.gql(
            "query($id: ID!) { customer(id: $id) { ... on Client { probeLabel } } }",
            {"id": customer_id},
        )
        label = f"probe:{decode_id(customer_id, 'Customer')[1]}"
        assert read["customer"]["probeLabel"] == label
        listed = server.gql("{ customers { nodes { probeLabel } } }")["customers"]["nodes"]
        assert listed == [{"probeLabel": label}]
    assert (service.started, service.stopped) == (1, 1)


def test_a_customer_field_taken_twice_fails_start_up_naming_the_plugin() -> None:
    with pytest.raises(PluginError) as failure:
        sdl(plugins=(CLASH,))
    assert failure.value.plugin == CLASH
    assert "Customer.notes is already defined by 'crmgraph.plugins.teamwork'" in str(failure.value)
    # without team work the name is free, and the field is the plugin's
    schema = graphql.build_schema(
        sdl(plugins=(CLASH,), disabled_plugins=("crmgraph.plugins.teamwork",))
    )
    notes = schema.get_type("Client").fields["notes"]  # type: ignore[union-attr]
    assert str(notes.type) == "String!"


def test_a_disabled_features_records_are_not_nodes(database_url: str) -> None:
    """A note written while team work was on is no ``Node`` once it is off
    (``node(id:)`` answers null, as for any unknown ID), and is back after."""
    note_query = "query($id: ID!) { node(id: $id) { id ... on Note { body } } }"
    with live_server(settings_for(database_url)) as server:
        customer_id = create_client(server, "Carla Cafés")
        added = server.gql(
            """mutation($id: ID!) { addNote(input: {customerId: $id, body: "call back"}) {
                 note { id } userErrors { message } } }""",
            {"id": customer_id},
        )["addNote"]
        assert added["userErrors"] == []
        note_id = added["note"]["id"]
        assert server.gql(note_query, {"id": note_id})["node"] == {
            "id": note_id,
            "body": "call back",
        }
    off = settings_for(database_url, disabled_plugins=("crmgraph.plugins.teamwork",))
    with live_server(off) as server:
        assert server.gql("query($id: ID!) { node(id: $id) { id } }", {"id": note_id}) == {
            "node": None
        }
        nodes = server.gql(
            "query($ids: [ID!]!) { nodes(ids: $ids) { id } }", {"ids": [customer_id, note_id]}
        )
        assert nodes == {"nodes": [{"id": customer_id}, None]}
    with live_server(settings_for(database_url)) as server:
        assert server.gql(note_query, {"id": note_id})["node"] == {
            "id": note_id,
            "body": "call back",
        }


# the permissions each feature declares through crmgraph_permissions
FEATURE_PERMISSIONS = {
    "crmgraph.plugins.teamwork": {"note.moderate"},
    "crmgraph.plugins.dedupe": {"customer.merge"},
    "crmgraph.plugins.privacy": {"privacy.export", "privacy.erase"},
    "crmgraph.plugins.analytics": set(),
}


def declared_permissions(*disabled: str) -> dict[str, str]:
    settings = Settings(load_entry_points=False, disabled_plugins=disabled)
    catalog = Catalog.from_plugin_manager(make_plugin_manager(settings))
    return {p.key: catalog.permission_owner(p.key) for p in catalog.permissions}


@pytest.mark.parametrize("feature", FEATURES)
def test_a_feature_declares_its_permissions_and_takes_them_away(feature: str) -> None:
    everything = declared_permissions()
    owned = {key for key, owner in everything.items() if owner == feature}
    assert owned == FEATURE_PERMISSIONS[feature]
    without = declared_permissions(feature)
    assert set(without) == set(everything) - owned
