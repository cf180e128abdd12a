"""One customer type under check and the GraphQL a contract check sends for
it: create, update, move, read, each with the type's own attribute fields
selected, so every check reads the same way."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from crmgraph.conformance.harness import Refused, Running
from crmgraph.conformance.values import (
    attribute_selection,
    input_field,
    kind_enum,
    required_values,
    valid_values,
)
from crmgraph.customer_types import CustomerType

ERRORS = "userErrors { field message code }"


@dataclass
class Subject:
    descriptor: CustomerType
    app: Running

    @property
    def name(self) -> str:
        return self.descriptor.key

    def fields(self, guarded: bool = True) -> str:
        own = attribute_selection(self.descriptor, guarded)
        return f"id version kind stage name ... on {self.descriptor.graphql_name} {{ {own} }}"

    async def create_payload(
        self, attributes: dict[str, Any], name: str = "Conformance", owner: str | None = None
    ) -> dict[str, Any]:
        query = (
            "mutation($input: CreateCustomerInput!) { createCustomer(input: $input) "
            f"{{ customer {{ {self.fields()} }} {ERRORS} }} }}"
        )
        # allowDuplicate: the check's customers look alike on purpose
        given: dict[str, Any] = {
            "kind": kind_enum(self.descriptor),
            "name": name,
            "allowDuplicate": True,
        }
        if attributes:
            given[input_field(self.descriptor)] = attributes
        if owner is not None:
            given["ownerId"] = owner
        data = await self.app.gql(query, {"input": given})
        payload: dict[str, Any] = data["createCustomer"]
        return payload

    async def create(
        self, full: bool = True, tag: str = "", owner: str | None = None
    ) -> dict[str, Any]:
        """A new customer of the type (every attribute set when ``full``)."""
        attributes = (
            valid_values(self.descriptor, tag) if full else required_values(self.descriptor)
        )
        payload = await self.create_payload(attributes, f"Conformance {tag}".strip(), owner)
        if payload["customer"] is None:
            raise Refused(f"createCustomer refused valid attributes {attributes}: {payload}")
        customer: dict[str, Any] = payload["customer"]
        return customer

    async def update(
        self, customer: dict[str, Any], attributes: dict[str, Any], version: int | None = None
    ) -> dict[str, Any]:
        query = (
            "mutation($input: UpdateCustomerInput!) { updateCustomer(input: $input) "
            f"{{ customer {{ {self.fields()} }} {ERRORS} }} }}"
        )
        given = {
            "id": customer["id"],
            "expectedVersion": customer["version"] if version is None else version,
            input_field(self.descriptor): attributes,
        }
        payload: dict[str, Any] = (await self.app.gql(query, {"input": given}))["updateCustomer"]
        if payload["customer"] is not None:
            customer.update(payload["customer"])
        return payload

    async def move(self, customer: dict[str, Any], to_stage: str) -> dict[str, Any]:
        """``transitionCustomer``'s whole answer (data and errors)."""
        query = (
            "mutation($input: TransitionCustomerInput!) { transitionCustomer(input: $input) "
            f"{{ customer {{ id version kind stage }} {ERRORS} }} }}"
        )
        given = {"id": customer["id"], "toStage": to_stage, "expectedVersion": customer["version"]}
        answer = await self.app.post(query, {"input": given})
        moved = ((answer.get("data") or {}).get("transitionCustomer") or {}).get("customer")
        if moved:
            customer.update(moved)
        return answer

    async def purchase(self, customer: dict[str, Any]) -> None:
        """An interaction with an amount: what purchase and activity guards look for."""
        query = (
            "mutation($input: LogInteractionInput!) { logInteraction(input: $input) "
            f"{{ {ERRORS} }} }}"
        )
        given = {
            "customerId": customer["id"],
            "channel": "EMAIL",
            "direction": "INBOUND",
            "subject": "Conformance order",
            "amount": "100",
        }
        payload = (await self.app.gql(query, {"input": given}))["logInteraction"]
        if payload["userErrors"]:
            raise Refused(f"logInteraction refused: {payload['userErrors']}")

    async def read(self, customer_id: str, key: str | None = None) -> dict[str, Any]:
        query = f"query($id: ID!) {{ customer(id: $id) {{ {self.fields()} }} }}"
        return await self.app.post(query, {"id": customer_id}, key)

    async def refresh(self, customer: dict[str, Any]) -> dict[str, Any]:
        """The customer's current version and stage (another write may have moved them)."""
        answer = await self.read(customer["id"])
        if answer.get("errors") or not (answer.get("data") or {}).get("customer"):
            raise Refused(f"customer {customer['id']} cannot be read: {answer}")
        customer.update(answer["data"]["customer"])
        return customer
