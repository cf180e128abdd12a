"""The classes one schema build made for its catalog, and the row → object
conversions every read path (resolvers, compiled, hybrid) uses to return
instances of the concrete types."""

import enum
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from crmgraph import core_fields
from crmgraph.db import queries
from crmgraph.registry import Catalog
from crmgraph.schema import core_types as core
from crmgraph.schema import described
from crmgraph.schema.customers import customer_enums, load_customer


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
    # (info, pk) -> the customer as the caller may see it, or None
    load_customer = staticmethod(load_customer)

    @cached_property
    def read_customer(self) -> described.Reader:
        """Row → the Customer interface's column-backed values (crmgraph.core_fields)."""
        return described.row_reader(core_fields.CUSTOMER, customer_enums(self.kind_enum))

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
        obj.__dict__.update(self.read_customer(row))
        obj.__dict__.update(
            pk=row["id"],
            owner_pk=row["owner"],
            team_pk=row["team"],
            stage_label=stage.label if stage else row["stage"],
        )
        return obj

    def interaction(self, row: dict[str, Any]) -> Any:
        """The Interaction (crmgraph.core_fields.INTERACTION), and its key."""
        obj = self.interaction_cls.from_row(row)  # type: ignore[attr-defined]
        obj.pk = row["id"]
        return obj

    def relationship(self, row: dict[str, Any]) -> Any:
        obj = self.relationship_cls.__new__(self.relationship_cls)
        obj.__dict__.update(core.relationship_values(row))
        return obj
