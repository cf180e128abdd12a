"""Runtime configuration: one typed model of every ``CRMGRAPH_*`` variable.

Why pydantic-settings: each variable is a typed field with its default, its
range and its description in one place (the configuration reference in
docs/configuration.md is generated from these fields by
``crmgraph.settings_doc``); a bad value fails at start-up with one message
naming the variable and what it expects (``CRMGRAPH_POOL_MAX_SIZE='ten':
expected an integer``), where the hand-written ``int(env.get(...))`` calls
raised a bare ``ValueError`` (or read ``CRMGRAPH_GRAPHIQL=flase`` as off); and
``.env`` files come with it (python-dotenv).

Kept by hand: the list formats operators already write (comma-separated
plugin lists, ``CRMGRAPH_GRANTS=agent=a,b;viewer=c``,
``CRMGRAPH_DUPLICATE_RULES=supplier=block,client=warn``). pydantic-settings
would read those fields as JSON; ``NoDecode`` hands the raw text to the
parsers below instead. Also by hand: the warning for an unknown
``CRMGRAPH_*`` name (pydantic-settings ignores what no field claims) and
the list of names that are read elsewhere and are not settings.

``Settings(**fields)`` reads nothing but its arguments (tests and embedding
code get the defaults, whatever the shell or a ``.env`` says);
``Settings.from_env()`` reads the environment and ``.env``, and
``Settings.from_env(mapping)`` reads only that mapping.
"""

from __future__ import annotations

import difflib
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from pydantic_settings.sources.utils import parse_env_vars

log = logging.getLogger(__name__)

PREFIX = "CRMGRAPH_"
DEFAULT_SQLITE_PATH = "crmgraph.sqlite"
ENV_FILE = ".env"
ENV_FILE_VARIABLE = "CRMGRAPH_ENV_FILE"

# CRMGRAPH_* names that are read elsewhere and are not settings: no
# "unknown setting" warning for them.
NOT_SETTINGS = frozenset(
    {
        ENV_FILE_VARIABLE,  # names the .env file (read before the settings)
        "CRMGRAPH_GRAPHIQL_ASSETS",  # crmgraph.graphiql: where GraphiQL's JS/CSS are
        "CRMGRAPH_GRAPHIQL_EXAMPLES",  # crmgraph.graphiql: the demo's example tabs
        "CRMGRAPH_GRAPHIQL_DEMO_KEYS",  # crmgraph.graphiql: the demo's role switch
        "CRMGRAPH_TEST_DATABASE",  # the test suite's engine (sqlite, postgres)
        "CRMGRAPH_TEST_PG",  # the test suite's PostgreSQL server
        "CRMGRAPH_TEST_REDIS",  # the test suite's Redis
        "CRMGRAPH_TEST_JOURNAL",  # tests/plugins_for_tests/event_journal.py
        "CRMGRAPH_FUZZ_EXAMPLES",  # tests/test_fuzz_schemathesis.py
        "CRMGRAPH_FUZZ_NEW_CASES",
        "CRMGRAPH_SCREENSHOT",  # tests/test_graphiql_browser.py
        "CRMGRAPH_REPORT_SCREENSHOT",  # tests/test_report.py
        "CRMGRAPH_CHROMIUM",  # tests/helpers.py
    }
)


class SettingsError(ValueError):
    """Bad configuration: one line per bad variable, each naming it."""


@dataclass(frozen=True)
class Kind:
    """How the configuration reference shows a field's type, when its Python
    type does not say it (a list format, a URL)."""

    text: str


def _names(value: Any) -> Any:
    """``a, b,,c`` -> ``("a", "b", "c")``; anything else goes to pydantic as it is."""
    if not isinstance(value, str):
        return value
    return tuple(part.strip() for part in value.split(",") if part.strip())


def _grants(value: Any) -> Any:
    """``agent=employee.read_pay,audit.read;viewer=audit.read`` -> role -> permissions."""
    if not isinstance(value, str):
        return value
    grants: dict[str, tuple[str, ...]] = {}
    for part in value.split(";"):
        role, _, keys = part.partition("=")
        if role.strip():
            grants[role.strip()] = _names(keys)
    return grants


def _pairs(value: Any) -> Any:
    """``supplier=block,client=warn`` -> ``{"supplier": "block", "client": "warn"}``."""
    if not isinstance(value, str):
        return value
    pairs: dict[str, str] = {}
    for part in _names(value):
        key, equals, rule = part.partition("=")
        if not equals or not key.strip():
            raise ValueError(f"expected key=value pairs, comma-separated; {part!r} is not one")
        pairs[key.strip()] = rule.strip()
    return pairs


def _trimmed(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


Names = Annotated[tuple[str, ...], NoDecode, BeforeValidator(_names), Kind("list, comma-separated")]
Grants = Annotated[
    dict[str, tuple[str, ...]],
    NoDecode,
    BeforeValidator(_grants),
    Kind("`role=permission,…;role=…`"),
]
Pairs = Annotated[dict[str, str], NoDecode, BeforeValidator(_pairs), Kind("`key=value,…`")]
# 1/true/yes/on or 0/false/no/off, any case (pydantic's bool also takes t/f/y/n)
Flag = Annotated[bool, BeforeValidator(_trimmed)]
LogFormat = Annotated[Literal["auto", "json", "text"], BeforeValidator(_trimmed)]
Url = Annotated[str, Kind("URL")]
OptionalUrl = Annotated[str | None, Kind("URL")]


class Settings(BaseSettings):
    """Everything the server needs to know that is not code.

    Immutable; ``model_copy(update=...)`` (or ``with_database``) makes a changed copy.
    """

    model_config = SettingsConfigDict(
        env_prefix=PREFIX,
        frozen=True,
        extra="forbid",  # Settings(databse_url=...) is a mistake, not a no-op
        env_ignore_empty=True,  # CRMGRAPH_X= (empty) keeps the default
        env_file=None,  # from_env names the file; Settings(...) reads none
        validate_by_name=True,  # disabled_plugins=... besides CRMGRAPH_DISABLE_PLUGINS
        validate_by_alias=True,
    )

    database_url: Url = Field(
        f"sqlite:///{DEFAULT_SQLITE_PATH}",
        description="`sqlite:///path` (embedded) or `postgresql://user:pass@host:5432/db`",
    )
    pool_min_size: int = Field(
        1, ge=0, description="connections the PostgreSQL pool of each worker keeps open"
    )
    pool_max_size: int = Field(
        10, ge=1, description="most connections the PostgreSQL pool of each worker opens"
    )
    pool_reset_session: Flag = Field(
        False,
        description="send asyncpg's reset query (`RESET ALL`, `UNLISTEN *`, …) each time a "
        "connection goes back to the pool: only for a plugin that changes session state outside "
        "a transaction (a round trip per statement; an open transaction is rolled back either way)",
    )
    plugins: Names = Field((), description="extra plugin modules to load")
    disabled_plugins: Names = Field(
        (),
        validation_alias="CRMGRAPH_DISABLE_PLUGINS",
        description="plugins not to load (module or entry-point names)",
    )
    load_entry_points: Flag = Field(
        True, description="load the plugins installed under the `crmgraph` entry-point group"
    )
    graphiql: Flag = Field(True, description="serve GraphiQL on `GET /graphql` to a browser")
    max_page_size: int = Field(
        100,
        ge=1,
        description="largest `first` a list accepts (and ids per `nodes` call); keep it at "
        "least 20, the `first` most lists default to in the schema",
    )
    default_page_size: int = Field(
        20,
        ge=1,
        description="`first` of a list queried with `first: null`, or whose schema gives no "
        "default",
    )
    default_phone_region: str | None = Field(
        None, description="region (e.g. `ES`) of phone numbers written without `+country`"
    )
    migrate_on_start: Flag = Field(
        True,
        description="migrate in the app's start-up (`serve` migrates once itself and turns this "
        "off for its workers)",
    )
    expose_sql_count: Flag = Field(
        False, description="report `extensions.sqlStatements` per response (debugging N+1)"
    )
    compiled_reads: Flag = Field(
        True,
        description="answer queries over data columns and connections with one SQL statement "
        'that builds the JSON in the database (`0`: resolvers only); see "Compiled reads"',
    )
    write_batching: Flag = Field(
        True,
        description="PostgreSQL: a write's statements that are not read back go in one round "
        'trip before its next read or its commit (`0`: every statement at once); see "Writes in '
        'few round trips"',
    )
    direct_reads: Flag = Field(
        True,
        description="answer a compiled query already answered once straight from the HTTP "
        'request, with the same checks (`0`: always through the GraphQL view); see "Compiled '
        'reads"',
    )
    event_poll_seconds: float = Field(
        1.0,
        gt=0,
        description="how often the event dispatcher looks for undelivered outbox events (every "
        "commit also wakes it)",
    )
    event_max_attempts: int = Field(
        14,
        ge=1,
        description="attempts to hand an outbox event to the plugin event handlers before it is "
        "given up (`crmgraph events failed` lists those, `crmgraph events retry` tries them "
        'again); see "Live events and webhooks"',
    )
    event_backoff_seconds: float = Field(
        2.0,
        ge=0,
        description="pause after an event's first failed handling; doubled after each next one, "
        "less up to a fifth at random",
    )
    event_backoff_max_seconds: float = Field(
        3600.0, ge=0, description="longest pause between an event's attempts"
    )
    max_query_depth: int = Field(
        12, ge=0, description="refuse deeper documents before execution (`0`: no limit)"
    )
    max_query_aliases: int = Field(
        30, ge=0, description="refuse documents with more aliases (`0`: no limit)"
    )
    max_query_tokens: int = Field(
        5000, ge=0, description="refuse longer documents, in tokens (`0`: no limit)"
    )
    max_query_cost: int = Field(
        25_000,
        ge=0,
        description="refuse queries asking for more nodes (connections multiply by `first`, "
        "plain lists count 10; each analytics report adds 100, `knowledge` 5 per customer); "
        "every answer reports `extensions.cost` (`0`: no limit)",
    )
    max_query_selections: int = Field(
        10_000,
        ge=0,
        description="refuse documents whose field selections, every fragment spread expanded, "
        "are more (`0`: no limit)",
    )
    max_body_bytes: int = Field(
        1024 * 1024,
        ge=1,
        description="larger request bodies get 413 (a body is read only after its key is accepted)",
    )
    import_max_bytes: int = Field(
        50 * 1024 * 1024,
        ge=1,
        description="body limit of a multipart request (a file for `importCustomers`, …) of a "
        "caller with `customer.import`, at most 2 at a time per caller (429 `TOO_MANY_UPLOADS`); "
        "anyone else's has `CRMGRAPH_MAX_BODY_BYTES`",
    )
    introspection: Flag = Field(
        True,
        description='`0` refuses `__schema`/`__type` and drops "Did you mean" suggestions '
        "(production)",
    )
    mask_errors: Flag = Field(
        True,
        description='unexpected errors answer "Internal server error" with a `requestId` that '
        "is in the server log",
    )
    anonymous: Flag = Field(
        False, description="let requests without a key in, as an admin: development only"
    )
    api_key_cache_seconds: float = Field(
        5.0,
        ge=0,
        description="how long a server reuses an API key's user, role and teams without a lookup "
        "(`0`: a lookup per request); without Redis, how long a revocation made by another "
        "process takes to apply",
    )
    graphiql_token: str | None = Field(
        None,
        description="API key GraphiQL's headers start with, for a browser on this machine only "
        "(`serve --demo` sets it)",
    )
    grants: Grants = Field(
        default_factory=dict,
        description="extra permissions per role on top of the plugins' defaults, e.g. "
        "`agent=employee.read_pay;viewer=audit.read`",
    )
    rate_limit_cost: int = Field(
        200_000,
        ge=0,
        description="query cost each API key may spend per window (`0`: no rate limit); over "
        "it, `RATE_LIMITED` with `retryAfterSeconds` and a `Retry-After` header",
    )
    rate_limit_window_seconds: int = Field(
        60, ge=1, description="the rate limit's window, in seconds"
    )
    redis_url: OptionalUrl = Field(
        None,
        description="e.g. `redis://127.0.0.1:6379/0`: workers share rate-limit budgets, live "
        "events and key revocations there (in-process without it: one worker); while it is "
        'unreachable the server runs degraded: see "Deployment"',
    )
    idempotency_ttl_hours: float = Field(
        24,
        ge=0,
        description="how long an `Idempotency-Key`'s first response is kept for replay "
        "(0: not kept past the request)",
    )
    webhook_max_attempts: int = Field(
        10,
        ge=1,
        description='attempts per webhook delivery (per replay) before it fails; see "Webhooks"',
    )
    webhook_backoff_seconds: float = Field(
        10.0,
        ge=0,
        description="pause after a delivery's first failed attempt; doubled after each next one",
    )
    webhook_backoff_max_seconds: float = Field(
        3600.0, ge=0, description="longest pause between a delivery's attempts"
    )
    webhook_disable_after: int = Field(
        5, ge=1, description="consecutive failed deliveries that disable a webhook"
    )
    webhook_timeout_seconds: float = Field(
        10.0, gt=0, description="time limit of one webhook request, answer included"
    )
    event_retention_days: float = Field(
        30.0, ge=0, description='days outbox events are kept (`0`: for ever); see "Retention"'
    )
    webhook_log_retention_days: float = Field(
        30.0, ge=0, description="days finished webhook deliveries are kept (`0`: for ever)"
    )
    prune_interval_seconds: float = Field(
        3600.0, gt=0, description="pause between each process's pruning passes"
    )
    duplicate_rules: Pairs = Field(
        default_factory=dict,
        description="duplicate rule (`warn` or `block`) per customer type over the plugins', "
        'e.g. `supplier=block,client=warn`; see "Duplicate customers"',
    )
    metrics: Flag = Field(False, description="serve Prometheus metrics on `GET /metrics`")
    metrics_token: str | None = Field(
        None, description="bearer token `GET /metrics` asks for (none: no token)"
    )
    log_format: LogFormat = Field(
        "auto",
        description="`auto`: readable text under a terminal, JSON lines otherwise; `json`; `text`",
    )
    log_level: Annotated[str, Kind("logging level")] = Field(
        "info", description="`debug`, `info`, `warning`, `error` or `critical`"
    )
    access_log: Flag = Field(True, description="log one line per request")
    tracing: Flag = Field(
        False,
        description="OpenTelemetry spans (`pip install crmgraph[otel]`); exporters from the "
        "`OTEL_*` variables",
    )
    persisted_queries: Flag = Field(True, description="accept Apollo automatic persisted queries")
    trusted_documents: str | None = Field(
        None, description="path of a trusted-documents manifest: every other document is refused"
    )
    database_read_url: OptionalUrl = Field(
        None,
        description="`postgresql://` URL of a replica for the reads that need no read-your-write",
    )
    statement_cache_size: int = Field(
        100,
        ge=0,
        description="asyncpg's prepared statements cached per connection; `0` behind PgBouncer "
        "in transaction mode",
    )
    extra: Pairs = Field(
        default_factory=dict, description="free `key=value` pairs, for a plugin's own settings"
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # keyword arguments only: from_env passes what it read as arguments
        return (init_settings,)

    @field_validator("database_url")
    @classmethod
    def _database_scheme(cls, url: str) -> str:
        if not url.startswith(("sqlite:", "postgres://", "postgresql://")):
            raise ValueError("expected sqlite:///path or postgresql://user@host:port/db")
        return url

    @field_validator("log_level", mode="before")
    @classmethod
    def _logging_level(cls, level: Any) -> Any:
        if isinstance(level, str) and level.strip().upper() in logging.getLevelNamesMapping():
            return level.strip().lower()
        raise ValueError("expected a logging level: debug, info, warning, error or critical")

    @model_validator(mode="after")
    def _in_order(self) -> Settings:
        for low, high in (
            ("pool_min_size", "pool_max_size"),
            ("default_page_size", "max_page_size"),
            ("webhook_backoff_seconds", "webhook_backoff_max_seconds"),
            ("event_backoff_seconds", "event_backoff_max_seconds"),
        ):
            if getattr(self, low) > getattr(self, high):
                raise ValueError(
                    f"{env_name(low)}={getattr(self, low)!r} is more than "
                    f"{env_name(high)}={getattr(self, high)!r}"
                )
        return self

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """The settings ``environ`` gives (``os.environ`` and the ``.env`` file, or
        ``$CRMGRAPH_ENV_FILE``, when None; the real environment wins). Raises
        SettingsError naming every bad variable; warns of unknown ``CRMGRAPH_*`` names."""
        layers: list[Mapping[str, str | None]] = []
        if environ is None:
            environ = os.environ
            layers.append(_dotenv_vars(environ))
        layers.append(environ)
        values: dict[str, Any] = {}
        for layer in layers:  # later layers win
            warn_unknown(layer)
            values.update(_MappingSource(cls, layer)())
        try:
            return cls(**values)
        except ValidationError as exc:
            raise SettingsError("\n".join(problems(exc))) from None

    def with_database(self, database_url: str) -> Settings:
        return self.model_copy(update={"database_url": database_url})

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite:")

    @property
    def sqlite_path(self) -> Path:
        if not self.is_sqlite:
            raise ValueError("not a SQLite database URL")
        return Path(self.database_url.split("sqlite:///", 1)[1] or DEFAULT_SQLITE_PATH)


class _MappingSource(EnvSettingsSource):
    """pydantic-settings' environment source over a given mapping, not
    ``os.environ``: ``from_env(mapping)`` (tests) reads exactly that mapping.
    ``_load_env_vars`` is the source's one hook for where the names come from;
    tests/test_settings_model.py would catch a release that renames it."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str | None]):
        self._environ = environ
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return parse_env_vars(
            self._environ, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str
        )


def _dotenv_vars(environ: Mapping[str, str]) -> Mapping[str, str | None]:
    """The variables of ``.env`` (or of the file ``$CRMGRAPH_ENV_FILE`` names,
    which must exist), names as written."""
    named = environ.get(ENV_FILE_VARIABLE)
    path = Path(named or ENV_FILE)
    if not path.is_file():
        if named:
            raise SettingsError(f"{ENV_FILE_VARIABLE}={named!r}: no such file")
        return {}
    source = DotEnvSettingsSource(Settings, env_file=path, case_sensitive=True)
    return source.env_vars


def env_name(field: str) -> str:
    """The environment variable of a field: ``pool_max_size`` -> ``CRMGRAPH_POOL_MAX_SIZE``."""
    alias = Settings.model_fields[field].validation_alias
    return alias if isinstance(alias, str) else PREFIX + field.upper()


def known_names() -> frozenset[str]:
    return frozenset(env_name(field) for field in Settings.model_fields)


def warn_unknown(environ: Mapping[str, Any]) -> None:
    """Log each ``CRMGRAPH_*`` name that is no setting, with the closest setting."""
    known = known_names()
    # compared without the prefix every name shares, which would make any two look alike
    suffixes = {name.removeprefix(PREFIX): name for name in known}
    for name in sorted(environ):
        upper = name.upper()
        if not upper.startswith(PREFIX) or upper in known or upper in NOT_SETTINGS:
            continue
        close = difflib.get_close_matches(upper.removeprefix(PREFIX), suffixes, n=1)
        hint = f"; did you mean {suffixes[close[0]]}?" if close else ""
        log.warning("unknown setting %s is ignored%s", name, hint)


def problems(error: ValidationError) -> list[str]:
    """One line per bad value: ``CRMGRAPH_POOL_MAX_SIZE='ten': expected an integer``."""
    return [_problem(detail) for detail in error.errors()]


def _problem(detail: ErrorDetails) -> str:
    if not detail["loc"]:  # a rule over several fields: the message names them
        return _expected(detail, "an integer")
    name = str(detail["loc"][0])
    field = Settings.model_fields.get(name)
    noun = "a number" if field is not None and field.annotation is float else "an integer"
    if field is not None:
        name = env_name(name)
    return f"{name}={detail['input']!r}: {_expected(detail, noun)}"


_EXPECTED = {
    "int_parsing": "expected an integer",
    "int_type": "expected an integer",
    "int_from_float": "expected an integer",
    "float_parsing": "expected a number",
    "float_type": "expected a number",
    "bool_parsing": "expected a flag: 1/true/yes/on or 0/false/no/off",
    "bool_type": "expected a flag: 1/true/yes/on or 0/false/no/off",
    "extra_forbidden": "not a setting",
}


def _expected(detail: ErrorDetails, noun: str) -> str:
    """What the field expects, worded for the person who set the variable."""
    kind, ctx = detail["type"], detail.get("ctx", {})
    if kind in _EXPECTED:
        return _EXPECTED[kind]
    if kind == "greater_than_equal":
        return f"expected {noun} >= {ctx['ge']:g}"
    if kind == "greater_than":
        return f"expected {noun} > {ctx['gt']:g}"
    if kind == "literal_error":
        return f"expected {ctx['expected']}"
    if kind == "value_error":
        return str(ctx["error"])
    return detail["msg"]


# The defaults, for code that repeats one (QueryLimits, paging): one place.
DEFAULTS = Settings()
