"""Attribute values made from a customer type's declarations: one valid value
per attribute (inside its bounds, one of its choices, short enough) and the
invalid ones each declaration promises to refuse, in the form a GraphQL
client sends them; and the comparison of a value read back with the one sent.
"""

from __future__ import annotations

import datetime
from decimal import Decimal
from typing import Any

from crmgraph.customer_types import Attribute, CustomerType, exact_number
from crmgraph.validation import camel


def input_field(descriptor: CustomerType) -> str:
    """The attribute input's name on create/updateCustomer (``client``, ...)."""
    return camel(descriptor.key)


def kind_enum(descriptor: CustomerType) -> str:
    return descriptor.key.upper()


def valid_value(attr: Attribute, tag: str = "") -> Any:
    """A value the declaration accepts; ``tag`` makes strings distinct (so an
    erased one can be searched for afterwards)."""
    if attr.choices:
        return attr.choices[0]
    if attr.type is str:
        text = f"cf-{tag}{attr.name}"
        return text[: attr.max_length] if attr.max_length else text
    if attr.type is bool:
        return True
    if attr.type is datetime.date:
        # in the future: a guard about contracts in force lets it pass
        return (datetime.date.today() + datetime.timedelta(days=400)).isoformat()
    return _number(attr)


def _number(attr: Attribute) -> Any:
    low, high = attr.min_value, attr.max_value
    if low is not None and high is not None:
        chosen = Decimal(low) + (Decimal(high) - Decimal(low)) / 2
    elif low is not None:
        chosen = Decimal(low) + 1
    elif high is not None:
        chosen = Decimal(high) - 1
    else:
        chosen = Decimal(7)
    if attr.type is int:
        whole = int(chosen)
        return whole if low is None or whole >= low else whole + 1
    if attr.type is float:
        return float(chosen)
    return str(chosen)  # Decimal travels as a string


def valid_values(descriptor: CustomerType, tag: str = "") -> dict[str, Any]:
    """Every attribute set, keyed by its GraphQL (camelCase) name."""
    return {camel(a.name): valid_value(a, tag) for a in descriptor.attributes}


def required_values(descriptor: CustomerType) -> dict[str, Any]:
    return {camel(a.name): valid_value(a) for a in descriptor.attributes if a.required}


def invalid_values(attr: Attribute) -> list[tuple[str, Any]]:
    """(what is wrong, value) for each refusal the declaration promises."""
    found: list[tuple[str, Any]] = []
    if attr.max_length and attr.type is str and not attr.choices:
        found.append((f"longer than {attr.max_length}", "x" * (attr.max_length + 1)))
    if attr.choices:
        found.append(("not one of its choices", "NOT_A_DECLARED_CHOICE"))
    for bound, step, what in ((attr.min_value, -1, "below"), (attr.max_value, 1, "above")):
        if bound is not None:
            outside = exact_number(bound) + step
            value: Any = outside if attr.type is not int else int(outside)
            if attr.type is float:
                value = float(outside)
            elif attr.type is Decimal:
                value = str(outside)
            found.append((f"{what} its bound {bound}", value))
    return found


def same_value(attr: Attribute, sent: Any, read: Any) -> bool:
    """Whether a value read back is the one sent (numbers compared exactly)."""
    if sent is None or read is None:
        return sent is read
    if attr.type in (Decimal, float):
        return exact_number(Decimal(str(sent))) == exact_number(Decimal(str(read)))
    return bool(sent == read)


def attribute_selection(descriptor: CustomerType, guarded: bool = False) -> str:
    """The type's attribute fields for a query (those behind a permission only
    when ``guarded``)."""
    names = [camel(a.name) for a in descriptor.attributes if guarded or a.permission is None]
    return " ".join(names) or "__typename"
