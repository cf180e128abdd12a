"""The classes one schema build made for its catalog, and the row → object
conversions every read path (resolvers, compiled, hybrid) uses to return
instances of the concrete types."""

import enum
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from crmgraph.db import queries
from crmgraph.registry import Catalog
from crmgraph.schema import consent_types
from crmgraph.schema import core_types as core
from crmgraph.schema.ids import encode_id


@dataclass
class SchemaTypes:
    """The classes built for one catalog, and the row → object conversions
    resolvers use to return instances of the concrete types."""

    customer_classes: dict[str, type]
    attribute_enums: dict[tuple[str, str], type[enum.Enum]]
    catalog: Catalog
    kind_enum: type[enum.Enum]
    channel_enum: type[enum.Enum]
    interaction_cls: type
    relationship_cls: type
    customer_interface: type
    # CustomerFilter -> CustomerQuery and InteractionFilter -> InteractionMatch,
    # shared with the compiled read path so both read a filter the same way
    customer_query: Callable[..., queries.CustomerQuery] | None = None
    interaction_match: Callable[..., queries.InteractionMatch] | None = None
    # the CustomerFilter input (what customer_query reads)
    customer_filter: type | None = None

    def customer(self, row: dict[str, Any]) -> Any:
        """The concrete type's instance, or None for a kind no loaded plugin
        declares (its plugin was removed: the data stays, unseen, until it returns)."""
        kind = row["kind"]
        cls = self.customer_classes.get(kind)
        if cls is None:
            return None
        descriptor = self.catalog.customer_type(kind)
        assert descriptor is not None
        stage = descriptor.lifecycle.stage(row["stage"])
        obj = cls.__new__(cls)
        values = descriptor.decode_attributes(queries.load_json(row["attributes"]))
        for attr in descriptor.attributes:
            enum_cls = self.attribute_enums.get((kind, attr.name))
            if enum_cls is not None and values[attr.name] is not None:
                values[attr.name] = enum_cls(values[attr.name])
        obj.__dict__.update(values)
        obj.__dict__.update(
            id=encode_id("Customer", row["id"]),
            pk=row["id"],
            owner_pk=row["owner"],
            team_pk=row["team"],
            kind=self.kind_enum(kind),
            name=row["name"],
            email=row["email"],
            phone=row["phone"],
            stage=row["stage"],
            stage_label=stage.label if stage else row["stage"],
            phase=core.Phase(row["phase"]),
            stage_entered_at=row["stage_entered_at"],
            version=row["version"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            deleted_at=row["deleted_at"],
            erased_at=row.get("erased_at"),
        )
        return obj

    def interaction(self, row: dict[str, Any]) -> Any:
        obj = self.interaction_cls.__new__(self.interaction_cls)
        try:
            channel = self.channel_enum(row["channel"])
        except ValueError:  # a channel whose plugin was removed
            channel = self.channel_enum("OTHER")
        obj.__dict__.update(
            id=encode_id("Interaction", row["id"]),
            pk=row["id"],
            customer_id=encode_id("Customer", row["customer"]),
            contact_id=encode_id("Contact", row["contact"]) if row["contact"] else None,
            channel=channel,
            direction=core.InteractionDirection(row["direction"]),
            occurred_at=row["occurred_at"],
            subject=row["subject"],
            notes=row["notes"],
            outcome=row["outcome"],
            satisfaction=row["satisfaction"],
            amount=Decimal(str(row["amount"])).quantize(Decimal("0.01"))
            if row["amount"] is not None
            else None,
            created_at=row["created_at"],
            purpose=consent_types.Purpose(row["purpose"]) if row.get("purpose") else None,
        )
        return obj

    def relationship(self, row: dict[str, Any]) -> Any:
        obj = self.relationship_cls.__new__(self.relationship_cls)
        obj.__dict__.update(core.relationship_values(row))
        return obj
