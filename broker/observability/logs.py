"""Structured logs: one JSON object a line, with the request id, and nothing secret or personal.

stdlib loggers (Django, Celery, ours) and structlog loggers go through the same
`ProcessorFormatter`, so every line has the same fields: timestamp, level, logger,
event, request_id, and whatever the caller passed as structured values (`extra=`).
"""

from __future__ import annotations

import logging
import logging.config
import re
from collections.abc import Mapping
from typing import Any

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

MASK = "[masked]"
# Keys whose values are never logged, compared lowercased with "-" as "_" and without "http_"
# (so that request.META's HTTP_AUTHORIZATION and a header's "Authorization" are both caught).
SECRET_KEYS = frozenset(
    {
        "password",
        "secret",
        "token",
        "authorization",
        "proxy_authorization",
        "cookie",
        "set_cookie",
        "client_assertion",
        "code",
        "email",
        "subject_ref",
        "subject_refs",
        "api_key",
        "private_key",
        "kek",
        "dpop",
        "sessionid",
        "session_key",
        "nonce",
        "id_token",
    }
)
SECRET_SUFFIXES = ("password", "secret", "token", "assertion", "cookie", "authorization", "email", "_key")
# Objects whose repr carries more than a log needs: Django's request (its full URL, with the
# query string of an OpenID Connect callback) and the development server's socket; Celery's
# `data` (the task's arguments as reprs, and the traceback a second time).
DROPPED_KEYS = frozenset({"request", "positional_args", "data"})
# Credentials and e-mail addresses that a message may carry in its text.
_CREDENTIAL_IN_TEXT = re.compile(r"\b(Bearer|Basic|DPoP)\s+[A-Za-z0-9._~+/=-]+", re.IGNORECASE)
_EMAIL_IN_TEXT = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")


def is_secret(key: str) -> bool:
    name = key.lower().replace("-", "_").removeprefix("http_")
    return name in SECRET_KEYS or name.endswith(SECRET_SUFFIXES)


def scrub_text(text: str) -> str:
    """Mask bearer credentials and e-mail addresses inside free text."""
    return _EMAIL_IN_TEXT.sub(MASK, _CREDENTIAL_IN_TEXT.sub(rf"\1 {MASK}", text))


def scrub(value: Any, depth: int = 0) -> Any:
    """A copy of the value with secret keys masked, at any depth (up to a sane limit)."""
    if depth > 8:
        return MASK
    if isinstance(value, Mapping):
        return {
            key: MASK if isinstance(key, str) and is_secret(key) else scrub(item, depth + 1)
            for key, item in value.items()
        }
    if isinstance(value, tuple):
        return tuple(scrub(item, depth + 1) for item in value)
    if isinstance(value, list):
        return [scrub(item, depth + 1) for item in value]
    if isinstance(value, str):
        return scrub_text(value)
    return value


def redact(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """Drop objects that must not be rendered, and mask secret and personal values."""
    cleaned: EventDict = {}
    for key, value in event_dict.items():
        if key in DROPPED_KEYS:
            continue
        if key.startswith("_") or key in {"exc_info", "stack_info"}:
            cleaned[key] = value  # structlog's own bookkeeping, consumed before rendering
        elif is_secret(key):
            cleaned[key] = MASK
        else:
            cleaned[key] = scrub(value)
    return cleaned


FIRST_FIELDS = ("timestamp", "level", "logger", "event", "request_id")


def with_request_id(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """Every line has a request_id (null outside a request, or a task that carries none); fields in order."""
    event_dict.setdefault("request_id", None)
    first = {key: event_dict.pop(key) for key in FIRST_FIELDS if key in event_dict}
    return {**first, **event_dict}


# What every line gets, whether it comes from structlog or from a stdlib logger.
TIMESTAMPER = structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp")
SHARED: list[Processor] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    TIMESTAMPER,
]


class StructuredFormatter(structlog.stdlib.ProcessorFormatter):
    """The one formatter: JSON (production) or a readable console (the demo).

    A stdlib record's %-arguments are scrubbed before they are put into the message: a dict
    passed as an argument shows its keys, not its secrets.
    """

    def __init__(self, renderer: str = "json") -> None:
        final: list[Processor] = [redact, with_request_id, structlog.stdlib.ProcessorFormatter.remove_processors_meta]
        if renderer == "console":
            final.append(structlog.dev.ConsoleRenderer())
        else:
            final += [structlog.processors.format_exc_info, structlog.processors.JSONRenderer(sort_keys=False)]
        super().__init__(foreign_pre_chain=[*SHARED, structlog.stdlib.ExtraAdder()], processors=final)

    def format(self, record: logging.LogRecord) -> str:
        record = logging.makeLogRecord(record.__dict__)
        # What another handler's formatter left on the shared record: the unscrubbed message.
        record.__dict__.pop("message", None)
        record.__dict__.pop("asctime", None)
        if record.args and not getattr(record, "_logger", None):
            record.args = scrub(record.args)
        return super().format(record)


def configure(logging_settings: dict[str, Any]) -> None:
    """structlog's loggers hand their events to stdlib logging, which settings.LOGGING configures."""
    structlog.configure(
        processors=[
            *SHARED,
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    logging.config.dictConfig(logging_settings)
