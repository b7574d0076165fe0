"""Structured logs: JSON in production, readable console in development.

Everything goes through structlog, including stdlib records from the Temporal SDK.
Workflow and activity records carry Temporal's ``temporal_workflow`` /
``temporal_activity`` extras; :func:`_flatten_temporal` lifts them into top-level
``workflow_id``, ``run_id``, ``activity_type`` fields, and activities bind
``tenant_id`` through the tenant interceptor, so every line says whose work it is.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog
from structlog.typing import EventDict, WrappedLogger

_SECRET_KEYS = ("secret", "password", "api_key", "token", "credential_json")

_TEMPORAL_FIELDS = {
    "workflow_id": "workflow_id",
    "run_id": "run_id",
    "workflow_type": "workflow_type",
    "activity_id": "activity_id",
    "activity_type": "activity_type",
    "workflow_run_id": "run_id",
    "attempt": "attempt",
    "task_queue": "task_queue",
}


def _flatten_temporal(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    for key in ("temporal_workflow", "temporal_activity"):
        info = event_dict.pop(key, None)
        if isinstance(info, dict):
            for src, dst in _TEMPORAL_FIELDS.items():
                if src in info and dst not in event_dict:
                    event_dict[dst] = info[src]
    return event_dict


def _is_secret(key: object) -> bool:
    return isinstance(key, str) and any(s in key.lower() for s in _SECRET_KEYS)


def _redacted(value: Any, depth: int = 0) -> Any:
    """``value`` with every secret-named key masked, in nested dicts and lists too."""
    if depth > 8:
        return value
    if isinstance(value, dict):
        return {k: "***" if _is_secret(k) else _redacted(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_redacted(v, depth + 1) for v in value]
    if isinstance(value, tuple):
        return tuple(_redacted(v, depth + 1) for v in value)
    return value


def _redact(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """Credentials are never logged, even when a caller passes one by mistake.

    Keys are checked at every level: a connector config logged whole must not leak
    its ``api_key``. Containers are copied, never changed in place.
    """
    for key in list(event_dict):
        if _is_secret(key):
            event_dict[key] = "***"
        elif isinstance(event_dict[key], dict | list | tuple):
            event_dict[key] = _redacted(event_dict[key])
    return event_dict


_configured: tuple[str, str] | None = None


def configure_logging(
    fmt: str = "console", level: str = "INFO", *, workflow_logger: bool = True
) -> None:
    """Route structlog and stdlib logging to one handler on stderr (idempotent).

    ``workflow_logger=False``: the process runs no workflows (a CLI command), so Temporal's
    workflow logger is not touched and the Temporal SDK is not imported for it.
    """
    global _configured
    if workflow_logger:
        # Temporal's workflow logger: info goes in fields, not appended to the message.
        from temporalio import workflow

        workflow.logger.workflow_info_on_message = False
    if _configured == (fmt, level):
        return
    _configured = (fmt, level)
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.ExtraAdder(),
        _flatten_temporal,
        _redact,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info if fmt == "json" else _identity,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("httpx", "httpcore", "alembic", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _identity(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    return event_dict


def get_logger(name: str | None = None) -> Any:
    return structlog.get_logger(name)
