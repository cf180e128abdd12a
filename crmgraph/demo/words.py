"""The demo's vocabulary: names, companies, phones, texts and amounts that
belong together, per locale (a Madrid bakery has a Spanish name, a +34
number and a CIF), and the pools the demo draws notes, subjects and needs from."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

Rng = random.Random

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
