"""Planning the demo data set: every row it writes, in memory, from one seeded
``Random`` drawn in a fixed order (so the plan depends only on the seed, the
catalog and ``now``).

Generic over the catalog: customers of every registered type, each walked
along its own declared lifecycle (conversions included) with the stage
history the API would have written, typed attribute values drawn from the
descriptor (:mod:`.values`), and contacts, interactions, needs, relationships,
notes and tasks around them. A handful of parties hold further roles
(:data:`ROLE_PLANS`: a client who is also a guarantor, a supplier who is also
a client…), the newest of their kind, so the first page of ``customers``
(newest first) shows them.
"""

from __future__ import annotations

import dataclasses
import datetime
import itertools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from crmgraph.customer_types import Attribute, CustomerType, Phase, Transition
from crmgraph.db.writes import dump_json
from crmgraph.demo.plan import DemoPlan, Row
from crmgraph.demo.values import DATE_HINTS, PAST_DAYS, TEXT_HINTS, Party, ascii_slug, fit, within
from crmgraph.demo.words import (
    CHANNEL_WEIGHTS,
    GENERIC_SUBJECTS,
    LEGAL_FORMS,
    LOCALE_WEIGHTS,
    LOCALES,
    NEED_KINDS,
    NEED_PRIORITIES,
    NEED_STATUSES,
    NOTES,
    OUTCOMES,
    PERSONAL_DOMAINS,
    REASONS,
    STAFF_DOMAIN,
    SUBJECTS_BY_CHANNEL,
    TASK_TITLES,
    USER_ROLES,
    Locale,
    Rng,
)
from crmgraph.operations.new_customers import HeldRole, NewCustomer, StageEntry
from crmgraph.registry import Catalog

HISTORY_DAYS = 730
MAX_TRANSITIONS = 8
KEEP_WALKING = 0.7
# (primary kind, further roles): parties that also hold other roles, each
# given to the newest customer of that kind not given any yet (a plan whose
# kinds the catalog lacks, or may not combine, is left out). No client is the
# primary of one: the documentation's examples take the newest clients as
# their own subjects (an addRole of a guarantor role, a merge of two).
ROLE_PLANS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("supplier", ("client", "guarantor")),
    ("guarantor", ("client",)),
    ("employee", ("beneficiary",)),
    ("beneficiary", ("client",)),
    ("prospect", ("supplier",)),
)


@dataclass(frozen=True)
class Journey:
    moves: list[StageEntry]  # who made each is drawn when the history is written down
    transitions: int  # a conversion is one transition that writes two moves


class DemoGenerator:
    """Plans the rows; every random choice comes from one seeded ``Random`` in
    a fixed order, which is what makes the data set reproducible."""

    def __init__(self, catalog: Catalog, rng: Rng, now: datetime.datetime) -> None:
        self.catalog = catalog
        self.rng = rng
        self.now = now
        self.emails: set[str] = set()
        self.out = DemoPlan()
        self.owners: list[int] = []
        self.parties: list[Party] = []  # each customer's, by position
        weights = [CHANNEL_WEIGHTS.get(channel, 1) for channel in catalog.channels]
        self.channel_cum_weights = list(itertools.accumulate(weights))

    def plan(self, customers: int) -> DemoPlan:
        self.add_users()
        types = self.catalog.customer_types
        for index in range(customers):
            # The first customer of each type never converts, so every type shows up.
            descriptor = types[index] if index < len(types) else self.rng.choice(types)
            self.add_customer(index, descriptor, may_convert=index >= len(types))
        self.add_relationships()
        # last, so their random draws leave every earlier row as it was
        self.add_teamwork()
        self.add_roles()
        return self.out

    # -- time -------------------------------------------------------------

    def moment(
        self, start: datetime.datetime, end: datetime.datetime | None = None
    ) -> datetime.datetime:
        span = ((end or self.now) - start).total_seconds()
        return start + datetime.timedelta(seconds=self.rng.uniform(0, max(span, 0)))

    def moments(self, start: datetime.datetime, count: int) -> list[datetime.datetime]:
        return sorted(self.moment(start) for _ in range(count))

    def days_ago(self, low: int, high: int) -> datetime.datetime:
        return self.now - datetime.timedelta(days=self.rng.uniform(low, high))

    # -- people and companies ---------------------------------------------

    def locale(self) -> Locale:
        return self.rng.choices(LOCALES, weights=LOCALE_WEIGHTS)[0]

    def person_name(self, locale: Locale) -> str:
        surnames = self.rng.sample(locale.last_names, locale.surnames)
        return " ".join((self.rng.choice(locale.first_names), *surnames))

    def company_name(self, locale: Locale) -> str:
        surname, surname2 = self.rng.sample(locale.last_names, 2)
        return self.rng.choice(locale.company_patterns).format(
            word=self.rng.choice(locale.company_words),
            sector=self.rng.choice(locale.sectors),
            surname=surname,
            surname2=surname2,
        )

    def party(self, descriptor: CustomerType) -> Party:
        locale = self.locale()
        if self.rng.random() < person_share(descriptor):
            name = self.person_name(locale)
            return Party(name, locale, True, self.rng.choice(PERSONAL_DOMAINS))
        name = self.company_name(locale)
        slug = "-".join(p for p in ascii_slug(name).split("-") if p not in LEGAL_FORMS)
        return Party(name, locale, False, f"{slug}.example")

    def email(self, local: str, domain: str) -> str:
        local = local.strip(".") or "info"
        candidate, n = f"{local}@{domain}", 1
        while candidate in self.emails:
            n += 1
            candidate = f"{local}{n}@{domain}"
        self.emails.add(candidate)
        return candidate

    def person_email(self, name: str, domain: str) -> str:
        first, *rest = ascii_slug(name, " ").split()
        last = rest[0] if rest else "x"
        local = self.rng.choice((f"{first}.{last}", f"{first[0]}{last}", f"{first}{last[0]}"))
        return self.email(local, domain)

    def party_email(self, party: Party) -> str:
        if party.is_person:
            return self.person_email(party.name, party.domain)
        return self.email(self.rng.choice(party.locale.mailboxes), party.domain)

    def party_phone(self, party: Party) -> str:
        mobile_share = 0.85 if party.is_person else 0.3
        make = party.locale.mobile if self.rng.random() < mobile_share else party.locale.landline
        return make(self.rng)

    # -- users --------------------------------------------------------------

    def add_users(self) -> None:
        for index, role in enumerate(USER_ROLES):
            name = self.person_name(self.locale())
            self.out.users.append(
                {
                    "name": name,
                    "email": self.person_email(name, STAFF_DOMAIN),
                    "role": role,
                    "created_at": self.days_ago(HISTORY_DAYS + 30, HISTORY_DAYS + 400),
                }
            )
            if role != "viewer":
                self.owners.append(index)

    # -- customers ------------------------------------------------------------

    def add_customer(self, index: int, descriptor: CustomerType, may_convert: bool) -> None:
        party = self.party(descriptor)
        self.parties.append(party)
        created = self.days_ago(0, HISTORY_DAYS)
        owner = self.rng.choice(self.owners) if self.rng.random() < 0.85 else None
        journey = self.walk(descriptor, created, may_convert)
        kinds = list(dict.fromkeys(move.kind for move in journey.moves))
        attributes: dict[str, Any] = {}
        for kind in kinds:  # conversion keeps the earlier type's attributes, as the API does
            attributes |= self.attributes(self.descriptor(kind), party)
        version, updated = 1 + journey.transitions, journey.moves[-1].at
        if self.rng.random() < 0.3:  # edited later (new phone, attribute update, ...)
            version, updated = version + self.rng.randint(1, 3), self.moment(updated)
        email = self.party_email(party) if self.rng.random() < 0.85 else None
        phone = self.party_phone(party) if self.rng.random() < 0.8 else None
        self.out.customers.append(
            NewCustomer(
                kind=journey.moves[-1].kind,
                fields={"name": party.name, "email": email, "phone": phone, "owner": owner},
                attributes=attributes,
                history=self.history(journey, owner),
                version=version,
                created_at=created,
                updated_at=updated,
            )
        )
        contacts = self.add_contacts(index, party, created)
        self.add_interactions(index, created, contacts, first_paying_move(journey, self.catalog))
        self.add_needs(index, created)

    def descriptor(self, kind: str) -> CustomerType:
        descriptor = self.catalog.customer_type(kind)
        assert descriptor is not None
        return descriptor

    def walk(
        self, descriptor: CustomerType, created: datetime.datetime, may_convert: bool
    ) -> Journey:
        """The stage history of a route, dated between creation and now, written
        the way the lifecycle engine writes it (a conversion adds a landing row
        in the target type)."""
        kind, stage = descriptor.key, descriptor.lifecycle.initial
        moves = [StageEntry(kind, stage, created, "created")]
        current = {kind: stage}
        route = self.route(descriptor, may_convert)
        for (kind, transition), at in zip(route, self.moments(created, len(route)), strict=True):
            reason = self.maybe(0.4, REASONS)
            moves.append(
                StageEntry(kind, transition.to_stage, at, reason, from_stage=current[kind])
            )
            current[kind] = transition.to_stage
            if transition.convert_to:
                target = self.descriptor(transition.convert_to)
                landing = transition.convert_stage or target.lifecycle.initial
                why = reason or f"converted from {kind}"
                previous = current.get(target.key)
                moves.append(StageEntry(target.key, landing, at, why, from_stage=previous))
                current[target.key] = landing
        return Journey(moves, len(route))

    def route(self, descriptor: CustomerType, may_convert: bool) -> list[tuple[str, Transition]]:
        """A random walk along declared transitions from the initial stage,
        stopping anywhere (most parties sit somewhere in the middle)."""
        kind, stage = descriptor.key, descriptor.lifecycle.initial
        route: list[tuple[str, Transition]] = []
        while len(route) < MAX_TRANSITIONS and self.rng.random() < KEEP_WALKING:
            options = self.options(kind, stage, may_convert)
            if not options:
                break
            # Endings are possible, not the norm.
            weights = [1 if self.ends(kind, t) else 4 for t in options]
            transition = self.rng.choices(options, weights=weights)[0]
            route.append((kind, transition))
            stage = transition.to_stage
            if transition.convert_to:
                target = self.descriptor(transition.convert_to)
                kind, stage = target.key, transition.convert_stage or target.lifecycle.initial
        return route

    def ends(self, kind: str, transition: Transition) -> bool:
        if transition.convert_to:  # leaves one type to begin in another
            return False
        stage = self.descriptor(kind).lifecycle.stage(transition.to_stage)
        return stage is not None and stage.phase is Phase.ENDED

    def options(self, kind: str, stage: str, may_convert: bool) -> list[Transition]:
        def usable(t: Transition) -> bool:
            if t.convert_to is None:
                return True
            target = self.catalog.customer_type(t.convert_to)
            landing = t.convert_stage or (target.lifecycle.initial if target else "")
            return (
                may_convert and target is not None and target.lifecycle.stage(landing) is not None
            )

        return [t for t in self.descriptor(kind).lifecycle.transitions_from(stage) if usable(t)]

    def history(self, journey: Journey, owner: int | None) -> list[StageEntry]:
        """The journey's moves, each made by the owner or, now and then, by
        someone else (or nobody: an automatic move). ``by`` and the owner are
        positions in the plan's users until it is written."""
        return [
            dataclasses.replace(
                move,
                by=owner if self.rng.random() < 0.7 else self.rng.choice([None, *self.owners]),
            )
            for move in journey.moves
        ]

    # -- attributes -------------------------------------------------------------

    def attributes(self, descriptor: CustomerType, party: Party) -> dict[str, Any]:
        values = {}
        for attr in descriptor.attributes:
            if attr.required or self.rng.random() < 0.85:
                values[attr.name] = self.attribute(attr, party)
        return values

    def attribute(self, attr: Attribute, party: Party) -> Any:
        """A value in the JSON form the API stores (Decimal as str, date as ISO)."""
        if attr.choices:
            return self.rng.choice(attr.choices)
        if attr.type is bool:
            return self.rng.random() < 0.5
        if attr.type is datetime.date:
            return self.date_value(attr.name).isoformat()
        if attr.type in (int, float, Decimal):
            return self.number_value(attr)
        return fit(self.text_value(attr.name, party), attr.max_length)

    def text_value(self, name: str, party: Party) -> str:
        for pattern, make in TEXT_HINTS:
            if re.search(pattern, name):
                return make(self.rng, party)
        return self.rng.choice(NOTES)

    def date_value(self, name: str) -> datetime.date:
        low, high = next((span for p, span in DATE_HINTS if re.search(p, name)), PAST_DAYS)
        return self.now.date() + datetime.timedelta(days=self.rng.randint(low, high))

    def number_value(self, attr: Attribute) -> int | float | str:
        """A number within the attribute's bounds (exact Decimals, whichever
        of int, float or Decimal the plugin wrote), rounded as the type
        stores it and kept within the bounds after rounding."""
        low, high = attr.min_value, attr.max_value
        if attr.type is int and low is not None and high is not None:
            return self.rng.randint(math.ceil(low), math.floor(high))
        if low is not None and high is not None:
            value = self.rng.uniform(float(low), float(high))
        else:
            # Open-ended amounts (revenue, salary, value) span orders of magnitude.
            magnitude = round(10 ** self.rng.uniform(3, 6.5), -1)
            value = float(low) + magnitude if low is not None else float(high or 0) - magnitude
        if attr.type is int:
            return within(Decimal(math.floor(value)), low, high, Decimal(1), int)
        if attr.type is float:
            return within(Decimal(repr(round(value, 2))), low, high, Decimal("0.01"), float)
        return within(Decimal(repr(value)), low, high, Decimal("0.01"), str)

    # -- contacts, interactions, needs -----------------------------------------

    def add_contacts(self, index: int, party: Party, created: datetime.datetime) -> list[int]:
        weights = (4, 4, 2, 0, 0) if party.is_person else (1, 3, 3, 2, 1)
        count = self.rng.choices(range(5), weights=weights)[0]
        positions = []
        for slot in range(count):
            added = self.moment(created, min(self.now, created + datetime.timedelta(days=60)))
            name = self.person_name(party.locale)
            domain = party.domain if not party.is_person else self.rng.choice(PERSONAL_DOMAINS)
            positions.append(len(self.out.contacts))
            self.out.contacts.append(
                {
                    "customer": index,
                    "name": name,
                    "email": self.person_email(name, domain) if self.rng.random() < 0.85 else None,
                    "phone": party.locale.mobile(self.rng) if self.rng.random() < 0.7 else None,
                    "job_title": None
                    if party.is_person
                    else self.rng.choice(party.locale.job_titles),
                    "is_primary": slot == 0,
                    "notes": self.rng.choice(NOTES) if self.rng.random() < 0.2 else None,
                    "created_at": added,
                    "updated_at": self.moment(added) if self.rng.random() < 0.3 else added,
                }
            )
        return positions

    def channel(self) -> str:
        return self.rng.choices(self.catalog.channels, cum_weights=self.channel_cum_weights)[0]

    def add_interactions(
        self,
        index: int,
        created: datetime.datetime,
        contacts: list[int],
        bought_by: datetime.datetime | None,
    ) -> None:
        times = self.moments(created, self.rng.randint(0, 12))
        # A customer in a retention or expansion phase has bought something
        # before getting there (the client lifecycle's guards insist on it).
        first_order = self.moment(created, bought_by) if bought_by else None
        if first_order is not None:
            times = sorted([*times, first_order])
        for at in times:
            purchase = at is first_order or self.rng.random() < 0.2
            self.out.interactions.append(self.interaction(index, at, contacts, purchase))

    def interaction(
        self, index: int, at: datetime.datetime, contacts: list[int], purchase: bool
    ) -> Row:
        channel = self.channel()
        subject = self.rng.choice(SUBJECTS_BY_CHANNEL.get(channel, GENERIC_SUBJECTS))
        satisfaction = self.rng.choices(range(1, 6), weights=(1, 1, 2, 4, 4))[0]
        return {
            "customer": index,
            "contact": self.rng.choice(contacts) if contacts and self.rng.random() < 0.6 else None,
            "channel": channel,
            "direction": self.rng.choice(("INBOUND", "OUTBOUND")),
            "occurred_at": at,
            "subject": f"Order #{self.rng.randint(10000, 99999)}" if purchase else subject,
            "notes": self.maybe(0.3, NOTES),
            "outcome": "order_placed" if purchase else self.maybe(0.5, OUTCOMES),
            "satisfaction": satisfaction if self.rng.random() < 0.4 else None,
            "amount": Decimal(self.rng.randint(1_500, 2_500_000)) / 100 if purchase else None,
            "created_at": at,
        }

    def maybe(self, share: float, pool: Sequence[str]) -> str | None:
        return self.rng.choice(pool) if self.rng.random() < share else None

    def add_needs(self, index: int, created: datetime.datetime) -> None:
        for _ in range(self.rng.randint(0, 3)):
            self.out.needs.append(self.need(index, self.moment(created)))

    def need(self, index: int, opened: datetime.datetime) -> Row:
        kind = self.rng.choice(NEED_KINDS)
        status = self.rng.choices(NEED_STATUSES, weights=(4, 3, 2, 1))[0]
        due = opened.date() + datetime.timedelta(days=self.rng.randint(7, 180))
        return {
            "customer": index,
            "title": kind.title,
            "description": self.maybe(0.4, NOTES),
            "category": kind.category,
            "consumption_type": kind.consumption_type,
            "volume": float(self.rng.randint(*kind.volume)),
            "unit": kind.unit,
            "priority": self.rng.choices(NEED_PRIORITIES, weights=(2, 4, 3, 1))[0],
            "status": status,
            "due_date": due if self.rng.random() < 0.6 else None,
            "created_at": opened,
            "updated_at": opened if status == "OPEN" else self.moment(opened),
        }

    # -- team work ------------------------------------------------------------

    def add_teamwork(self) -> None:
        """Notes by the owner (some mentioning a colleague as @e-mail) and tasks
        assigned to them, on a share of the owned customers."""
        users = self.out.users
        for index, customer in enumerate(self.out.customers):
            owner = customer.fields["owner"]
            if owner is None:
                continue
            created = customer.created_at
            if self.rng.random() < 0.25:
                at = self.moment(created)
                body = self.rng.choice(NOTES)
                colleague = self.rng.choice([o for o in self.owners if o != owner])
                if self.rng.random() < 0.5:
                    body = f"{body} @{users[colleague]['email']}"
                    self.out.note_mentions.append(
                        {"note": len(self.out.notes), "mentioned": colleague}
                    )
                self.out.notes.append({
                    "customer": index, "author": owner, "body": body, "version": 1,
                    "created_at": at, "updated_at": at, "deleted_at": None,
                })  # fmt: skip
            if self.rng.random() < 0.2:
                at = self.moment(created)
                status = self.rng.choices(
                    ("OPEN", "IN_PROGRESS", "DONE", "CANCELLED"), (4, 2, 3, 1)
                )[0]
                done = self.moment(at) if status == "DONE" else None
                due = at + datetime.timedelta(days=self.rng.randint(1, 30))
                self.out.tasks.append({
                    "customer": index, "need": None, "title": self.rng.choice(TASK_TITLES),
                    "description": None, "due_at": due,
                    "assignee": owner, "created_by": owner, "status": status, "completed_at": done,
                    "version": 1, "created_at": at, "updated_at": done or at,
                })  # fmt: skip

    # -- further roles ------------------------------------------------------------

    def add_roles(self) -> None:
        """Each of :data:`ROLE_PLANS` the catalog can hold: the newest party of
        its primary kind not yet given roles takes on each further role as
        ``addRole`` does (its kind's first stage, drawn attributes, a
        ``role added`` entry after its other history, a version each)."""
        customers = self.out.customers
        newest_first = sorted(range(len(customers)), key=lambda i: customers[i].created_at)[::-1]
        taken: set[int] = set()
        for primary, kinds in ROLE_PLANS:
            if not self.may_combine(primary, kinds):
                continue
            index = next(
                (i for i in newest_first if customers[i].kind == primary and i not in taken),
                None,
            )
            if index is None:
                continue
            taken.add(index)
            customer = customers[index]
            for kind in kinds:
                customer = self.with_role(customer, self.parties[index], self.descriptor(kind))
            customers[index] = customer

    def may_combine(self, primary: str, kinds: Sequence[str]) -> bool:
        held = [primary, *kinds]
        found = [self.catalog.customer_type(k) for k in held]
        if any(d is None for d in found) or len(set(held)) < len(held):
            return False
        return all(d.secondary_role or d.key == primary for d in found if d is not None) and all(
            a.combinable(b.key) for a in found for b in found if a and b and a is not b
        )

    def with_role(
        self, customer: NewCustomer, party: Party, descriptor: CustomerType
    ) -> NewCustomer:
        """``customer`` holding a further role of ``descriptor``'s kind."""
        if any(entry.kind == descriptor.key for entry in customer.history):
            return customer  # a type it has been: history, not a role to add
        history = customer.history
        at = self.moment(max(entry.at for entry in history))
        owner = customer.fields["owner"]
        entry = StageEntry(descriptor.key, descriptor.lifecycle.initial, at, "role added", owner)
        role = HeldRole(self.attributes(descriptor, party), at)
        return dataclasses.replace(
            customer,
            history=[*history, entry],
            held={**customer.held, descriptor.key: role},
            version=customer.version + 1,
            updated_at=max(at, customer.updated_at or at),
        )

    # -- relationships ------------------------------------------------------------

    def add_relationships(self) -> None:
        customers = self.out.customers
        seen: set[tuple[int, int, str]] = set()
        for kind in self.catalog.relationship_kinds:
            sources = members(customers, kind.from_kinds)
            targets = members(customers, kind.to_kinds)
            if not sources or not targets:
                continue
            for _ in range(max(1, len(customers) // 40)):
                source, target = self.rng.choice(sources), self.rng.choice(targets)
                if source == target or (source, target, kind.key) in seen:
                    continue
                seen.add((source, target, kind.key))
                start = max(customers[source].created_at, customers[target].created_at)
                self.out.relationships.append(
                    {
                        "from_customer": source,
                        "to_customer": target,
                        "kind": kind.key,
                        "attributes": dump_json({}),
                        "created_at": self.moment(start),
                    }
                )


PAYING_PHASES = (Phase.RETENTION, Phase.EXPANSION)


def first_paying_move(journey: Journey, catalog: Catalog) -> datetime.datetime | None:
    """When the customer first moved into a stage of a phase where customers
    pay (starting in one, like an address-book entry, does not count)."""
    for move in journey.moves[1:]:
        descriptor = catalog.customer_type(move.kind)
        stage = descriptor.lifecycle.stage(move.stage) if descriptor else None
        if stage is not None and stage.phase in PAYING_PHASES:
            return move.at
    return None


def members(customers: list[NewCustomer], kinds: tuple[str, ...]) -> list[int]:
    """Positions of customers of the given kinds (any kind when none are named)."""
    return [i for i, row in enumerate(customers) if not kinds or row.kind in kinds]


def person_share(descriptor: CustomerType) -> float:
    """How many of a type's parties are people rather than organisations.
    Descriptors do not say, so guess from their attributes and description."""
    names = " ".join(attr.name for attr in descriptor.attributes)
    if re.search(r"birth|hire|relation|gender|surname", names):
        return 0.95
    if re.search(r"\bperson\b", descriptor.description.lower()):
        return 0.9
    return 0.25
