"""Runtime configuration, read once from the environment (``CRMGRAPH_*``)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

DEFAULT_SQLITE_PATH = "crmgraph.sqlite"


def _split(value: str | None) -> tuple[str, ...]:
    if not value:
        return ()
    return tuple(part.strip() for part in value.split(",") if part.strip())


def _grants(value: str | None) -> dict[str, tuple[str, ...]]:
    """``agent=employee.read_pay,audit.read;viewer=audit.read`` -> role -> permissions."""
    grants: dict[str, tuple[str, ...]] = {}
    for part in (value or "").split(";"):
        role, _, keys = part.partition("=")
        if role.strip():
            grants[role.strip()] = _split(keys)
    return grants


def _pairs(value: str | None) -> dict[str, str]:
    """``supplier=block,client=warn`` -> {"supplier": "block", "client": "warn"}."""
    pairs: dict[str, str] = {}
    for part in _split(value):
        key, _, rule = part.partition("=")
        pairs[key.strip()] = rule.strip()
    return pairs


def _flag(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Settings:
    """Everything the server needs to know that is not code.

    ``database_url`` is ``sqlite:///path/to/file.sqlite`` (the default, embedded)
    or ``postgresql://user@host:port/dbname`` for production.
    """

    database_url: str = f"sqlite:///{DEFAULT_SQLITE_PATH}"
    pool_min_size: int = 1
    pool_max_size: int = 10
    # reset session state (RESET ALL, ...) on every release to the pool
    pool_reset_session: bool = False
    plugins: tuple[str, ...] = ()
    disabled_plugins: tuple[str, ...] = ()
    load_entry_points: bool = True
    graphiql: bool = True
    max_page_size: int = 100
    default_page_size: int = 20
    default_phone_region: str | None = None
    migrate_on_start: bool = True
    expose_sql_count: bool = False
    # answer queries over data columns and connections with one SQL statement
    # that builds the JSON in the database (crmgraph.compiled)
    compiled_reads: bool = True
    # PostgreSQL: a write's statements that are not read back go in one round trip
    write_batching: bool = True
    # answer a compiled query the full path has answered before straight from
    # the HTTP request, with the same checks (crmgraph.compiled.direct)
    direct_reads: bool = True
    event_poll_seconds: float = 1.0
    max_query_depth: int = 12
    max_query_aliases: int = 30
    max_query_tokens: int = 5000
    max_query_cost: int = 25_000
    max_query_selections: int = 10_000  # field selections, fragment spreads expanded
    max_body_bytes: int = 1024 * 1024
    # a multipart request (a file for importCustomers) may be this large
    import_max_bytes: int = 50 * 1024 * 1024
    introspection: bool = True
    mask_errors: bool = True
    anonymous: bool = False
    # seconds an API key's principal is reused without a lookup; 0: every request
    # looks it up (crmgraph.principal_cache: how long a revocation takes to apply)
    api_key_cache_seconds: float = 5.0
    graphiql_token: str | None = None
    # role -> permissions granted on top of what the plugins declare
    grants: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # query cost each API key may spend per window; 0 turns the rate limit off
    rate_limit_cost: int = 200_000
    rate_limit_window_seconds: int = 60
    # shared state for several workers (rate limit); None keeps it in-process
    redis_url: str | None = None
    idempotency_ttl_hours: float = 24
    # webhooks (crmgraph.webhooks): attempts per delivery, backoff base and cap
    # (base * 2**(n-1) after the n-th failed attempt), consecutive failed
    # deliveries before a webhook is disabled, and each request's time limit
    webhook_max_attempts: int = 10
    webhook_backoff_seconds: float = 10.0
    webhook_backoff_max_seconds: float = 3600.0
    webhook_disable_after: int = 5
    webhook_timeout_seconds: float = 10.0
    # retention (crmgraph.retention): days outbox events and finished webhook
    # deliveries are kept (0: for ever), and the pause between pruning passes
    event_retention_days: float = 30.0
    webhook_log_retention_days: float = 30.0
    prune_interval_seconds: float = 3600.0
    # customer type -> duplicate rule ("warn" or "block"), over what its plugin declares
    duplicate_rules: dict[str, str] = field(default_factory=dict)
    # issue 22, production: /metrics (and the bearer token it asks for, if any)
    metrics: bool = False
    metrics_token: str | None = None
    # "auto": readable text under a terminal, JSON lines otherwise; "json"; "text"
    log_format: str = "auto"
    log_level: str = "info"
    access_log: bool = True
    # OpenTelemetry spans (pip install crmgraph[otel]); exporters from OTEL_* variables
    tracing: bool = False
    # Apollo automatic persisted queries; a trusted-documents manifest refuses all else
    persisted_queries: bool = True
    trusted_documents: str | None = None
    # reads that need no read-your-write may go to a replica
    database_read_url: str | None = None
    # asyncpg's prepared statement cache per connection; 0 behind PgBouncer in
    # transaction mode (a prepared statement does not survive a server switch)
    statement_cache_size: int = 100
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        return cls(
            database_url=env.get("CRMGRAPH_DATABASE_URL") or f"sqlite:///{DEFAULT_SQLITE_PATH}",
            pool_min_size=int(env.get("CRMGRAPH_POOL_MIN_SIZE", "1")),
            pool_max_size=int(env.get("CRMGRAPH_POOL_MAX_SIZE", "10")),
            pool_reset_session=_flag(env.get("CRMGRAPH_POOL_RESET_SESSION"), False),
            plugins=_split(env.get("CRMGRAPH_PLUGINS")),
            disabled_plugins=_split(env.get("CRMGRAPH_DISABLE_PLUGINS")),
            load_entry_points=_flag(env.get("CRMGRAPH_LOAD_ENTRY_POINTS"), True),
            graphiql=_flag(env.get("CRMGRAPH_GRAPHIQL"), True),
            default_phone_region=env.get("CRMGRAPH_DEFAULT_PHONE_REGION") or None,
            migrate_on_start=_flag(env.get("CRMGRAPH_MIGRATE_ON_START"), True),
            expose_sql_count=_flag(env.get("CRMGRAPH_EXPOSE_SQL_COUNT"), False),
            compiled_reads=_flag(env.get("CRMGRAPH_COMPILED_READS"), True),
            write_batching=_flag(env.get("CRMGRAPH_WRITE_BATCHING"), True),
            direct_reads=_flag(env.get("CRMGRAPH_DIRECT_READS"), True),
            event_poll_seconds=float(env.get("CRMGRAPH_EVENT_POLL_SECONDS", "1.0")),
            max_query_depth=int(env.get("CRMGRAPH_MAX_QUERY_DEPTH", "12")),
            max_query_aliases=int(env.get("CRMGRAPH_MAX_QUERY_ALIASES", "30")),
            max_query_tokens=int(env.get("CRMGRAPH_MAX_QUERY_TOKENS", "5000")),
            max_query_cost=int(env.get("CRMGRAPH_MAX_QUERY_COST", "25000")),
            max_query_selections=int(env.get("CRMGRAPH_MAX_QUERY_SELECTIONS", "10000")),
            max_body_bytes=int(env.get("CRMGRAPH_MAX_BODY_BYTES", str(1024 * 1024))),
            import_max_bytes=int(env.get("CRMGRAPH_IMPORT_MAX_BYTES", str(50 * 1024 * 1024))),
            introspection=_flag(env.get("CRMGRAPH_INTROSPECTION"), True),
            mask_errors=_flag(env.get("CRMGRAPH_MASK_ERRORS"), True),
            anonymous=_flag(env.get("CRMGRAPH_ANONYMOUS"), False),
            api_key_cache_seconds=float(env.get("CRMGRAPH_API_KEY_CACHE_SECONDS", "5")),
            graphiql_token=env.get("CRMGRAPH_GRAPHIQL_TOKEN") or None,
            grants=_grants(env.get("CRMGRAPH_GRANTS")),
            rate_limit_cost=int(env.get("CRMGRAPH_RATE_LIMIT_COST", "200000")),
            rate_limit_window_seconds=int(env.get("CRMGRAPH_RATE_LIMIT_WINDOW_SECONDS", "60")),
            redis_url=env.get("CRMGRAPH_REDIS_URL") or None,
            idempotency_ttl_hours=float(env.get("CRMGRAPH_IDEMPOTENCY_TTL_HOURS", "24")),
            webhook_max_attempts=int(env.get("CRMGRAPH_WEBHOOK_MAX_ATTEMPTS", "10")),
            webhook_backoff_seconds=float(env.get("CRMGRAPH_WEBHOOK_BACKOFF_SECONDS", "10")),
            webhook_backoff_max_seconds=float(
                env.get("CRMGRAPH_WEBHOOK_BACKOFF_MAX_SECONDS", "3600")
            ),
            webhook_disable_after=int(env.get("CRMGRAPH_WEBHOOK_DISABLE_AFTER", "5")),
            webhook_timeout_seconds=float(env.get("CRMGRAPH_WEBHOOK_TIMEOUT_SECONDS", "10")),
            duplicate_rules=_pairs(env.get("CRMGRAPH_DUPLICATE_RULES")),
            event_retention_days=float(env.get("CRMGRAPH_EVENT_RETENTION_DAYS", "30")),
            webhook_log_retention_days=float(env.get("CRMGRAPH_WEBHOOK_LOG_RETENTION_DAYS", "30")),
            prune_interval_seconds=float(env.get("CRMGRAPH_PRUNE_INTERVAL_SECONDS", "3600")),
            metrics=_flag(env.get("CRMGRAPH_METRICS"), False),
            metrics_token=env.get("CRMGRAPH_METRICS_TOKEN") or None,
            log_format=env.get("CRMGRAPH_LOG_FORMAT") or "auto",
            log_level=env.get("CRMGRAPH_LOG_LEVEL") or "info",
            access_log=_flag(env.get("CRMGRAPH_ACCESS_LOG"), True),
            tracing=_flag(env.get("CRMGRAPH_TRACING"), False),
            persisted_queries=_flag(env.get("CRMGRAPH_PERSISTED_QUERIES"), True),
            trusted_documents=env.get("CRMGRAPH_TRUSTED_DOCUMENTS") or None,
            database_read_url=env.get("CRMGRAPH_DATABASE_READ_URL") or None,
            statement_cache_size=int(env.get("CRMGRAPH_STATEMENT_CACHE_SIZE", "100")),
        )

    def with_database(self, database_url: str) -> Settings:
        return replace(self, database_url=database_url)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite:")

    @property
    def sqlite_path(self) -> Path:
        if not self.is_sqlite:
            raise ValueError("not a SQLite database URL")
        return Path(self.database_url.split("sqlite:///", 1)[1] or DEFAULT_SQLITE_PATH)
