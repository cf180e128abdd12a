"""Strawberry fields and row → object conversions derived from the one
description of the core types' columns (:mod:`crmgraph.core_fields`).

The enums a description names (``Field.of``) are given by the caller: the
core's are fixed, ``CustomerKind`` and ``InteractionChannel`` are built per
catalog.
"""

import dataclasses
import datetime
import enum
import inspect
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, Optional, TypeVar

import strawberry

from crmgraph.core_fields import Field, Value
from crmgraph.schema.ids import encode_id

Enums = Mapping[str, Any]
Row = Mapping[str, Any]
Reader = Callable[[Row], dict[str, Any]]
T = TypeVar("T", bound=type)

PLAIN_TYPES: dict[Value, Any] = {
    Value.TEXT: str,
    Value.INT: int,
    Value.FLOAT: float,
    Value.FLAG: bool,
    Value.MONEY: Decimal,
    Value.TIMESTAMP: datetime.datetime,
    Value.DATE: datetime.date,
    Value.ID: strawberry.ID,
    Value.STAGE_LABEL: str,
}
CENT = Decimal("0.01")


def annotation(field: Field, enums: Enums) -> Any:
    found = enums[field.of] if field.value is Value.ENUM else PLAIN_TYPES[field.value]
    return Optional[found] if field.nullable else found  # noqa: UP045


def strawberry_field(field: Field) -> Any:
    return strawberry.field(description=field.description)


def add_fields(namespace: dict[str, Any], fields: tuple[Field, ...], enums: Enums) -> None:
    """Declare ``fields``, in their order, in a class namespace being built."""
    annotations = namespace.setdefault("__annotations__", {})
    for field in fields:
        annotations[field.name] = annotation(field, enums)
        namespace[field.name] = strawberry_field(field)


def columns(fields: tuple[Field, ...], enums: Enums) -> Callable[[T], T]:
    """A class decorator, applied before ``strawberry.type``: the class gets
    ``fields`` before its own annotated fields, and a ``from_row`` classmethod
    (unless it has one) building an instance from a row."""
    read = row_reader(fields, enums)

    def decorate(cls: T) -> T:
        namespace: dict[str, Any] = {"__annotations__": {}}
        add_fields(namespace, fields, enums)
        own = inspect.get_annotations(cls)
        cls.__annotations__ = {**namespace.pop("__annotations__"), **own}
        for name, value in namespace.items():
            setattr(cls, name, value)
        if "from_row" not in cls.__dict__:
            cls.from_row = classmethod(lambda c, row: new_object(c, read(row)))  # type: ignore[attr-defined]
        return cls

    return decorate


def new_object(cls: type, values: dict[str, Any]) -> Any:
    obj = cls.__new__(cls)
    obj.__dict__.update(values)
    return obj


def value_reader(field: Field, enums: Enums) -> Callable[[Row], Any]:
    key = field.row_key
    if field.value is Value.ID:
        type_name = field.of
        assert type_name is not None
        if field.nullable:
            return lambda row: encode_id(type_name, v) if (v := row.get(key)) is not None else None
        return lambda row: encode_id(type_name, row[key])
    if field.value is Value.ENUM:
        return enum_reader(field, enums[field.of])
    if field.value is Value.FLAG:
        return lambda row: bool(row[key])
    if field.value is Value.MONEY:
        return lambda row: money(row.get(key))
    if field.nullable:
        return lambda row: row.get(key)
    return lambda row: row[key]


def money(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value)).quantize(CENT)


def enum_reader(field: Field, enum_cls: Any) -> Callable[[Row], Any]:
    key = field.row_key
    if field.fallback is not None:
        fallback = enum_cls(field.fallback)

        def lenient(row: Row) -> Any:
            try:
                return enum_cls(row[key])
            except ValueError:  # a value whose plugin was removed
                return fallback

        return lenient
    if field.nullable:
        return lambda row: enum_cls(v) if (v := row.get(key)) else None
    return lambda row: enum_cls(row[key])


def row_reader(fields: tuple[Field, ...], enums: Enums) -> Reader:
    """Row → the fields' values by Python name (a stage label, which needs the
    catalog, is left to the caller)."""
    readers = [(f.name, value_reader(f, enums)) for f in fields if f.value is not Value.STAGE_LABEL]

    def read(row: Row) -> dict[str, Any]:
        return {name: reader(row) for name, reader in readers}

    return read


def enum_type(
    py_enum: type[enum.Enum], description: str, values: Callable[[str], str] | Mapping[str, str]
) -> Any:
    """``strawberry.enum(py_enum)`` with a description for each value: for an
    enum of a lower layer (a plain ``Enum`` holds no GraphQL text) or one built
    per catalog. ``values`` maps a value's name to its description."""
    describe = values if callable(values) else values.__getitem__
    graphql_enum = strawberry.enum(py_enum, description=description)
    definition = graphql_enum.__strawberry_definition__
    definition.values = [
        dataclasses.replace(value, description=describe(value.name)) for value in definition.values
    ]
    return graphql_enum
