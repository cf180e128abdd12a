"""How ``crmgraph serve`` logs: one line per event, each naming its request.

``CRMGRAPH_LOG_FORMAT``: ``json`` writes one JSON object per line (for a log
collector), ``text`` a readable line, ``auto`` (the default) text when stderr
is a terminal and JSON otherwise. ``CRMGRAPH_LOG_LEVEL`` sets the level.
Every line written while a request runs carries its ``request_id`` (the
``X-Request-Id`` the response returns), uvicorn's own error lines included,
and with ``CRMGRAPH_ACCESS_LOG`` on (the default) each request ends with one
access line: method, path (never the query string, which can hold a GET
query's variables), status, operation name and type, the path that answered,
cost, duration.

No line may hold a secret. Nothing here logs a header or a variable, and as
a defence in depth every line is scrubbed of what looks like an API key
(``crm_<prefix>_<secret>``: the prefix stays, it names the key), a webhook
secret (``whsec_...``) or a bearer token, whatever logged it.

:func:`log_config` is a :func:`logging.config.dictConfig` dictionary, given
to uvicorn as its ``log_config``: uvicorn applies it in every worker process
it starts (``--workers N``), before the app is imported. Plain stdlib logging
and orjson (already a dependency) rather than python-json-logger or
structlog: a formatter of twenty lines does what either would, and the
request id comes from one :class:`logging.Filter` either way.
"""

from __future__ import annotations

import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

import orjson

from crmgraph.observability.request_facts import RequestFacts, current

FORMATS = ("auto", "json", "text")
LEVELS = ("critical", "error", "warning", "info", "debug")

access_logger = logging.getLogger("crmgraph.access")

# what a secret looks like in any text: an API key (crmgraph.auth: the prefix
# is 12 hex digits, the secret url-safe base64), a webhook secret
# (crmgraph.webhooks.new_secret), any bearer token
SECRETS = re.compile(
    r"(?P<key>\bcrm_[0-9a-f]{12}_)[A-Za-z0-9_\-]+"
    r"|(?P<whsec>\bwhsec_)[A-Za-z0-9_\-]+"
    r"|(?P<bearer>\b[Bb]earer\s+)[^\s\"',]+"
)
REDACTED = "[REDACTED]"


def redact(text: str) -> str:
    """``text`` with every secret's secret part replaced by ``[REDACTED]``."""
    if "crm_" not in text and "whsec_" not in text and "earer" not in text:
        return text  # most lines: no regex run at all
    return SECRETS.sub(lambda m: (m["key"] or m["whsec"] or m["bearer"]) + REDACTED, text)


class RequestId(logging.Filter):
    """Gives every record ``request_id``: the running request's, or None."""

    def filter(self, record: logging.LogRecord) -> bool:
        facts = current()
        record.request_id = facts.request_id if facts is not None else None
        return True


class JsonLines(logging.Formatter):
    """One JSON object per line: time (UTC), level, logger, message,
    request_id, the record's ``fields`` (the access line's) and the
    exception's traceback, if any."""

    def __init__(self) -> None:
        super().__init__()
        self._second = -1
        self._stamp = ""

    def timestamp(self, created: float) -> str:
        """ISO 8601 in UTC to the millisecond; the part up to the second is
        made once a second (one datetime per line was a tenth of a line's cost)."""
        second = int(created)
        if second != self._second:
            self._second = second
            self._stamp = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        return f"{self._stamp}.{int((created - second) * 1000):03d}+00:00"

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": self.timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None)
        if request_id is not None:
            line["request_id"] = request_id
        line.update(getattr(record, "fields", None) or {})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return redact(orjson.dumps(line, default=str).decode())


class Text(logging.Formatter):
    """``2026-12-06 20:01:02,123 INFO crmgraph.access [<request id>] message``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s%(request)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        request_id = getattr(record, "request_id", None)
        record.request = f" [{request_id}]" if request_id else ""
        return redact(super().format(record))


def resolve_format(log_format: str, stream: Any = None) -> str:
    """``json`` or ``text``; ``auto`` asks whether ``stream`` (stderr) is a terminal."""
    if log_format not in FORMATS:
        raise ValueError(
            f"CRMGRAPH_LOG_FORMAT must be one of {', '.join(FORMATS)}, not {log_format!r}"
        )
    if log_format != "auto":
        return log_format
    stream = stream if stream is not None else sys.stderr
    return "text" if getattr(stream, "isatty", lambda: False)() else "json"


def log_level(level: str) -> str:
    if level.lower() not in LEVELS:
        raise ValueError(f"the log level must be one of {', '.join(LEVELS)}, not {level!r}")
    return level.upper()


# Libraries whose debug (or info) lines hold values: SQL parameters
# (aiosqlite, SQLAlchemy's echo, which turns itself on when its logger is at
# info), frames of a WebSocket (its connection_init holds an API key), form
# parts, an outgoing request's URL (a webhook's may hold a token). They stay
# at warning whatever the level, so the debug level is safe to turn on.
QUIET = (
    "aiosqlite",
    "sqlalchemy",
    "websockets",
    "python_multipart",
    "multipart",
    "httpx",
    "httpcore",
)


def log_config(log_format: str, level: str) -> dict[str, Any]:
    """The dictConfig for the server: every logger (crmgraph's, uvicorn's, the
    libraries') writes through one stderr handler, with the request id and
    the redaction, in one format."""
    formatter = {"json": JsonLines, "text": Text}[resolve_format(log_format)]
    return {
        "version": 1,
        "disable_existing_loggers": False,  # crmgraph's loggers exist before this runs
        "filters": {"request_id": {"()": f"{__name__}.RequestId"}},
        "formatters": {"line": {"()": f"{formatter.__module__}.{formatter.__qualname__}"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "filters": ["request_id"],
                "formatter": "line",
            }
        },
        "root": {"level": log_level(level), "handlers": ["stderr"]},
        "loggers": {
            # uvicorn's own handlers would write a second, unformatted copy
            "uvicorn": {"handlers": [], "propagate": True},
            "uvicorn.error": {"handlers": [], "propagate": True},
            # crmgraph writes the access line (it knows the operation)
            "uvicorn.access": {"handlers": [], "propagate": False},
            **{name: {"level": "WARNING"} for name in QUIET},
        },
    }


def access_line(facts: RequestFacts) -> None:
    """The access log's observer: one line per request, once it has ended."""
    if not access_logger.isEnabledFor(logging.INFO):
        return  # (a level above info) nothing to build
    milliseconds = round(facts.seconds * 1000, 2)
    fields = {
        "request_id": facts.request_id,
        "method": facts.method,
        "path": facts.path,
        "status": facts.status,
        "operation": facts.operation_name,
        "operation_type": facts.operation_type,
        "answered_by": facts.answered_by,
        "cost": facts.cost,
        "duration_ms": milliseconds,
        "outcome": facts.outcome,
        "refusal": facts.refusal,
        "principal": facts.principal,
    }
    operation = f" {facts.operation_type or 'operation'} {facts.operation_name or '-'}"
    # made here rather than by access_logger.info, which would look up the
    # caller's frame (a third of a line's cost) for a file and line nobody reads
    record = access_logger.makeRecord(
        access_logger.name,
        logging.INFO,
        __file__,
        0,
        "%s %s %s%s answered_by=%s cost=%s %.2f ms%s",
        (
            facts.method,
            facts.path,
            "-" if facts.status is None else facts.status,  # None: the client left first
            operation if facts.answered_by != "none" else "",
            facts.answered_by,
            "-" if facts.cost is None else facts.cost,
            milliseconds,
            f" refused={facts.refusal}" if facts.refusal else "",
        ),
        None,
        extra={"fields": fields},
    )
    access_logger.handle(record)
