"""Linking customers with a relationship kind a plugin declares, and
unlinking them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pluggy

from crmgraph.customer_types import RelationshipKind
from crmgraph.db import queries, writes
from crmgraph.db.engine import Database
from crmgraph.dedupe.merge_rows import RELATIONSHIP_ENDS
from crmgraph.ids import encode_id
from crmgraph.operations import roles
from crmgraph.operations.actor import Actor
from crmgraph.operations.customer_checks import live
from crmgraph.operations.runner import Then, nothing, run_write
from crmgraph.registry import Catalog
from crmgraph.validation import Errors, Problem, UserInputError


@dataclass
class NewLink:
    """Link customer ``from_pk`` to ``to_pk`` with relationship ``kind``."""

    from_pk: int
    to_pk: int
    kind: str
    problems: Sequence[Problem] = ()


@dataclass
class Unlink:
    """Remove relationship ``pk``."""

    pk: int
    problems: Sequence[Problem] = ()


def link_problems(catalog: Catalog, errors: Errors, link: NewLink) -> RelationshipKind | None:
    """The declared kind of ``link``; an unknown kind or a self-link is a problem."""
    kind = catalog.relationship_kind(link.kind)
    if kind is None:
        known = ", ".join(k.key for k in catalog.relationship_kinds) or "none"
        errors.add(
            "kind", f"unknown relationship kind {link.kind!r} (known: {known})", "INVALID_CHOICE"
        )
    if link.from_pk and link.from_pk == link.to_pk:
        errors.add("toId", "a customer cannot be linked to itself", "INVALID")
    return kind


async def party_problems(
    db: Database, kind: RelationshipKind, source: dict[str, Any], target: dict[str, Any]
) -> list[Problem]:
    """Each end's kind is one the relationship allows; not linked so already."""
    problems = []
    for path, party, allowed in (
        ("fromId", source, kind.from_kinds),
        ("toId", target, kind.to_kinds),
    ):
        # any role the party holds will do (crmgraph.operations.roles)
        if allowed and not set(allowed) & set(await roles.held_kinds(db, party)):
            problems.append(
                Problem(
                    path,
                    f"a {kind.key} relationship needs {path[:-2]} to be one of "
                    f"{', '.join(a.upper() for a in allowed)}, "
                    f"not {party['kind'].upper()}",
                    "INVALID",
                )
            )
    duplicate = await db.fetch(
        "SELECT id FROM relationship WHERE from_customer = {} AND to_customer = {} AND kind = {}",
        source["id"],
        target["id"],
        kind.key,
    )
    if duplicate:
        problems.append(Problem("kind", "these customers are already linked so", "DUPLICATE"))
    return problems


async def link_customers(
    db: Database,
    catalog: Catalog,
    pm: pluggy.PluginManager,
    actor: Actor,
    link: NewLink,
    *,
    then: Then = nothing,
) -> int:
    """Link two customers with a declared relationship kind; the new
    relationship's pk."""
    from_pk, to_pk = link.from_pk, link.to_pk
    errors = Errors(list(link.problems))
    kind = link_problems(catalog, errors, link)

    async def work() -> int:
        assert kind is not None  # else a problem above
        await writes.lock_parties(db, [from_pk, to_pk])  # both, in id order
        source = await live(db, actor, from_pk, "fromId")
        target = await live(db, actor, to_pk, "toId")
        problems = await party_problems(db, kind, source, target)
        if problems:
            raise UserInputError(problems)
        rel = await writes.insert(
            db,
            "relationship",
            {
                "from_customer": from_pk,
                "to_customer": to_pk,
                "kind": kind.key,
                "attributes": "{}",
                "created_at": writes.now(),
            },
        )
        ends = {"fromId": encode_id("Customer", from_pk), "toId": encode_id("Customer", to_pk)}
        await writes.record_change(
            db,
            "relationship.created",
            ("Relationship", rel),
            from_pk,
            writes.field_changes(None, {"kind": kind.key, **ends}),
            {"relationshipId": encode_id("Relationship", rel), "kind": kind.key, **ends},
        )
        return rel

    return await run_write(db, actor, work, then, problems=errors.problems)


async def unlink_customers(
    db: Database,
    catalog: Catalog,
    pm: pluggy.PluginManager,
    actor: Actor,
    unlink: Unlink,
    *,
    then: Then = nothing,
) -> int:
    """Remove a relationship between two customers, visible when either is."""
    pk = unlink.pk

    async def work() -> int:
        link = await writes.locked_row(db, "relationship", pk, RELATIONSHIP_ENDS)
        ends = [link["from_customer"], link["to_customer"]] if link is not None else []
        parties = await queries.customers_by_ids(db, ends) if ends else []
        # visible when either party is, as for node(id:)
        if link is None or not any(actor.sees(party) for party in parties):
            raise UserInputError.single("id", "relationship not found", "NOT_FOUND")
        await db.fetch("DELETE FROM relationship WHERE id = {}", pk)
        gone = {
            "kind": link["kind"],
            "fromId": encode_id("Customer", link["from_customer"]),
            "toId": encode_id("Customer", link["to_customer"]),
        }
        await writes.record_change(
            db,
            "relationship.deleted",
            ("Relationship", pk),
            link["from_customer"],
            {field: [value, None] for field, value in gone.items()},
            {"relationshipId": encode_id("Relationship", pk), "kind": link["kind"]},
        )
        return pk

    return await run_write(db, actor, work, then, problems=unlink.problems)
