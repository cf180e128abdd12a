"""The customer type descriptor: what a plugin declares to add a kind of party.

A descriptor is plain data. From it crmgraph generates the concrete GraphQL
object type (one typed field per attribute), the typed attribute input used by
``createCustomer``/``updateCustomer``, and the lifecycle the engine enforces.
"""

from __future__ import annotations

import datetime
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum
from typing import Any


class Phase(Enum):
    """Common lifecycle phases every type's stages map onto, so analytics can
    compare types (the customer value chain)."""

    ENGAGEMENT = "ENGAGEMENT"
    ACQUISITION = "ACQUISITION"
    RETENTION = "RETENTION"
    EXPANSION = "EXPANSION"
    ENDED = "ENDED"


ATTRIBUTE_TYPES: tuple[type, ...] = (str, int, float, bool, Decimal, datetime.date)

Number = int | float | Decimal


def exact_number(value: Number) -> Decimal:
    """A number as the exact decimal a person wrote: a float by its shortest
    spelling (``0.3`` is ``Decimal("0.3")``, not the binary
    0.299999999999999988…), so a value equal to a bound compares equal to it
    whichever of int, float or Decimal each one is."""
    if isinstance(value, float):
        return Decimal(repr(value))
    return Decimal(value)


def _bound(value: Any) -> Any:
    """A declared bound as an exact Decimal (a whole one without a fraction:
    ``100.0`` is ``100``); anything else is left for :func:`descriptor_problems`
    to report with the plugin's name."""
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        return value
    exact = exact_number(value)
    if exact.is_finite() and exact == exact.to_integral_value():
        return Decimal(int(exact))
    return exact


def bound_text(bound: Number) -> str:
    """A bound as people write it: ``0.3``, ``100``, ``0.0000001`` (no exponent)."""
    return format(exact_number(bound), "f")


@dataclass(frozen=True)
class Attribute:
    """One typed attribute of a customer type, stored in the customer's
    validated ``attributes`` JSON column and exposed as a typed GraphQL field."""

    name: str
    type: type = str
    description: str = ""
    required: bool = False
    max_length: int | None = None
    choices: tuple[str, ...] | None = None
    min_value: Number | None = None
    max_value: Number | None = None
    """Inclusive bounds of a number attribute, given as int, float or Decimal
    and kept as exact Decimals (:func:`exact_number`): ``max_value=0.3``
    accepts exactly 0.3 for a float or a Decimal attribute."""
    permission: str | None = None
    """Permission a caller needs to read this attribute (pay, health data, …);
    declared through the permissions hook and enforced by the auth layer."""

    @property
    def documentation(self) -> str | None:
        """The description GraphQL shows: the plugin's, with the bounds."""
        limits = []
        if self.min_value is not None:
            limits.append(f"at least {bound_text(self.min_value)}")
        if self.max_value is not None:
            limits.append(f"at most {bound_text(self.max_value)}")
        if not limits:
            return self.description or None
        sentence = " and ".join(limits)
        return f"{self.description} {sentence[0].upper()}{sentence[1:]}.".strip()

    def __post_init__(self) -> None:
        # normalised once, here, so validation, the demo seed and the schema
        # all read the same exact bounds
        object.__setattr__(self, "min_value", _bound(self.min_value))
        object.__setattr__(self, "max_value", _bound(self.max_value))


@dataclass(frozen=True)
class Stage:
    """A lifecycle stage. A ``detour`` is a stage off the main path (at risk, on
    leave, suspended): the funnel does not count a move into it as progress."""

    key: str
    label: str
    phase: Phase
    detour: bool = False


# A guard looks at a customer about to move and returns the reasons it may not
# (an empty list, or None, lets it pass). Reasons from every guard are collected.
Guard = Callable[..., Iterable[str] | str | None]


@dataclass(frozen=True)
class Transition:
    """An allowed move. ``guards`` may refuse it with reasons. A transition with
    ``convert_to`` turns the customer into another type (same ID, history and
    interactions), landing in ``convert_stage`` of that type (default: its
    initial stage)."""

    from_stage: str
    to_stage: str
    guards: tuple[Guard, ...] = ()
    description: str = ""
    convert_to: str | None = None
    convert_stage: str | None = None


@dataclass(frozen=True)
class Lifecycle:
    stages: tuple[Stage, ...]
    initial: str
    transitions: tuple[Transition, ...] = ()

    def stage(self, key: str) -> Stage | None:
        return next((s for s in self.stages if s.key == key), None)

    @property
    def initial_phase(self) -> str:
        """The phase of the stage a new customer starts in (checked at start-up
        to be one of the stages)."""
        return self.stage(self.initial).phase.value  # type: ignore[union-attr]

    def transition(self, from_stage: str, to_stage: str) -> Transition | None:
        return next(
            (t for t in self.transitions if t.from_stage == from_stage and t.to_stage == to_stage),
            None,
        )

    def transitions_from(self, stage: str) -> tuple[Transition, ...]:
        return tuple(t for t in self.transitions if t.from_stage == stage)


@dataclass(frozen=True)
class RelationshipKind:
    """A kind of link between two parties (``guarantees``, ``supplies``, …).
    Empty ``from_kinds``/``to_kinds`` accept any customer type."""

    key: str
    label: str
    description: str = ""
    from_kinds: tuple[str, ...] = ()
    to_kinds: tuple[str, ...] = ()


@dataclass(frozen=True)
class CustomerType:
    """A kind of customer. ``key`` is stored in the database (``customer.kind``)
    and appears in the ``CustomerKind`` enum upper-cased; ``graphql_name`` names
    the concrete object type implementing the ``Customer`` interface."""

    key: str
    graphql_name: str
    description: str
    lifecycle: Lifecycle
    attributes: tuple[Attribute, ...] = ()
    relationship_kinds: tuple[str, ...] = field(default_factory=tuple)
    """Keys of the relationship kinds this type takes part in (documentation
    for clients; each must be declared through ``crmgraph_relationship_kinds``)."""
    duplicate_rule: str = "warn"
    """What ``createCustomer`` does when the new customer is likely an existing
    one (crmgraph.dedupe): ``"warn"`` creates it and lists the candidates;
    ``"block"`` refuses it (code ``DUPLICATE``) while a candidate scores 0.8 or
    more (an exact e-mail, phone or tax id) unless ``allowDuplicate: true``.
    ``CRMGRAPH_DUPLICATE_RULES`` overrides it per type."""
    secondary_role: bool = True
    """Whether a party whose primary kind is another may also hold this kind
    as a further role (``addRole``); False keeps it a primary kind only (an
    address-book entry, say)."""
    not_combinable_with: tuple[str, ...] = ()
    """Keys of kinds a party holding this one may not also hold, as its
    primary kind or as a role (a competitor that may not be a client). Either
    side's declaration refuses the pair."""

    @property
    def role_graphql_name(self) -> str:
        """The GraphQL type of this kind held as a role (``Customer.roles``)."""
        return f"{self.graphql_name}Role"

    def combinable(self, other: str) -> bool:
        """Whether this kind's own declaration lets a party also hold ``other``."""
        return other not in self.not_combinable_with

    def attribute(self, name: str) -> Attribute | None:
        return next((a for a in self.attributes if a.name == name), None)

    def decode_attributes(self, stored: dict[str, Any]) -> dict[str, Any]:
        """JSON-stored attribute values back to their Python types."""
        values: dict[str, Any] = {}
        for attr in self.attributes:
            raw = stored.get(attr.name)
            if raw is None:
                values[attr.name] = None
            elif attr.type is Decimal:
                values[attr.name] = Decimal(str(raw))
            elif attr.type is datetime.date:
                values[attr.name] = datetime.date.fromisoformat(raw)
            else:
                values[attr.name] = raw
        return values


DUPLICATE_RULES = ("warn", "block")

KEY_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
GRAPHQL_NAME_PATTERN = re.compile(r"^[A-Z][A-Za-z0-9]{0,62}$")


def bound_problems(attr: Attribute) -> list[str]:
    """What is wrong with an attribute's bounds: each a finite number, only on
    a number attribute, the minimum not above the maximum."""
    bounds = {"min_value": attr.min_value, "max_value": attr.max_value}
    given = {name: value for name, value in bounds.items() if value is not None}
    problems = [
        f"attribute {attr.name!r}: {name} must be a finite int, float or Decimal, not {value!r}"
        for name, value in given.items()
        if not isinstance(value, Decimal) or not value.is_finite()
    ]
    if given and attr.type not in (int, float, Decimal):
        problems.append(f"attribute {attr.name!r}: bounds apply only to number attributes")
    low, high = attr.min_value, attr.max_value
    if problems or low is None or high is None:
        return problems
    if low > high:
        problems.append(f"attribute {attr.name!r}: min_value {low} is above max_value {high}")
    elif attr.type is int and math.ceil(low) > math.floor(high):
        problems.append(f"attribute {attr.name!r}: no whole number lies between its bounds")
    return problems


def descriptor_problems(descriptor: CustomerType, reserved_fields: Iterable[str]) -> list[str]:
    """Everything wrong with one descriptor on its own (cross-plugin clashes are
    checked by the catalog)."""
    problems: list[str] = []
    if not KEY_PATTERN.match(descriptor.key):
        problems.append(f"key {descriptor.key!r} must be snake_case, starting with a letter")
    if not GRAPHQL_NAME_PATTERN.match(descriptor.graphql_name):
        problems.append(f"GraphQL name {descriptor.graphql_name!r} must be PascalCase")
    if descriptor.duplicate_rule not in DUPLICATE_RULES:
        problems.append(
            f"duplicate_rule {descriptor.duplicate_rule!r} must be one of "
            f"{', '.join(DUPLICATE_RULES)}"
        )
    for other in descriptor.not_combinable_with:
        if not KEY_PATTERN.match(other):
            problems.append(f"not_combinable_with names {other!r}, which is not a type key")
        elif other == descriptor.key:
            problems.append("not_combinable_with names the type itself")
    reserved = set(reserved_fields)
    seen: set[str] = set()
    for attr in descriptor.attributes:
        if not KEY_PATTERN.match(attr.name):
            problems.append(f"attribute {attr.name!r} must be snake_case")
        if attr.name in seen:
            problems.append(f"attribute {attr.name!r} is declared twice")
        seen.add(attr.name)
        if attr.name in reserved:
            problems.append(f"attribute {attr.name!r} clashes with a core Customer field")
        if attr.type not in ATTRIBUTE_TYPES:
            problems.append(f"attribute {attr.name!r} has unsupported type {attr.type!r}")
        problems += bound_problems(attr)
    lifecycle = descriptor.lifecycle
    keys = [s.key for s in lifecycle.stages]
    if not keys:
        problems.append("lifecycle has no stages")
    for key in {k for k in keys if keys.count(k) > 1}:
        problems.append(f"stage {key!r} is declared twice")
    if lifecycle.initial not in keys:
        problems.append(f"initial stage {lifecycle.initial!r} is not one of its stages")
    for t in lifecycle.transitions:
        for end in (t.from_stage, t.to_stage):
            if end not in keys:
                problems.append(
                    f"transition {t.from_stage}->{t.to_stage} names unknown stage {end!r}"
                )
    return problems
