"""Source name -> connector class, and config validation with one-line errors.

API handlers and activities build connectors from stored JSON configs; a bad config must
surface as a :class:`ConnectorConfigError` (non-retryable in Temporal) whose message names
the offending field, not as a multi-line pydantic dump.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from sluice.connectors.base import Connector, ConnectorContext
from sluice.connectors.filesystem import FilesystemConnector
from sluice.connectors.synthetic import SyntheticConnector
from sluice.connectors.web import WebConnector
from sluice.errors import ConnectorConfigError

CONNECTORS: dict[str, type[Connector[Any]]] = {
    cls.source: cls for cls in (FilesystemConnector, SyntheticConnector, WebConnector)
}


def _describe(error: ValidationError) -> str:
    """``connector config field 'a.b': message; ...`` on one line."""
    parts: list[str] = []
    for item in error.errors(include_url=False):
        message = " ".join(str(item["msg"]).removeprefix("Value error, ").split())
        location = ".".join(str(part) for part in item["loc"])
        parts.append(
            f"connector config field {location!r}: {message}"
            if item["loc"]
            else f"connector config: {message}"
        )
    return "; ".join(parts)


def build_connector(
    source: str, config: dict[str, Any], context: ConnectorContext | None = None
) -> Connector[Any]:
    """Validate ``config`` against the source's model and build the connector."""
    cls = CONNECTORS.get(source)
    if cls is None:
        expected = ", ".join(sorted(CONNECTORS))
        raise ConnectorConfigError(f"unknown source {source!r}; expected one of: {expected}")
    try:
        model = cls.config_model.model_validate(config)
    except ValidationError as exc:
        raise ConnectorConfigError(_describe(exc)) from None
    return cls(model, context)


def config_fields(source: str) -> list[str]:
    """The settings a source's config has (empty for an unknown source)."""
    cls = CONNECTORS.get(source)
    return list(cls.config_model.model_fields) if cls is not None else []


def validate_config(source: str, config: dict[str, Any]) -> dict[str, Any]:
    """Build, check the source is usable, and return the normalised JSON config."""
    connector = build_connector(source, config)
    connector.validate_source()
    return connector.config.model_dump(mode="json")
