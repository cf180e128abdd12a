"""A realistic, deterministic demo data set (``crmgraph demo``, ``serve --demo``).

Generic over the catalog: customers of every registered type, each walked along
its own declared lifecycle (conversions included) with the stage history the
API would have written, typed attribute values drawn from the descriptor, and
contacts, interactions, needs and relationships around them.

The whole data set is planned in memory first, so it depends only on the seed
and ``now``; it is then written with multi-row INSERTs in one transaction
(3000 customers in about 4 s on SQLite, 5 s on PostgreSQL).
"""

from __future__ import annotations

import datetime
import itertools
import math
import random
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from crmgraph.customer_types import Attribute, CustomerType, Phase, Transition
from crmgraph.db import stays
from crmgraph.db.bulk import insert_rows
from crmgraph.db.engine import Database
from crmgraph.db.writes import dump_json
from crmgraph.db.writes import now as utc_now
from crmgraph.dedupe.matching import refresh_match_keys
from crmgraph.registry import Catalog

Row = dict[str, Any]
Rng = random.Random

HISTORY_DAYS = 730
MAX_TRANSITIONS = 8
KEEP_WALKING = 0.7
USER_ROLES = ("admin", "manager", "manager", "agent", "agent", "agent", "agent", "viewer")
STAFF_DOMAIN = "crmgraph.example"
# RFC 2606 reserves .example: demo addresses look real but can never reach anyone.
PERSONAL_DOMAINS = ("correo.example", "mail.example", "inbox.example")
LEGAL_FORMS = frozenset({"sl", "sa", "sc", "scoop", "inc", "llc", "llp", "ltd", "the", "e", "y"})


def words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


def lines(text: str) -> tuple[str, ...]:
    return tuple(line.strip() for line in text.splitlines() if line.strip())


def digits(rng: Rng, count: int) -> str:
    return f"{rng.randrange(10**count):0{count}d}"


# Prefixes phonenumbers accepts for every following digit string.
SPANISH_MOBILE_PREFIXES = ("6", "6", "6", "71", "72", "73", "74")
SPANISH_LANDLINE_PREFIXES = ("91", "93", "954", "952", "944", "96", "976", "985", "928", "971")
US_AREA_CODES = (201, 202, 206, 212, 213, 303, 305, 312, 404, 415, 503, 512, 617, 646, 702, 713)


def spanish_mobile(rng: Rng) -> str:
    prefix = rng.choice(SPANISH_MOBILE_PREFIXES)
    return f"+34{prefix}{digits(rng, 9 - len(prefix))}"


def spanish_landline(rng: Rng) -> str:
    prefix = rng.choice(SPANISH_LANDLINE_PREFIXES)
    return f"+34{prefix}{digits(rng, 9 - len(prefix))}"


def us_phone(rng: Rng) -> str:
    # Any exchange 200-999 is valid under these area codes.
    return f"+1{rng.choice(US_AREA_CODES)}{rng.randint(200, 999)}{digits(rng, 4)}"


@dataclass(frozen=True)
class Locale:
    """Names, companies and phones that belong together (a Madrid bakery has a
    Spanish name, a +34 number and a CIF)."""

    code: str
    first_names: tuple[str, ...]
    last_names: tuple[str, ...]
    surnames: int
    company_patterns: tuple[str, ...]
    company_words: tuple[str, ...]
    sectors: tuple[str, ...]
    mailboxes: tuple[str, ...]
    job_titles: tuple[str, ...]
    mobile: Callable[[Rng], str]
    landline: Callable[[Rng], str]


SPANISH = Locale(
    code="es",
    first_names=words(
        "Lucía María Carmen Ana Laura Marta Elena Sofía Paula Cristina Isabel Rocío Pilar "
        "Nuria Javier Antonio Manuel José David Daniel Carlos Miguel Pablo Alejandro Sergio "
        "Jorge Álvaro Raúl Iñaki Jordi Begoña Montserrat"
    ),
    last_names=words(
        "García Fernández González Rodríguez López Martínez Sánchez Pérez Gómez Martín "
        "Jiménez Ruiz Hernández Díaz Moreno Muñoz Álvarez Romero Navarro Torres Domínguez "
        "Vázquez Ramos Gil Serrano Blanco Molina Castro Ortega Rubio Núñez Iglesias Garrido "
        "Medina Sanz Ibáñez Peña"
    ),
    surnames=2,
    company_patterns=(
        "{sector} {surname} S.L.",
        "{word} {sector} S.A.",
        "Grupo {word}",
        "{surname} e Hijos S.L.",
        "{sector} {word} S.L.",
        "Hermanos {surname} S.C.",
        "{sector} del {word} S.Coop.",
    ),
    company_words=words(
        "Ibérica Atlántico Mediterráneo Levante Cantábrico Sierra Norte Sur Sol Olivo Roble "
        "Alba Horizonte Vértice Duero Ebro Tajo Guadalquivir Pirineo Albufera"
    ),
    sectors=words(
        "Construcciones Transportes Talleres Distribuciones Consultoría Inmobiliaria Seguros "
        "Bodegas Gráficas Panificadora Climatización Asesoría Logística Electricidad "
        "Carpintería Conservas"
    ),
    mailboxes=words("info contacto hola ventas administracion pedidos"),
    job_titles=lines(
        """
        Gerente
        Director General
        Jefe de Compras
        Responsable de Administración
        Director Comercial
        Técnico de Mantenimiento
        Responsable de Calidad
        Administrativo
        Directora de Operaciones
        Responsable de Sistemas
        """
    ),
    mobile=spanish_mobile,
    landline=spanish_landline,
)

ENGLISH = Locale(
    code="en",
    first_names=words(
        "James Mary Robert Patricia John Jennifer Michael Linda David Elizabeth William Susan "
        "Richard Jessica Thomas Sarah Daniel Emily Olivia Noah Emma Liam Ava Ethan Mia Lucas "
        "Grace Henry Chloe Owen"
    ),
    last_names=words(
        "Smith Johnson Williams Brown Jones Miller Davis Wilson Anderson Taylor Thomas Moore "
        "Martin Jackson Thompson White Harris Clark Lewis Walker Hall Young King Wright Scott "
        "Green Baker Adams Nelson Carter Mitchell Turner Parker Collins Morgan Murphy"
    ),
    surnames=1,
    company_patterns=(
        "{word} {sector} Inc.",
        "{surname} & {surname2} LLP",
        "{word} {sector} LLC",
        "{surname} Brothers Ltd",
        "{word} {sector} Group",
        "The {word} Company",
    ),
    company_words=words(
        "Harbor Summit Pioneer Bluefield Redwood Cobalt Meridian Granite Evergreen Northwind "
        "Silverline Keystone Lakeside Brightwater Oakridge Ironbridge"
    ),
    sectors=words(
        "Logistics Analytics Foods Builders Dental Consulting Insurance Software Supply Media "
        "Motors Energy Labs Robotics Textiles"
    ),
    mailboxes=words("info hello sales office contact orders"),
    job_titles=lines(
        """
        CEO
        CFO
        Purchasing Manager
        Office Manager
        Head of Operations
        Account Manager
        IT Manager
        Procurement Lead
        Finance Director
        Operations Analyst
        """
    ),
    mobile=us_phone,
    landline=us_phone,
)

LOCALES = (SPANISH, ENGLISH)
LOCALE_WEIGHTS = (65, 35)

INDUSTRIES = lines(
    """
    Construction
    Retail
    Hospitality
    Logistics
    Healthcare
    Manufacturing
    Agriculture
    Software
    Education
    Financial services
    Energy
    Alimentación
    Automoción
    Turismo
    """
)
DEPARTMENTS = words("Sales Marketing Finance Operations Support Legal IT Compras Logística")
RELATIONS = words("spouse child parent sibling partner grandchild")
SUPPLY_CATEGORIES = lines(
    """
    Office supplies
    Packaging
    Raw materials
    IT services
    Cleaning
    Transport
    Marketing
    Maintenance
    Material de oficina
    Embalaje
    """
)
STRENGTHS = lines(
    """
    Aggressive pricing on large orders
    Strong brand in the north of Spain
    Fast delivery, same day in Madrid and Barcelona
    Excellent after-sales support
    Muy buena relación con las cadenas de distribución
    """
)
WEAKNESSES = lines(
    """
    Slow to answer support requests
    Limited product range
    No presence outside the big cities
    High staff turnover in sales
    Precios poco competitivos en pedidos pequeños
    """
)
INTERESTS = lines(
    """
    Annual maintenance plan
    Fleet insurance for 12 vans
    Cloud backup for the office
    Bulk coffee supply
    Software licences for 20 seats
    Reforma de las oficinas
    Renting de vehículos
    Plan de pensiones para empleados
    """
)
NOTES = lines(
    """
    Prefers to be contacted by e-mail in the morning.
    Asked for a callback after the summer.
    Key account for the northern region.
    Pendiente de revisar la documentación.
    Recomendado por un cliente de Valencia.
    Annual review in the first quarter.
    Decision maker is the owner; the buyer only prepares quotes.
    Paga siempre a 60 días.
    """
)
REASONS = lines(
    """
    agreed on the phone
    after the quarterly review
    requested by the account owner
    según lo hablado en la reunión
    documentation received
    no answer after three attempts
    """
)
LANGUAGES = {"es": ("es", "es", "es", "ca", "eu", "gl"), "en": ("en", "en", "en", "fr", "de")}

CHANNEL_WEIGHTS = {"EMAIL": 5, "PHONE": 4, "MEETING": 2, "CHAT": 2, "WEB": 2, "LETTER": 0.3}
SUBJECTS_BY_CHANNEL = {
    "EMAIL": lines(
        """
        Re: quote for next quarter
        Invoice question
        Solicitud de presupuesto
        Newsletter reply
        Documentation requested
        """
    ),
    "PHONE": lines(
        """
        Follow-up call
        Llamada de seguimiento
        Complaint about a late delivery
        Renewal discussion
        """
    ),
    "MEETING": lines(
        """
        Quarterly business review
        Product demo
        Reunión de seguimiento
        Visita a las instalaciones
        """
    ),
}
GENERIC_SUBJECTS = lines(
    """
    Question about an order
    Support request
    Consulta sobre un pedido
    Feedback on the service
    Cambio de datos de contacto
    """
)
OUTCOMES = words(
    "resolved quote_sent order_placed no_answer callback_requested escalated meeting_scheduled"
)


@dataclass(frozen=True)
class NeedKind:
    title: str
    category: str
    consumption_type: str
    unit: str
    volume: tuple[int, int]


NEED_KINDS = (
    NeedKind("Monthly supply of packaging", "supplies", "recurring", "units", (100, 5000)),
    NeedKind("Fleet insurance", "insurance", "recurring", "vehicles", (2, 40)),
    NeedKind("Office furniture", "supplies", "one_off", "units", (5, 60)),
    NeedKind("Cloud storage", "software", "recurring", "TB", (1, 50)),
    NeedKind("Spare parts for the production line", "supplies", "on_demand", "units", (10, 500)),
    NeedKind("Training for new staff", "services", "one_off", "hours", (8, 120)),
    NeedKind("Suministro de café", "supplies", "recurring", "kg", (5, 200)),
    NeedKind("Contrato de mantenimiento", "services", "recurring", "hours", (10, 300)),
    NeedKind("Seguro de responsabilidad civil", "insurance", "recurring", "policies", (1, 3)),
    NeedKind("Renovación de equipos informáticos", "hardware", "one_off", "units", (5, 80)),
    NeedKind("Transporte de mercancías en campaña", "logistics", "seasonal", "m3", (10, 400)),
    NeedKind("Working capital credit line", "finance", "on_demand", "EUR", (10_000, 500_000)),
)
TASK_TITLES = (
    "Call back",
    "Send the quote",
    "Prepare the renewal",
    "Follow up on the complaint",
    "Schedule a visit",
)
NEED_STATUSES = ("OPEN", "IN_PROGRESS", "MET", "DROPPED")
NEED_PRIORITIES = ("LOW", "MEDIUM", "HIGH", "URGENT")


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
            f"{self.relationships} relationships, {self.stage_changes} stage changes, "
            f"{self.users} users"
        )


@dataclass
class DemoPlan:
    """Rows to insert. Foreign keys hold list positions (``customer`` is an
    index into ``customers``) until the database has assigned ids."""

    users: list[Row] = field(default_factory=list)
    customers: list[Row] = field(default_factory=list)
    roles: list[Row] = field(default_factory=list)
    stage_changes: list[Row] = field(default_factory=list)
    contacts: list[Row] = field(default_factory=list)
    interactions: list[Row] = field(default_factory=list)
    needs: list[Row] = field(default_factory=list)
    relationships: list[Row] = field(default_factory=list)
    # team work, so GraphiQL shows notes, mentions, tasks and a full timeline
    notes: list[Row] = field(default_factory=list)
    note_mentions: list[Row] = field(default_factory=list)
    tasks: list[Row] = field(default_factory=list)

    def summary(self) -> DemoSummary:
        return DemoSummary(
            users=len(self.users),
            customers=len(self.customers),
            contacts=len(self.contacts),
            interactions=len(self.interactions),
            needs=len(self.needs),
            relationships=len(self.relationships),
            stage_changes=len(self.stage_changes),
        )


@dataclass(frozen=True)
class Party:
    name: str
    locale: Locale
    is_person: bool
    domain: str


@dataclass(frozen=True)
class Move:
    kind: str
    from_stage: str | None
    to_stage: str
    at: datetime.datetime
    reason: str | None


@dataclass(frozen=True)
class Journey:
    moves: list[Move]
    transitions: int  # a conversion is one transition that writes two moves


async def has_data(db: Database) -> bool:
    return bool(await db.fetch("SELECT id FROM customer LIMIT 1"))


async def seed_demo(
    db: Database,
    catalog: Catalog,
    customers: int = 3000,
    seed: int = 7,
    *,
    now: datetime.datetime | None = None,
) -> DemoSummary:
    """Fill an empty, migrated database; the same seed and ``now`` give the same rows."""
    plan = plan_demo(catalog, customers, seed, now or utc_now())
    async with db.transaction():
        await write_plan(db, plan)
    return plan.summary()


def plan_demo(catalog: Catalog, customers: int, seed: int, now: datetime.datetime) -> DemoPlan:
    return DemoGenerator(catalog, random.Random(seed), now.astimezone(datetime.UTC)).plan(customers)


async def write_plan(db: Database, plan: DemoPlan) -> None:
    user_ids = await insert_rows(db, "crm_user", plan.users)
    customer_ids = await insert_rows(db, "customer", resolve(plan.customers, owner=user_ids))
    await refresh_match_keys(db, customer_ids)
    roles = resolve(plan.roles, customer=customer_ids)
    await insert_rows(db, "customer_role", roles, returning=False)
    changes = resolve(plan.stage_changes, customer=customer_ids, by=user_ids)
    await insert_rows(db, "stage_change", changes, returning=False)
    await stays.record_stays(db)
    contact_ids = await insert_rows(db, "contact", resolve(plan.contacts, customer=customer_ids))
    interactions = resolve(plan.interactions, customer=customer_ids, contact=contact_ids)
    await insert_rows(db, "interaction", interactions, returning=False)
    await insert_rows(db, "need", resolve(plan.needs, customer=customer_ids), returning=False)
    links = resolve(plan.relationships, from_customer=customer_ids, to_customer=customer_ids)
    await insert_rows(db, "relationship", links, returning=False)
    note_ids = await insert_rows(
        db, "note", resolve(plan.notes, customer=customer_ids, author=user_ids)
    )
    mentions = resolve(plan.note_mentions, note=note_ids, mentioned=user_ids)
    await insert_rows(db, "note_mention", mentions, returning=False)
    tasks = resolve(plan.tasks, customer=customer_ids, assignee=user_ids, created_by=user_ids)
    await insert_rows(db, "task", tasks, returning=False)


def resolve(rows: list[Row], **ids: Sequence[int]) -> list[Row]:
    """Replace list positions in foreign-key columns with database ids."""
    return [resolve_row(row, ids) for row in rows]


def resolve_row(row: Row, ids: dict[str, Sequence[int]]) -> Row:
    resolved = dict(row)
    for column, pks in ids.items():
        if row[column] is not None:
            resolved[column] = pks[row[column]]
    return resolved


def ascii_slug(text: str, separator: str = "-") -> str:
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    parts = re.findall(r"[a-z0-9]+", plain.replace(".", ""))
    return separator.join(parts)


def within(
    value: Decimal, low: Decimal | None, high: Decimal | None, step: Decimal, kind: type
) -> Any:
    """``value`` rounded to ``step`` and moved into the inclusive bounds (a
    bound finer than the step is taken as it is), in the form ``kind`` stores."""
    rounded = value.quantize(step)
    if low is not None and rounded < low:
        rounded = Decimal(math.ceil(low)) if kind is int else low
    if high is not None and rounded > high:
        rounded = Decimal(math.floor(high)) if kind is int else high
    return kind(rounded)


def fit(text: str, max_length: int | None) -> str:
    """Shorten to ``max_length`` at a word boundary where there is one."""
    if max_length is None or len(text) <= max_length:
        return text
    cut = text[: max_length + 1].rsplit(" ", 1)[0].rstrip(" ,.;")
    return cut if 0 < len(cut) <= max_length else text[:max_length]


def dni(rng: Rng) -> str:
    number = rng.randrange(10_000_000, 100_000_000)
    return f"{number}{'TRWAGMYFPDXBNJZSQVHLCKE'[number % 23]}"


def tax_id(rng: Rng, party: Party) -> str:
    if party.locale is SPANISH:
        return dni(rng) if party.is_person else f"{rng.choice('AB')}{digits(rng, 8)}"
    if party.is_person:
        return f"{digits(rng, 3)}-{digits(rng, 2)}-{digits(rng, 4)}"
    return f"{digits(rng, 2)}-{digits(rng, 7)}"  # an EIN


def website_domain(party: Party) -> str:
    return f"{ascii_slug(party.name)}.example" if party.is_person else party.domain


TextMaker = Callable[[Rng, Party], str]

# Plugins only declare a type and a length, so plausible text is guessed from
# the attribute's name; anything unrecognised gets a short note.
TEXT_HINTS: tuple[tuple[str, TextMaker], ...] = (
    (r"e?mail", lambda rng, party: f"{ascii_slug(party.name, '.')}@{party.domain}"),
    (r"phone|mobile", lambda rng, party: party.locale.mobile(rng)),
    (r"tax|vat|cif|nif|document|passport|dni", tax_id),
    (r"web|url|site", lambda rng, party: f"https://www.{website_domain(party)}"),
    (r"lang", lambda rng, party: rng.choice(LANGUAGES[party.locale.code])),
    (r"industr|sector", lambda rng, party: rng.choice(INDUSTRIES)),
    (r"job|position|title|role", lambda rng, party: rng.choice(party.locale.job_titles)),
    (r"depart|team|area", lambda rng, party: rng.choice(DEPARTMENTS)),
    (r"relation", lambda rng, party: rng.choice(RELATIONS)),
    (r"categor|supplies|product", lambda rng, party: rng.choice(SUPPLY_CATEGORIES)),
    (r"strength", lambda rng, party: rng.choice(STRENGTHS)),
    (r"weakness", lambda rng, party: rng.choice(WEAKNESSES)),
    (r"interest", lambda rng, party: rng.choice(INTERESTS)),
)

# Day offsets from today for date attributes, by name.
DATE_HINTS: tuple[tuple[str, tuple[int, int]], ...] = (
    (r"birth", (-80 * 365, -18 * 365)),
    (r"due|expir|until|renew|deadline|next", (1, 720)),
)
PAST_DAYS = (-6 * 365, -1)


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
        # last, so its random draws leave every earlier row as it was
        self.add_teamwork()
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
        self.out.customers.append(
            {
                "kind": journey.moves[-1].kind,
                "name": party.name,
                "email": self.party_email(party) if self.rng.random() < 0.85 else None,
                "phone": self.party_phone(party) if self.rng.random() < 0.8 else None,
                "owner": owner,
                "attributes": dump_json(attributes),
                "version": version,
                "created_at": created,
                "updated_at": updated,
                "deleted_at": None,
            }
        )
        self.add_history(index, journey, owner)
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
        moves = [Move(kind, None, stage, created, "created")]
        current = {kind: stage}
        route = self.route(descriptor, may_convert)
        for (kind, transition), at in zip(route, self.moments(created, len(route)), strict=True):
            reason = self.maybe(0.4, REASONS)
            moves.append(Move(kind, current[kind], transition.to_stage, at, reason))
            current[kind] = transition.to_stage
            if transition.convert_to:
                target = self.descriptor(transition.convert_to)
                landing = transition.convert_stage or target.lifecycle.initial
                why = reason or f"converted from {kind}"
                moves.append(Move(target.key, current.get(target.key), landing, at, why))
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

    def add_history(self, index: int, journey: Journey, owner: int | None) -> None:
        last: dict[str, Move] = {}
        for move in journey.moves:
            by = owner if self.rng.random() < 0.7 else self.rng.choice([None, *self.owners])
            self.out.stage_changes.append(
                {
                    "customer": index,
                    "kind": move.kind,
                    "from_stage": move.from_stage,
                    "to_stage": move.to_stage,
                    "at": move.at,
                    "by": by,
                    "reason": move.reason,
                }
            )
            last[move.kind] = move
        for kind, move in last.items():
            stage = self.descriptor(kind).lifecycle.stage(move.to_stage)
            assert stage is not None
            self.out.roles.append(
                {
                    "customer": index,
                    "kind": kind,
                    "stage": stage.key,
                    "phase": stage.phase.value,
                    "entered_at": move.at,
                }
            )

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
            owner = customer["owner"]
            if owner is None:
                continue
            created = customer["created_at"]
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
                start = max(customers[source]["created_at"], customers[target]["created_at"])
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
        stage = descriptor.lifecycle.stage(move.to_stage) if descriptor else None
        if stage is not None and stage.phase in PAYING_PHASES:
            return move.at
    return None


def members(customers: list[Row], kinds: tuple[str, ...]) -> list[int]:
    """Positions of customers of the given kinds (any kind when none are named)."""
    return [i for i, row in enumerate(customers) if not kinds or row["kind"] in kinds]


def person_share(descriptor: CustomerType) -> float:
    """How many of a type's parties are people rather than organisations.
    Descriptors do not say, so guess from their attributes and description."""
    names = " ".join(attr.name for attr in descriptor.attributes)
    if re.search(r"birth|hire|relation|gender|surname", names):
        return 0.95
    if re.search(r"\bperson\b", descriptor.description.lower()):
        return 0.9
    return 0.25
