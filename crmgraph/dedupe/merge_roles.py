"""What a merge does to the two parties' roles (issue 24), and how its undo
takes that back.

A party holds its primary kind and further roles (:mod:`crmgraph.db.party_roles`).
Merging ``merged`` into ``survivor``, whatever their kinds:

- the survivor keeps its primary kind (its type, stage and lifecycle);
- every role the merged party holds (its primary kind and its further roles)
  that the survivor does not hold becomes a further role of the survivor,
  with its stage, phase, entry time and typed attributes; its history comes
  with the merge's stage changes (each keeps its ``kind``) and its open stay
  goes on. A role gained from the merged party's primary kind counts as added
  when that customer was created; a further role keeps its ``added_at``;
- a kind both hold: the survivor's role wins (its stage and history go on,
  the merged party's stay in it ends at the merge), and its attributes are
  settled like a same-kind merge's fields: each keeps the survivor's value,
  or takes the merged party's where the survivor has none, unless
  ``fieldChoices`` says otherwise (the primary kind's attributes by their
  camelCase name, a further role's as ``<kind>.<attribute>``);
- a row the merged party keeps as history only (a kind it converted from, a
  role it ended) comes along as history when the survivor has no row of
  that kind;
- a kind the survivor may not hold beside its own (the type is a primary
  kind only, ``secondary_role=False``, or either side's
  ``not_combinable_with`` names the other) refuses the whole merge with
  ``NOT_COMBINABLE``, naming the kinds, before anything is written.

The merged customer's own ``customer_role`` rows are not touched (it is
soft-deleted with them, ready for an undo). What the survivor's rows were is
kept in the merge record (:func:`RoleMerge.before_json`); the undo writes it
back (:func:`restore_roles`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from crmgraph.db import queries, writes
from crmgraph.db.engine import Database
from crmgraph.db.party_roles import CustomerTypes, is_held, uncombinable
from crmgraph.validation import Problem, UserInputError, camel

SURVIVOR = "SURVIVOR"
MERGED = "MERGED"
# a role row's own values, as a merge copies them and its undo restores them
VALUES = ("stage", "phase", "entered_at", "attributes", "added_at", "ended_at")
TIMES = ("entered_at", "added_at", "ended_at")


def pick(choice: str | None, mine: Any, theirs: Any) -> Any:
    """One settled field: ``MERGED`` takes theirs, ``SURVIVOR`` keeps mine,
    no choice keeps mine unless it is unset."""
    return theirs if choice == MERGED or (choice is None and mine is None) else mine


def settle_attributes(
    names: Mapping[str, str],
    choices: Mapping[str, str],
    mine: Mapping[str, Any],
    theirs: Mapping[str, Any],
) -> dict[str, Any]:
    """Typed attributes after a merge; ``names``: choice name -> attribute."""
    settled = dict(mine)
    for name, attribute in names.items():
        taken = pick(choices.get(name), mine.get(attribute), theirs.get(attribute))
        if taken is None:
            settled.pop(attribute, None)
        else:
            settled[attribute] = taken
    return settled


def role_choice_names(types: CustomerTypes, kind: str) -> dict[str, str]:
    """A further role's attributes as field choices: ``supplier.paymentTermsDays``."""
    descriptor = types.customer_type(kind)
    attributes = descriptor.attributes if descriptor else ()
    return {f"{camel(kind)}.{camel(a.name)}": a.name for a in attributes}


def held_roles(party: Mapping[str, Any], rows: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The roles a party holds, primary first, as role rows' values (the
    primary kind's attributes are the customer's own)."""
    primary = party["kind"]
    found = {primary: _values(rows[primary]) if primary in rows else {}}
    found[primary] |= {
        "attributes": queries.load_json(party["attributes"]),
        "added_at": party.get("created_at"),
        "ended_at": None,
    }
    for kind, row in rows.items():
        if kind != primary and is_held(row, primary):
            found[kind] = _values(row)
    return found


def _values(row: Mapping[str, Any]) -> dict[str, Any]:
    values = {name: row[name] for name in VALUES}
    values["attributes"] = queries.load_json(row["attributes"])
    return values


def _json_values(row: Mapping[str, Any]) -> dict[str, Any]:
    values = _values(row)
    return {n: v if n == "attributes" else writes.jsonable(v) for n, v in values.items()}


@dataclass
class RoleMerge:
    """The survivor's role rows a merge writes: ``after`` (kind -> values),
    ``before`` (kind -> its row then, None where it had none); ``gained``:
    kinds it holds now and did not; ``continued``: the merged party's kinds
    whose open stay goes on at the survivor; ``ended``: the survivor's kinds
    whose open stay ends (a history row the merged party's role replaces).
    ``primary_attributes``: the merged party's attributes of the survivor's
    primary kind (None: it does not hold it); ``choices``: field choice name
    -> attribute of each further role both hold."""

    primary_attributes: dict[str, Any] | None = None
    choices: dict[str, str] = field(default_factory=dict)
    before: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    after: dict[str, dict[str, Any]] = field(default_factory=dict)
    gained: list[str] = field(default_factory=list)
    continued: list[str] = field(default_factory=list)
    ended: list[str] = field(default_factory=list)

    def take(self, kind: str, values: dict[str, Any], previous: Any, gained: bool) -> None:
        """The survivor's row of ``kind`` becomes the merged party's ``values``."""
        self.after[kind] = values
        self.before[kind] = previous
        self.continued.append(kind)
        if gained:
            self.gained.append(kind)
            if previous is not None:
                self.ended.append(kind)

    def roles_written(self) -> list[str]:
        """The kinds whose role (not a history row) this merge writes."""
        return [k for k in self.after if k in self.gained or k not in self.continued]

    def before_json(self) -> dict[str, Any]:
        return {
            kind: None if row is None else _json_values(row) for kind, row in self.before.items()
        }

    def audited(self, primary: str) -> dict[str, list[Any]]:
        """What the merge changes of the survivor's roles (of ``primary``)."""
        return role_changes(primary, self.before, self.after)


def role_changes(
    primary: str,
    old: Mapping[str, Mapping[str, Any] | None],
    new: Mapping[str, Mapping[str, Any] | None],
) -> dict[str, list[Any]]:
    """``{field: [old, new]}`` of a party's role rows going from ``old`` to
    ``new`` (kind -> row, None: no row), named as ``addRole`` audits them
    (``roles.<kind>.stage``, typed attributes as ``<kind>.<attribute>``),
    and ``rolesGained``: the kinds held on one side only (a merge's gains,
    an undo's losses). A row held on neither side is history: not audited."""
    changes: dict[str, list[Any]] = {}
    gained, lost = [], []
    for kind in sorted(set(old) | set(new)):
        before, after = _held(kind, primary, old.get(kind)), _held(kind, primary, new.get(kind))
        if before is None and after is None:
            continue
        if (before is None) != (after is None):
            (gained if after is not None else lost).append(kind)
            stages = [row["stage"] if row else None for row in (before, after)]
            changes[f"roles.{kind}.stage"] = stages
        mine, theirs = (queries.load_json(row and row["attributes"]) for row in (before, after))
        for name in sorted(set(mine) | set(theirs)):
            if mine.get(name) != theirs.get(name):
                changes[f"{camel(kind)}.{camel(name)}"] = [mine.get(name), theirs.get(name)]
    if gained or lost:
        changes["rolesGained"] = [lost or None, gained or None]
    return changes


def _held(kind: str, primary: str, row: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """``row`` if it is a role the party holds, else None."""
    return row if row is not None and is_held({**row, "kind": kind}, primary) else None


def plan_roles(
    types: CustomerTypes,
    survivor: Mapping[str, Any],
    merged: Mapping[str, Any],
    rows: tuple[Mapping[str, Any], Mapping[str, Any]],
    choices: Mapping[str, str],
) -> RoleMerge:
    """What merging ``merged`` into ``survivor`` does to the survivor's role
    rows (``rows``: each party's role rows by kind); NOT_COMBINABLE when a
    kind it would gain may not join those it holds."""
    survivor_rows, merged_rows = rows
    theirs = held_roles(merged, merged_rows)
    mine = [k for k, row in survivor_rows.items() if is_held(row, survivor["kind"])]
    refuse(types, survivor["kind"], mine, [k for k in theirs if k not in mine])
    plan = RoleMerge()
    for kind, values in theirs.items():
        row = survivor_rows.get(kind)
        if kind == survivor["kind"]:  # settled with the survivor's fields
            plan.primary_attributes = values["attributes"]
        elif row is None or kind not in mine:
            plan.take(kind, values, row, gained=True)
        else:
            names = role_choice_names(types, kind)
            plan.choices |= names
            current = queries.load_json(row["attributes"])
            settled = settle_attributes(names, choices, current, values["attributes"])
            if settled != current:
                plan.after[kind] = {**_values(row), "attributes": settled}
                plan.before[kind] = row
    for kind, row in merged_rows.items():
        if kind not in theirs and kind not in survivor_rows:
            plan.take(kind, _values(row), None, gained=False)  # history only
    return plan


def refuse(types: CustomerTypes, primary: str, held: Sequence[str], gained: Sequence[str]) -> None:
    """NOT_COMBINABLE, naming the kinds, for each kind the survivor (of
    ``primary``, holding ``held``) cannot take on from the merged party (the
    kinds gained were held together by it already)."""
    problems = []
    for kind in gained:
        descriptor = types.customer_type(kind)
        if descriptor is not None and not descriptor.secondary_role:
            problems.append(
                f"{kind.upper()} is a primary kind only: it cannot become a further role "
                f"of the survivor, a {primary.upper()}"
            )
        problems.extend(
            f"a {kind.upper()} role may not be combined with {other.upper()}, "
            "which the survivor holds"
            for other in uncombinable(types, kind, held)
        )
    if problems:
        raise UserInputError(
            [Problem("mergedId", f"cannot merge: {text}", "NOT_COMBINABLE") for text in problems]
        )


async def write_roles(db: Database, survivor: int, plan: RoleMerge) -> None:
    """The survivor's role rows as ``plan`` says."""
    for kind, values in plan.after.items():
        await _put_row(db, survivor, kind, values, exists=plan.before[kind] is not None)


async def restore_roles(db: Database, survivor: int, before: Mapping[str, Any]) -> None:
    """Undo :func:`write_roles`: ``before`` is :meth:`RoleMerge.before_json`
    as the merge record keeps it."""
    for kind, row in before.items():
        if row is None:
            await db.fetch(
                "DELETE FROM customer_role WHERE customer = {} AND kind = {}", survivor, kind
            )
            continue
        values = {n: queries.read_timestamp(row[n]) if n in TIMES else row[n] for n in VALUES}
        await _put_row(db, survivor, kind, values, exists=True)


async def _put_row(
    db: Database, survivor: int, kind: str, values: Mapping[str, Any], *, exists: bool
) -> None:
    stored = {**values, "attributes": writes.dump_json(dict(values["attributes"] or {}))}
    if not exists:
        await writes.insert(db, "customer_role", {"customer": survivor, "kind": kind, **stored})
        return
    assignments = ", ".join(f"{name} = {{}}" for name in VALUES)
    await db.fetch(
        f"UPDATE customer_role SET {assignments} WHERE customer = {{}} AND kind = {{}}",
        *(stored[name] for name in VALUES),
        survivor,
        kind,
    )
