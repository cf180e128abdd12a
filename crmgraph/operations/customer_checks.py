"""The rules several customer writes share: the core fields, the attribute
inputs, the owner and team a customer is given, plugins' validation and the
screening of a new customer for duplicates."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pluggy

from crmgraph import input_checks
from crmgraph import validation as v
from crmgraph.access import CUSTOMER_ASSIGN
from crmgraph.customer_types import CustomerType
from crmgraph.db import writes
from crmgraph.db.engine import Database
from crmgraph.dedupe import matching
from crmgraph.dedupe.rules import BLOCK, duplicate_rule
from crmgraph.extension_points import CustomerWrite
from crmgraph.ids import encode_id
from crmgraph.input_checks import attribute_fields, forbidden_problem, guarded_problems
from crmgraph.operations.actor import Actor
from crmgraph.registry import Catalog
from crmgraph.validation import Errors, Problem, UserInputError

# customer columns its match keys are computed from (with the tax_id attribute)
MATCHED_FIELDS = frozenset({"name", "email", "phone"})

# input paths of the owner and team: their ID problems follow the party fields'
ASSIGNEE_PATHS = frozenset({"ownerId", "teamId"})

# likely duplicates a new customer's result lists at the most
DUPLICATES_SHOWN = 10


def leading_problems(problems: Sequence[Problem]) -> Errors:
    """The problems found decoding an input's IDs, bar the owner's and team's
    (:func:`customer_values` reports those after the party fields)."""
    return Errors([p for p in problems if p.field not in ASSIGNEE_PATHS])


def customer_values(
    actor: Actor, errors: Errors, fields: Mapping[str, Any], problems: Sequence[Problem]
) -> dict[str, Any]:
    """The core customer fields sent (``fields``: name, email, phone and the
    decoded ``owner`` and ``team``), checked; ``problems`` are the input's ID
    problems, of which the owner's and team's are reported here."""
    values = input_checks.party_fields(errors, dict(fields), actor.phone_region)
    errors.problems.extend(p for p in problems if p.field in ASSIGNEE_PATHS)
    for column in ("owner", "team"):
        if column in fields:
            values[column] = fields[column]
    return values


def foreign_attribute_inputs(
    errors: Errors, attributes: Mapping[str, Mapping[str, Any] | None], kind: str
) -> None:
    """An attribute input sent for another kind than the customer's."""
    for key, sent in attributes.items():
        if key != kind and sent is not None:
            errors.add(
                v.camel(key),
                f"{v.camel(key)} attributes do not apply to a customer of kind {kind.upper()}",
                "INVALID",
            )


def attribute_changes(
    kind: str, old: Mapping[str, Any], new: Mapping[str, Any]
) -> dict[str, list[Any]]:
    """The audit trail's [old, new] pairs of a kind's attributes (``client.segment``…):
    an attribute no longer set changes to None."""
    return writes.field_changes(
        attribute_fields(kind, dict(old)),
        {**attribute_fields(kind, dict.fromkeys(old)), **attribute_fields(kind, dict(new))},
    )


def guarded_attribute_problems(
    actor: Actor, catalog: Catalog, kind: str, sent: Mapping[str, Any], creating: bool
) -> list[Problem]:
    """FORBIDDEN for each guarded attribute sent that the actor may not write."""
    graphql_name = catalog.customer_type(kind).graphql_name
    return guarded_problems(actor.access, graphql_name, f"{v.camel(kind)}.", sent, creating)


async def plugin_validation(pm: pluggy.PluginManager, write: CustomerWrite) -> None:
    """Every plugin's ``crmgraph_validate_customer``, all problems collected."""
    problems = await input_checks.plugin_problems(pm, write)
    if problems:
        raise UserInputError(problems)


async def check_assignment(db: Database, actor: Actor, values: Mapping[str, Any]) -> None:
    """The owner and team exist, and an actor without customer.assign gives
    the customer only to themselves and their own teams."""
    owner, team = values.get("owner"), values.get("team")
    problems = []
    if owner is not None and not await writes.row_exists(db, "crm_user", owner):
        problems.append(Problem("ownerId", "user not found", "NOT_FOUND"))
    elif owner is not None and owner != actor.user_id and not actor.can(CUSTOMER_ASSIGN):
        problems.append(
            forbidden_problem("ownerId", "give a customer to another user", CUSTOMER_ASSIGN)
        )
    if team is not None and not await writes.row_exists(db, "team", team):
        problems.append(Problem("teamId", "team not found", "NOT_FOUND"))
    elif team is not None and team not in actor.team_ids and not actor.can(CUSTOMER_ASSIGN):
        problems.append(
            forbidden_problem("teamId", "give a customer to a team you are not in", CUSTOMER_ASSIGN)
        )
    if problems:
        raise UserInputError(problems)


async def live(db: Database, actor: Actor, pk: int, field: str = "id") -> dict[str, Any]:
    """The not-deleted customer a write applies to, if the actor may see it,
    read with its party lock held (a merged one is refused: MERGED)."""
    return await writes.live_customer(db, pk, field, actor.sees)


async def hold_live(db: Database, actor: Actor, pk: int, field: str = "id") -> None:
    """As :func:`live`, for a write that needs the guarantee and not the row
    (which may then be checked within the write's own statement)."""
    await writes.hold_live_customer(db, pk, field, actor.sees, actor.access.scope)


async def screen_new_customer(
    db: Database,
    actor: Actor,
    descriptor: CustomerType,
    values: Mapping[str, Any],
    attributes: Mapping[str, Any],
    allow_duplicate: bool,
    shown: list[matching.Candidate],
) -> matching.Probe:
    """Inside a create's transaction, before the insert: find who the new
    customer may already be, list those the actor may see in ``shown``, and
    under the type's ``block`` rule refuse the create (code DUPLICATE) while a
    candidate is STRONG, unless ``allow_duplicate``. Returns the probe, whose
    keys the new customer gets. One statement (under ``block`` on PostgreSQL,
    one more: the locks of its e-mail, phone and tax id)."""
    probe = matching.Probe(
        name=values.get("name"),
        email=values.get("email"),
        phone=values.get("phone"),
        tax_id=attributes.get("tax_id"),
        kind=descriptor.key,
    )
    region = actor.phone_region
    blocking = duplicate_rule(descriptor, actor.duplicate_rules) == BLOCK and not allow_duplicate
    if blocking:  # a concurrent create of the same party waits for this one
        await matching.lock_identifiers(db, probe, region)
    found = await matching.find_candidates(db, probe, limit=DUPLICATES_SHOWN, region=region)
    shown.extend(c for c in found if actor.sees(c.row))
    strong = [c for c in found if c.score >= matching.STRONG]
    if blocking and strong:
        raise UserInputError([Problem(None, blocked_message(strong, actor), "DUPLICATE")])
    return probe


def blocked_message(strong: Sequence[matching.Candidate], actor: Actor) -> str:
    """Names the blocking customers the actor may see; the others are only
    counted: the database must stay unique even across owners."""
    named = [
        f"{encode_id('Customer', c.customer_id)} (score {c.score:.2f}: "
        f"{', '.join(str(r) for r in c.reasons)})"
        for c in strong
        if actor.sees(c.row)
    ]
    hidden = len(strong) - len(named)
    parts = named + ([f"{hidden} customer(s) you may not see"] if hidden else [])
    return (
        f"likely the same party as an existing customer: {'; '.join(parts)}. "
        "Send allowDuplicate: true to create it anyway"
    )
