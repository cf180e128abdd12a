"""A realistic, deterministic demo data set: customers of every registered
type in stages of their lifecycles, with contacts, interactions and needs.

Generic over the catalog, so a partner's customer type gets demo customers
too. Rows are inserted in batches (multi-row INSERTs) inside one transaction.
"""

from __future__ import annotations

import datetime
import random
from collections import deque
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from crmgraph.customer_types import Attribute, CustomerType
from crmgraph.db.engine import Database
from crmgraph.db.writes import dump_json
from crmgraph.registry import Catalog

BATCH = 400  # rows per INSERT: well under SQLite's bound-parameter limit

FIRST_NAMES = (
    "Ana", "Lucía", "Carmen", "Javier", "Miguel", "Sofía", "Pablo", "Elena", "Diego", "Marta",
    "James", "Olivia", "Noah", "Emma", "Liam", "Ava", "Ethan", "Mia", "Lucas", "Isabel",
)  # fmt: skip
LAST_NAMES = (
    "García", "Fernández", "López", "Martínez", "Sánchez", "Pérez", "Gómez", "Ruiz", "Díaz",
    "Moreno", "Smith", "Johnson", "Brown", "Taylor", "Wilson", "Clark", "Lewis", "Walker",
)  # fmt: skip
COMPANY_WORDS = (
    "Acme", "Ibérica", "Atlántico", "Nova", "Solar", "Delta", "Andes", "Boreal", "Vértice",
    "Pioneer", "Summit", "Harbor", "Cobalt", "Meridian", "Orion", "Cedro", "Lumen", "Norte",
)  # fmt: skip
COMPANY_SUFFIXES = ("S.L.", "S.A.", "Ltd", "Inc.", "Group", "Partners", "Logística", "Foods")
SUBJECTS = (
    "Follow-up call", "Quote requested", "Product demo", "Complaint about delivery",
    "Renewal discussion", "Invoice question", "Visit to the store", "Newsletter reply",
    "Order placed", "Support ticket", "Pedido urgente", "Reunión de seguimiento",
)  # fmt: skip
OUTCOMES = ("resolved", "quote_sent", "order_won", "no_answer", "escalated", "follow_up")
NEED_TITLES = (
    "Monthly supply of packaging", "Fleet insurance", "Office furniture", "Cloud storage",
    "Spare parts", "Training for staff", "Suministro de café", "Maintenance contract",
)  # fmt: skip
NEED_CATEGORIES = ("supplies", "services", "software", "logistics", "finance")
UNITS = ("units", "kg", "hours", "licences", "m3")
ROLES = ("admin", "manager", "agent", "agent", "agent", "agent", "viewer", "manager")
RELATIONSHIP_FALLBACK = "refers"


@dataclass(frozen=True)
class DemoSummary:
    users: int
    customers: int
    contacts: int
    interactions: int
    needs: int
    relationships: int
    stage_changes: int

    def __str__(self) -> str:
        return (
            f"{self.customers} customers, {self.contacts} contacts, "
            f"{self.interactions} interactions, {self.needs} needs, "
            f"{self.relationships} relationships, {self.users} users"
        )


async def has_data(db: Database) -> bool:
    return bool(await db.fetch("SELECT id FROM customer LIMIT 1"))


async def insert_many(db: Database, table: str, rows: list[dict[str, Any]]) -> list[int]:
    """Multi-row INSERT in batches; returns the new ids in row order."""
    ids: list[int] = []
    if not rows:
        return ids
    columns = list(rows[0])
    row_marks = "(" + ", ".join("{}" for _ in columns) + ")"
    for start in range(0, len(rows), BATCH):
        chunk = rows[start : start + BATCH]
        args = [row[c] for row in chunk for c in columns]
        result = await db.fetch(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
            f"{', '.join(row_marks for _ in chunk)} RETURNING id",
            *args,
        )
        # RETURNING order follows insertion order on both engines for one statement
        ids.extend(sorted(int(r["id"]) for r in result))
    return ids


class DemoGenerator:
    def __init__(self, catalog: Catalog, seed: int, now: datetime.datetime) -> None:
        self.catalog = catalog
        self.rng = random.Random(seed)
        self.now = now
        self.used_emails: set[str] = set()

    def when(self, max_days: int = 730) -> datetime.datetime:
        return self.now - datetime.timedelta(seconds=self.rng.randint(60, max_days * 86400))

    def person(self) -> str:
        return f"{self.rng.choice(FIRST_NAMES)} {self.rng.choice(LAST_NAMES)}"

    def company(self) -> str:
        words = self.rng.sample(COMPANY_WORDS, 2)
        return f"{words[0]} {words[1]} {self.rng.choice(COMPANY_SUFFIXES)}"

    def email(self, name: str, domain: str) -> str:
        local = "".join(ch for ch in name.lower() if ch.isascii() and ch.isalnum())[:20] or "info"
        candidate, n = f"{local}@{domain}", 1
        while candidate in self.used_emails:
            n += 1
            candidate = f"{local}{n}@{domain}"
        self.used_emails.add(candidate)
        return candidate

    def phone(self) -> str:
        if self.rng.random() < 0.6:  # Spanish mobiles (6xx) and Madrid/Barcelona landlines
            prefix = self.rng.choice(("6", "91", "93"))
            digits = 9 - len(prefix)
            return f"+34{prefix}{self.rng.randint(10 ** (digits - 1), 10**digits - 1)}"
        area = self.rng.choice((212, 415, 617, 312, 206, 512))
        return f"+1{area}{self.rng.randint(200, 999)}{self.rng.randint(1000, 9999)}"

    def attribute(self, attr: Attribute) -> Any:
        if self.rng.random() < 0.15 and not attr.required:
            return None
        if attr.choices:
            return self.rng.choice(attr.choices)
        low = attr.min_value if attr.min_value is not None else 0
        high = attr.max_value if attr.max_value is not None else low + 100_000
        if attr.type is Decimal:
            return str(Decimal(str(self.rng.uniform(low, high))).quantize(Decimal("0.01")))
        if attr.type is int:
            return self.rng.randint(int(low), int(high))
        if attr.type is float:
            return round(self.rng.uniform(low, high), 2)
        if attr.type is bool:
            return self.rng.random() < 0.5
        if attr.type is datetime.date:
            return (
                self.now.date() - datetime.timedelta(days=self.rng.randint(0, 1500))
            ).isoformat()
        text = f"{attr.name.replace('_', ' ').title()} {self.rng.randint(1, 999)}"
        return text[: attr.max_length or 200]

    def stage_path(self, descriptor: CustomerType) -> list[str]:
        """A walk from the initial stage along declared transitions (no
        conversions), stopping at a random point."""
        lifecycle = descriptor.lifecycle
        path = [lifecycle.initial]
        reachable = self._reachable(descriptor)
        target = self.rng.choice(sorted(reachable))
        return path + reachable[target][1:] if target != lifecycle.initial else path

    def _reachable(self, descriptor: CustomerType) -> dict[str, list[str]]:
        lifecycle = descriptor.lifecycle
        paths = {lifecycle.initial: [lifecycle.initial]}
        queue = deque([lifecycle.initial])
        while queue:
            stage = queue.popleft()
            for t in lifecycle.transitions_from(stage):
                if t.convert_to is None and t.to_stage not in paths:
                    paths[t.to_stage] = [*paths[stage], t.to_stage]
                    queue.append(t.to_stage)
        return paths


async def seed_demo(
    db: Database, catalog: Catalog, customers: int = 3000, seed: int = 7
) -> DemoSummary:
    gen = DemoGenerator(catalog, seed, datetime.datetime.now(datetime.UTC))
    rng = gen.rng
    types = catalog.customer_types
    async with db.transaction():
        user_rows = [
            {
                "name": name,
                "email": gen.email(name, "crmgraph.example"),
                "role": ROLES[i % len(ROLES)],
                "created_at": gen.when(900),
            }
            for i, name in enumerate(gen.person() for _ in range(8))
        ]
        user_ids = await insert_many(db, "crm_user", user_rows)

        customer_rows, plans = [], []
        for i in range(customers):
            descriptor = types[i % len(types)]
            is_person = descriptor.key in ("employee", "agenda", "beneficiary", "guarantor")
            name = gen.person() if is_person or rng.random() < 0.3 else gen.company()
            created = gen.when()
            path = gen.stage_path(descriptor)
            attributes = {a.name: gen.attribute(a) for a in descriptor.attributes}
            customer_rows.append(
                {
                    "kind": descriptor.key,
                    "name": name,
                    "email": gen.email(
                        name, rng.choice(("example.com", "example.es", "mail.test"))
                    ),
                    "phone": gen.phone() if rng.random() < 0.8 else None,
                    "owner": rng.choice(user_ids) if rng.random() < 0.85 else None,
                    "attributes": dump_json({k: v for k, v in attributes.items() if v is not None}),
                    "version": len(path),
                    "created_at": created,
                    "updated_at": created,
                    "deleted_at": None,
                }
            )
            plans.append((descriptor, path, created))
        customer_ids = await insert_many(db, "customer", customer_rows)

        roles, changes, contacts, interactions, needs = [], [], [], [], []
        channels = catalog.channels
        for pk, (descriptor, path, created) in zip(customer_ids, plans, strict=True):
            span = (gen.now - created).total_seconds()
            moments = sorted(created + datetime.timedelta(seconds=rng.uniform(0, span))
                             for _ in path[1:])  # fmt: skip
            times = [created, *moments]
            for previous, stage, at in zip([None, *path[:-1]], path, times, strict=True):
                changes.append({"customer": pk, "kind": descriptor.key, "from_stage": previous,
                                "to_stage": stage, "at": at, "by": None,
                                "reason": "created" if previous is None else "demo"})  # fmt: skip
            current = descriptor.lifecycle.stage(path[-1])
            roles.append({"customer": pk, "kind": descriptor.key, "stage": current.key,  # type: ignore[union-attr]
                          "phase": current.phase.value, "entered_at": times[-1]})  # type: ignore[union-attr]  # fmt: skip
            for c in range(rng.randint(0, 4)):
                person = gen.person()
                contacts.append({"customer": pk, "name": person,
                                 "email": gen.email(person, "contacts.example"),
                                 "phone": gen.phone() if rng.random() < 0.6 else None,
                                 "job_title": rng.choice(("CEO", "Buyer", "CFO", "Office manager",
                                                          "Jefe de compras", None)),
                                 "is_primary": c == 0, "notes": None,
                                 "created_at": created, "updated_at": created})  # fmt: skip
            for _ in range(rng.randint(0, 12)):
                purchase = rng.random() < 0.25
                interactions.append({
                    "customer": pk, "contact": None, "channel": rng.choice(channels),
                    "direction": rng.choice(("INBOUND", "OUTBOUND")),
                    "occurred_at": created + datetime.timedelta(seconds=rng.uniform(0, span)),
                    "subject": "Order placed" if purchase else rng.choice(SUBJECTS),
                    "notes": "Customer asked for a callback." if rng.random() < 0.2 else None,
                    "outcome": rng.choice(OUTCOMES) if rng.random() < 0.6 else None,
                    "satisfaction": rng.randint(1, 5) if rng.random() < 0.5 else None,
                    "amount": Decimal(rng.randint(2000, 500000)) / 100 if purchase else None,
                    "created_at": created,
                })  # fmt: skip
            for _ in range(rng.randint(0, 3)):
                needs.append({
                    "customer": pk, "title": rng.choice(NEED_TITLES),
                    "description": None, "category": rng.choice(NEED_CATEGORIES),
                    "consumption_type": rng.choice(("recurring", "one-off", "seasonal")),
                    "volume": float(rng.randint(1, 500)), "unit": rng.choice(UNITS),
                    "priority": rng.choice(("LOW", "MEDIUM", "HIGH", "URGENT")),
                    "status": rng.choice(("OPEN", "OPEN", "IN_PROGRESS", "MET", "DROPPED")),
                    "due_date": (gen.now.date() + datetime.timedelta(days=rng.randint(-60, 120)))
                    if rng.random() < 0.5 else None,
                    "created_at": created, "updated_at": created,
                })  # fmt: skip
        await insert_many(db, "customer_role", roles)
        await insert_many(db, "stage_change", changes)
        await insert_many(db, "contact", contacts)
        await insert_many(db, "interaction", interactions)
        await insert_many(db, "need", needs)
        relationships = demo_relationships(catalog, rng, customer_ids, plans)
        await insert_many(db, "relationship", relationships)
    return DemoSummary(
        users=len(user_ids),
        customers=len(customer_ids),
        contacts=len(contacts),
        interactions=len(interactions),
        needs=len(needs),
        relationships=len(relationships),
        stage_changes=len(changes),
    )


def demo_relationships(
    catalog: Catalog, rng: random.Random, ids: list[int], plans: list[tuple]
) -> list[dict[str, Any]]:
    """Links of every declared relationship kind between customers of the
    types it allows."""
    by_kind: dict[str, list[int]] = {}
    for pk, (descriptor, _, _) in zip(ids, plans, strict=True):
        by_kind.setdefault(descriptor.key, []).append(pk)
    everyone = list(ids)
    rows, seen = [], set()
    now = datetime.datetime.now(datetime.UTC)
    for kind in catalog.relationship_kinds:
        sources = [pk for k in kind.from_kinds for pk in by_kind.get(k, [])] or everyone
        targets = [pk for k in kind.to_kinds for pk in by_kind.get(k, [])] or everyone
        for source in rng.sample(sources, min(len(sources), max(1, len(ids) // 40))):
            target = rng.choice(targets)
            if target != source and (source, target, kind.key) not in seen:
                seen.add((source, target, kind.key))
                rows.append({"from_customer": source, "to_customer": target, "kind": kind.key,
                             "attributes": "{}", "created_at": now})  # fmt: skip
    return rows
