"""Checking one row of a customer import against ``createCustomer``'s rules.

Name, e-mail and phone through :mod:`crmgraph.input_checks`, the kind's typed
attributes through :func:`crmgraph.validation.attributes` (after
:mod:`.coerce` reads the cells), guarded attributes and the assignment rule
for the caller, then every plugin's ``crmgraph_validate_customer``. A bad row
is rejected with every reason (:class:`RowCheck` returns them all); a good
one becomes a :class:`Draft`, ready to write.

``stage`` puts the customer in that stage of its kind (empty: the initial
one), entered at ``stage_entered_at`` (empty: now, and never in the future).
``roles`` lists the further roles it holds (``guarantor:verified``), each
held to what ``addRole`` checks: a kind that may be a further role and be
combined with the others, its attributes from the columns prefixed by its
kind (``guarantor.guaranteed_amount``) by its type's rules, guarded ones for
the caller, and plugins' ``crmgraph_validate_customer`` for the role.
``former_roles`` lists other types it has a stage in without holding them
(``prospect:converted``), whose attributes it may then carry among its own
columns, each held to its own type's rules.
"""

from __future__ import annotations

import datetime
import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from crmgraph import input_checks
from crmgraph import validation as v
from crmgraph.access import CUSTOMER_ASSIGN
from crmgraph.customer_types import Attribute, CustomerType
from crmgraph.db import writes
from crmgraph.dedupe.matching import Probe
from crmgraph.extension_points import CustomerWrite
from crmgraph.input_checks import (
    attribute_fields,
    camel_keys,
    forbidden_problem,
    guarded_problems,
)
from crmgraph.operations.new_customers import HeldRole, NewCustomer
from crmgraph.operations.roles import combination_problems, role_kind_problems
from crmgraph.registry import Catalog
from crmgraph.transfer.coerce import cell, typed
from crmgraph.transfer.export import ROLE_ENTERED, ROLE_SEPARATOR, STAGE_SEPARATOR
from crmgraph.transfer.importer import ImportContext
from crmgraph.transfer.lookups import People
from crmgraph.transfer.mapping import ATTRIBUTE_PREFIX, ColumnMap
from crmgraph.transfer.references import REF
from crmgraph.transfer.source import SourceRow
from crmgraph.validation import Errors, Problem


@dataclass
class Draft:
    """A good row, ready to write."""

    row: SourceRow
    kind: str
    descriptor: CustomerType
    values: dict[str, Any]  # name, email, phone, owner, team
    attributes: dict[str, Any]  # validated, JSON-storable
    stage: str = ""
    entered_at: datetime.datetime | None = None
    roles: list[tuple[str, str]] = field(default_factory=list)  # other (kind, stage)
    ref: str | None = None
    held: dict[str, HeldRole] = field(default_factory=dict)  # further roles, of ``roles``
    _changes: dict[str, list[Any]] | None = field(default=None, repr=False, compare=False)
    _probe: Probe | None = field(default=None, repr=False, compare=False)

    def probe(self) -> Probe:
        """What the duplicate matcher is given (kept: the import asks it for
        the screening, the pairs in the batch and the keys written)."""
        if self._probe is None:
            self._probe = Probe(
                name=self.values["name"],
                email=self.values["email"],
                phone=self.values["phone"],
                tax_id=self.attributes.get("tax_id"),
                kind=self.kind,
            )
        return self._probe

    def as_row(self) -> dict[str, Any]:
        """Shaped like a customer row, for the merge rule."""
        return {**self.values, "attributes": self.attributes}

    def lifecycle_fields(self) -> dict[str, Any]:
        """The stage and roles of a customer not created in its initial stage."""
        fields: dict[str, Any] = {}
        if self.stage != self.descriptor.lifecycle.initial:
            fields["stage"] = self.stage
        for name, held in (("roles", True), ("formerRoles", False)):
            pairs = [(k, st) for k, st in self.roles if (k in self.held) is held]
            if pairs:
                fields[name] = [f"{kind}{STAGE_SEPARATOR}{stage}" for kind, stage in pairs]
        return fields

    def created_changes(self) -> dict[str, list[Any]]:
        """The changes of its ``customer.created`` audit entry (kept: the
        import computes them while the batch before is written)."""
        if self._changes is None:
            fields = {
                "kind": self.kind,
                **camel_keys(self.values),
                **attribute_fields(self.kind, self.attributes),
                **self.lifecycle_fields(),
            }
            self._changes = writes.field_changes(None, fields)
        return self._changes

    def changed(self) -> None:
        """Its values were changed (a later row folded into it)."""
        self._changes = self._probe = None

    def new_customer(self) -> NewCustomer:
        """The customer the row creates."""
        return NewCustomer(
            self.kind,
            self.values,
            self.attributes,
            stage=self.stage,
            entered_at=self.entered_at,
            roles=self.roles,
            held=self.held,
        )


@dataclass
class RowCheck:
    """Holds the rows of a batch to the rules (see the module's docstring):
    ``default_kind`` is the kind of rows whose kind cell is empty, ``people``
    the users and teams owners and teams are found among."""

    ctx: ImportContext
    default_kind: str | None
    columns: ColumnMap
    people: People
    _attributes: dict[str, dict[str, Attribute]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @property
    def catalog(self) -> Catalog:
        return self.ctx.catalog

    # What every row of the batch looks up again, found once: the catalog and
    # a type find theirs by a scan, and most columns are no role's.
    @functools.cached_property
    def types(self) -> dict[str, CustomerType]:
        """The catalog's types by key (the first of a key, as ``customer_type``)."""
        found: dict[str, CustomerType] = {}
        for descriptor in self.catalog.customer_types:
            found.setdefault(descriptor.key, descriptor)
        return found

    @functools.cached_property
    def role_columns(self) -> list[tuple[str, str]]:
        """The ``<kind>.<attribute>`` fields the columns feed, with their kind."""
        found = []
        for target in self.columns.columns.values():
            owner, dot, _ = target.partition(".")
            if dot and owner in self.types:
                found.append((target, owner))
        return found

    @functools.cached_property
    def attribute_columns(self) -> list[tuple[str, str]]:
        """The ``attributes.<name>`` fields the columns feed, with the name."""
        targets = self.columns.columns.values()
        return [
            (t, t.removeprefix(ATTRIBUTE_PREFIX)) for t in targets if t.startswith(ATTRIBUTE_PREFIX)
        ]

    def attribute_of(self, descriptor: CustomerType, name: str) -> Attribute | None:
        """``descriptor.attribute(name)``, from a table made once per type."""
        table = self._attributes.get(descriptor.key)
        if table is None:
            table = {}
            for attr in descriptor.attributes:
                table.setdefault(attr.name, attr)
            self._attributes[descriptor.key] = table
        return table.get(name)

    def check(self, row: SourceRow) -> Draft | list[Problem]:
        cells = self.columns.project(row.values)
        errors = Errors()
        kind = (cell(cells.get("kind")) or self.default_kind or "").lower()
        descriptor = self.types.get(kind) if kind else None
        if not kind:
            errors.add("kind", "kind is required", "REQUIRED")
        elif descriptor is None:
            known = ", ".join(d.key for d in self.catalog.customer_types)
            errors.add("kind", f"unknown kind {kind!r} (known: {known})", "INVALID_CHOICE")
        party = {"name": cell(cells.get("name"))}
        party |= {f: cell(cells[f]) for f in ("email", "phone") if f in cells}
        values = {"email": None, "phone": None}
        values |= input_checks.party_fields(errors, party, self.ctx.phone_region)
        values["owner"] = self.people.user(errors, "owner", cells.get("owner"))
        values["team"] = self.people.team(errors, "team", cells.get("team"))
        self.check_assignment(errors, values)
        stage, entered_at = self.check_stage(errors, descriptor, cells)
        roles = self.check_roles(errors, kind, cells.get("roles"))
        former = self.check_roles(errors, kind, cells.get("former_roles"), "former_roles")
        for other in dict(roles).keys() & dict(former).keys():
            errors.add("formerRoles", f"former_roles: {other!r} is held (roles)", "INVALID")
        attributes = self.check_attributes(errors, kind, descriptor, cells, former)
        held = self.check_held(errors, kind, roles, cells)
        if errors or descriptor is None:
            return errors.problems
        ref = cell(cells.get(REF))
        every = roles + former
        return Draft(row, kind, descriptor, values, attributes, stage, entered_at, every, ref, held)

    def check_stage(
        self, errors: Errors, descriptor: CustomerType | None, cells: dict[str, str]
    ) -> tuple[str, datetime.datetime | None]:
        """The stage of the row's kind (its initial one when not given) and when
        it was entered (not in the future: it is history)."""
        entered = typed(errors, "stageEnteredAt", datetime.datetime, cells.get("stage_entered_at"))
        if entered is not None and entered > writes.now() + input_checks.FUTURE_TOLERANCE:
            errors.add("stageEnteredAt", "stageEnteredAt cannot be in the future", "OUT_OF_RANGE")
        if descriptor is None:
            return "", entered
        stage = cell(cells.get("stage")) or descriptor.lifecycle.initial
        if descriptor.lifecycle.stage(stage) is None:
            errors.add("stage", self.unknown_stage(descriptor, stage), "INVALID_CHOICE")
        return stage, entered

    @staticmethod
    def unknown_stage(descriptor: CustomerType, stage: str) -> str:
        known = ", ".join(s.key for s in descriptor.lifecycle.stages)
        return f"{stage!r} is not a stage of {descriptor.graphql_name} (known: {known})"

    def check_roles(
        self, errors: Errors, kind: str, text: str | None, column: str = "roles"
    ) -> list[tuple[str, str]]:
        """``kind:stage`` pairs: other types the customer has a stage in."""
        path = v.camel(column)
        roles: list[tuple[str, str]] = []
        for item in (cell(text) or "").split(ROLE_SEPARATOR):
            if not item.strip():
                continue
            other, _, stage = (part.strip() for part in item.partition(STAGE_SEPARATOR))
            other = other.lower()
            descriptor = self.types.get(other)
            if descriptor is None or other == kind or other in dict(roles):
                why = (
                    "its own kind" if other == kind else "named twice" if descriptor else "unknown"
                )
                errors.add(path, f"{column}: {other!r} is {why}", "INVALID_CHOICE")
            elif descriptor.lifecycle.stage(stage) is None:
                errors.add(
                    path, f"{column}: {self.unknown_stage(descriptor, stage)}", "INVALID_CHOICE"
                )
            else:
                roles.append((other, stage))
        return roles

    def check_held(
        self,
        errors: Errors,
        kind: str,
        roles: Sequence[tuple[str, str]],
        cells: dict[str, str],
    ) -> dict[str, HeldRole]:
        """The further roles of ``roles``, each checked as ``addRole`` checks
        one, with its attributes and stage time from its kind's columns."""
        kinds = [k for k, _ in roles]
        for target, owner in self.role_columns:
            if owner not in kinds and cell(cells[target]) is not None:
                errors.add(v.camel(owner), f"{target}: the row holds no {owner.upper()} role")
        held: dict[str, HeldRole] = {}
        for index, other in enumerate(kinds):
            found = Errors()
            role_kind_problems(self.catalog, found, other)
            found.problems += combination_problems(self.catalog, other, [kind, *kinds[:index]])
            errors.problems += [Problem("roles", p.message, p.code) for p in found.problems]
            descriptor = self.types.get(other)
            if found or descriptor is None:
                continue
            sent = self.role_cells(errors, descriptor, cells)
            prefix = v.camel(other)
            if self.ctx.access is not None:
                errors.problems += guarded_problems(
                    self.ctx.access, descriptor.graphql_name, f"{prefix}.", sent, creating=True
                )
            entered = typed(
                errors,
                f"{prefix}.stageEnteredAt",
                datetime.datetime,
                cells.get(f"{other}.{ROLE_ENTERED}"),
            )
            if entered is not None and entered > writes.now() + input_checks.FUTURE_TOLERANCE:
                errors.add(f"{prefix}.stageEnteredAt", "cannot be in the future", "OUT_OF_RANGE")
            held[other] = HeldRole(v.attributes(errors, prefix, descriptor, sent), entered)
        return held

    def role_cells(
        self, errors: Errors, descriptor: CustomerType, cells: dict[str, str]
    ) -> dict[str, Any]:
        """A further role's attribute values from its ``<kind>.<attribute>`` cells."""
        sent: dict[str, Any] = {}
        for attr in descriptor.attributes:
            text = cells.get(f"{descriptor.key}.{attr.name}")
            path = f"{v.camel(descriptor.key)}.{v.camel(attr.name)}"
            value = typed(errors, path, attr.type, text) if cell(text) is not None else None
            if value is not None:
                sent[attr.name] = value
        return sent

    def check_assignment(self, errors: Errors, values: dict[str, Any]) -> None:
        """As createCustomer: without customer.assign, only to yourself and
        your teams; a caller who sees only their own customers owns the rest."""
        access = self.ctx.access
        if access is None:
            return
        principal = access.principal
        if values["owner"] is None and access.scope is not None:
            values["owner"] = principal.user_id
        if access.can(CUSTOMER_ASSIGN):
            return
        if values["owner"] not in (None, principal.user_id):
            errors.problems.append(
                forbidden_problem("owner", "give a customer to another user", CUSTOMER_ASSIGN)
            )
        if values["team"] is not None and values["team"] not in principal.team_ids:
            errors.problems.append(
                forbidden_problem(
                    "team", "give a customer to a team you are not in", CUSTOMER_ASSIGN
                )
            )

    def check_attributes(
        self,
        errors: Errors,
        kind: str,
        descriptor: CustomerType | None,
        cells: dict[str, str],
        roles: Sequence[tuple[str, str]] = (),
    ) -> dict[str, Any]:
        """The row's attributes: its kind's, and those of the other types it
        holds (kept from before a conversion, as the lifecycle keeps them),
        each held to its own type's rules."""
        holders = [d for d in (descriptor, *map(self.types.get, dict(roles))) if d]
        sent: dict[str, dict[str, Any]] = {d.key: {} for d in holders}
        for target, name in self.attribute_columns:
            text = cells[target]
            if cell(text) is None:
                continue
            holder = next((d for d in holders if self.attribute_of(d, name) is not None), None)
            if holder is None:
                if descriptor is not None:
                    path = f"{v.camel(kind)}.{v.camel(name)}"
                    errors.add(path, f"{name} does not apply to a customer of kind {kind.upper()}")
                continue
            attr = self.attribute_of(holder, name)
            assert attr is not None  # the holder is the type that has it
            value = typed(errors, f"{v.camel(holder.key)}.{v.camel(name)}", attr.type, text)
            if value is not None:
                sent[holder.key][name] = value
        if descriptor is None:
            return {}
        attributes: dict[str, Any] = {}
        for holder in reversed(holders):  # the row's own kind last: its rules win
            prefix = v.camel(holder.key)
            if self.ctx.access is not None:
                errors.problems.extend(
                    guarded_problems(
                        self.ctx.access, holder.graphql_name, f"{prefix}.", sent[holder.key]
                    )
                )
            if holder is descriptor:
                attributes |= v.attributes(errors, prefix, holder, sent[holder.key])
            else:  # a former type's required attributes may have been dropped since
                for name, value in sent[holder.key].items():
                    path = f"{prefix}.{v.camel(name)}"
                    attr = self.attribute_of(holder, name)
                    assert attr is not None  # sent holds only the holder's attributes
                    kept = v.attribute_value(errors, path, attr, value)
                    if kept is not None:
                        attributes[name] = kept
        return attributes

    async def plugin_check(self, draft: Draft) -> list[Problem]:
        """Every plugin's ``crmgraph_validate_customer``: for the customer,
        then for each further role it holds (as ``addRole`` asks them)."""
        write = CustomerWrite(
            draft.kind,
            draft.descriptor,
            {k: val for k, val in draft.values.items() if val is not None},
            draft.descriptor.decode_attributes(draft.attributes),
            existing=None,
            facts=None,
        )
        problems = await input_checks.plugin_problems(self.ctx.plugin_manager, write)
        for kind, role in draft.held.items():
            descriptor = self.types.get(kind)
            assert descriptor is not None  # checked with the row
            typed_attrs = descriptor.decode_attributes(dict(role.attributes))
            role_write = CustomerWrite(kind, descriptor, {}, typed_attrs, None, None, draft.kind)
            problems += await input_checks.plugin_problems(self.ctx.plugin_manager, role_write)
        return problems
