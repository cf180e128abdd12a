"""``Customer.roles``: the ``CustomerRole`` interface and one role type per
customer type (``GuarantorRole``…), with that kind's typed attributes, made
from the descriptors as the concrete customer types are
(:mod:`crmgraph.schema.customers`). The rows are read by one per-request
DataLoader for every customer on a page (``Loaders.roles``).
"""

import datetime
import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Optional

import strawberry
from strawberry.types import Info

from crmgraph.customer_types import CustomerType
from crmgraph.db import queries
from crmgraph.operations import history, history_roles
from crmgraph.operations.roles import is_held, role_view
from crmgraph.schema import core_types as core
from crmgraph.schema.customers import (
    InterfaceField,
    attribute_graphql_type,
    build_transition_option,
    transition_options,
)


def build_role_interface(kind_enum: type[enum.Enum]) -> type:
    CustomerKind = kind_enum
    TransitionOption = build_transition_option(kind_enum)

    @strawberry.interface(
        name="CustomerRole",
        description="One role a party holds: its primary kind (its GraphQL type) or a further "
        "role of another kind (`addRole`), each with its own attributes, stage and history.",
    )
    class CustomerRoleBase:
        customer_pk: strawberry.Private[int]
        role_row: strawberry.Private[dict[str, Any]]  # its customer_role row
        kind: CustomerKind = strawberry.field(  # type: ignore[valid-type]
            description="The role's customer type."
        )
        primary: bool = strawberry.field(
            description="Whether it is the party's primary kind (the customer's own type and "
            "`kind`); the primary role cannot be ended."
        )
        stage: str = strawberry.field(description="The role's current lifecycle stage key.")
        stage_label: str = strawberry.field(description="That stage's human-readable label.")
        phase: core.Phase = strawberry.field(description="The lifecycle phase of that stage.")
        stage_entered_at: datetime.datetime = strawberry.field(
            description="When the role entered its current stage (UTC)."
        )
        added_at: datetime.datetime | None = strawberry.field(
            description="When the role was added (`addRole`); null for the primary kind."
        )

        @strawberry.field(
            description="Moves possible from the role's current stage, each with the reasons it "
            "is blocked now, as `Customer.allowedTransitions` (pass `kind` to "
            "`transitionCustomer`; a further role never converts). Runs the guards: ask for it "
            "on one customer, not on long lists."
        )
        async def allowed_transitions(self, info: Info) -> list[TransitionOption]:  # type: ignore[valid-type]
            customer = await info.context.loaders.customer.load(self.customer_pk)
            row = role_view(customer, self.role_row)
            return await transition_options(info, kind_enum, row, customer["kind"])

        @strawberry.field(description="The role's lifecycle moves, oldest first.")
        async def stage_history(self, info: Info) -> list[core.StageChange]:
            past = self.__dict__.get("past")
            if past is not None:  # a past customer's role: the moves made by then
                rows = await history.stage_history_at(info.context.db, past)
            else:
                rows = await info.context.loaders.stage_history.load(self.customer_pk)
            kind = self.kind.value  # type: ignore[attr-defined]
            return [core.StageChange.from_row(row) for row in rows if row["kind"] == kind]

    return CustomerRoleBase


@dataclass(frozen=True)
class RoleTypes:
    """The interface, the ``roles`` field, and the role type of each kind
    (``classes``: filled by :meth:`add_classes` once the customer types have
    made the attribute enums both share)."""

    interface: type
    field: InterfaceField
    classes: dict[str, type]
    attribute_enums: dict[tuple[str, str], type[enum.Enum]]

    def add_classes(
        self,
        descriptors: Sequence[CustomerType],
        attribute_enums: dict[tuple[str, str], type[enum.Enum]],
    ) -> list[type]:
        self.attribute_enums.update(attribute_enums)
        self.classes.update(build_role_classes(descriptors, self.interface, attribute_enums))
        return list(self.classes.values())


def build_role_classes(
    descriptors: Sequence[CustomerType],
    interface: type,
    attribute_enums: dict[tuple[str, str], type[enum.Enum]],
) -> dict[str, type]:
    """One role type per customer type, its attributes typed as the
    customer type's (the same enums)."""
    classes: dict[str, type] = {}
    for descriptor in descriptors:
        namespace: dict[str, Any] = {"__annotations__": {}}
        for attr in descriptor.attributes:
            gql_type = attribute_graphql_type(descriptor, attr, attribute_enums)
            namespace["__annotations__"][attr.name] = Optional[gql_type]  # noqa: UP045
            namespace[attr.name] = strawberry.field(default=None, description=attr.documentation)
        name = descriptor.role_graphql_name
        classes[descriptor.key] = strawberry.type(
            type(name, (interface,), namespace),
            name=name,
            description=f"The {descriptor.graphql_name} role of a party: {descriptor.description}",
        )
    return classes


def role_object(
    cls: type,
    descriptor: CustomerType,
    row: dict[str, Any],
    attributes: dict[str, Any],
    primary: bool,
    kind_enum: type[enum.Enum],
    attribute_enums: dict[tuple[str, str], type[enum.Enum]],
) -> Any:
    obj = cls.__new__(cls)
    values = dict(attributes)
    for attr in descriptor.attributes:
        enum_cls = attribute_enums.get((descriptor.key, attr.name))
        if enum_cls is not None and values.get(attr.name) is not None:
            values[attr.name] = enum_cls(values[attr.name])
    stage = descriptor.lifecycle.stage(row["stage"])
    obj.__dict__.update(values)
    obj.__dict__.update(
        customer_pk=row["customer"],
        role_row=row,
        kind=kind_enum(descriptor.key),
        primary=primary,
        stage=row["stage"],
        stage_label=stage.label if stage else row["stage"],
        phase=core.Phase(row["phase"]),
        stage_entered_at=row["entered_at"],
        added_at=None if primary else row["added_at"],
    )
    return obj


def build_roles_field(
    interface: type,
    classes: dict[str, type],
    descriptors: Sequence[CustomerType],
    kind_enum: type[enum.Enum],
    attribute_enums: dict[tuple[str, str], type[enum.Enum]],
) -> InterfaceField:
    """``Customer.roles``: the primary role first, then the further ones in
    the order they were first held."""
    CustomerRoleBase = interface
    by_key = {d.key: d for d in descriptors}

    @strawberry.field(
        description="Every role the party holds: its primary kind first (`primary: true`, the "
        "attributes of the customer itself), then further roles (`addRole`) in the order they "
        "were first taken. Ask for a kind's attributes with `... on GuarantorRole`."
    )
    async def roles(self: Any, info: Info) -> list[CustomerRoleBase]:  # type: ignore[valid-type]
        primary_kind = self.kind.value
        rows = await info.context.loaders.roles.load(self.pk)
        past = self.__dict__.get("past")
        if past is not None:  # as it was (asOf)
            moves = await history.stage_history_at(info.context.db, past)
            rows = history_roles.roles_at(info.context.catalog, past, rows, moves)
        found = []
        for row in sorted(rows, key=lambda r: (r["kind"] != primary_kind, r["id"])):
            descriptor = by_key.get(row["kind"])
            if descriptor is None or not is_held(row, primary_kind):
                continue
            primary = row["kind"] == primary_kind
            attributes = (
                {a.name: getattr(self, a.name, None) for a in descriptor.attributes}
                if primary
                else descriptor.decode_attributes(queries.load_json(row["attributes"]))
            )
            cls = classes[descriptor.key]
            enums = attribute_enums
            role = role_object(cls, descriptor, row, attributes, primary, kind_enum, enums)
            if past is not None:
                role.__dict__["past"] = past
            found.append(role)
        return found

    return InterfaceField("roles", None, roles)


def build_role_types(descriptors: Sequence[CustomerType], kind_enum: type[enum.Enum]) -> RoleTypes:
    interface = build_role_interface(kind_enum)
    classes: dict[str, type] = {}
    enums: dict[tuple[str, str], type[enum.Enum]] = {}
    field = build_roles_field(interface, classes, descriptors, kind_enum, enums)
    return RoleTypes(interface, field, classes, enums)
