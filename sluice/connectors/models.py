"""The connector protocol's data: documents, per-document failures and checkpoints.

These models cross process boundaries (staged batches, activity results, workflow
history), so they are plain pydantic models with JSON-safe fields only.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, JsonValue


class Section(BaseModel):
    """One piece of a document's text, optionally with its own link (a heading, a page...)."""

    text: str
    link: str | None = None


class Document(BaseModel):
    """A document as a connector yields it; the unit of indexing, keyed by ``id``."""

    id: str = Field(min_length=1, max_length=2000)
    source: str
    semantic_identifier: str = Field(description="Human-readable title shown in results.")
    link: str | None = None
    sections: list[Section]
    metadata: dict[str, str | list[str]] = Field(default_factory=dict)
    acl: list[str] = Field(
        default_factory=list,
        description="Principals that may read the document, e.g. 'user:alice', 'group:eng'.",
    )
    updated_at: datetime | None = None

    def content_hash(self) -> str:
        """A stable hash of everything that is indexed: equal hash means nothing to redo."""
        payload = self.model_dump(mode="json", exclude={"updated_at"})
        raw = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(raw).hexdigest()

    @property
    def text(self) -> str:
        return "\n\n".join(s.text for s in self.sections if s.text)


class DocumentFailure(BaseModel):
    """A document the connector could not produce; recorded as an index-attempt error."""

    document_id: str | None = None
    document_link: str | None = None
    message: str


class Checkpoint(BaseModel):
    """Where a connector is in its source: small JSON, carried in workflow history.

    ``cursor`` is connector-specific (a path, a crawl frontier, an offset).
    ``since`` bounds incremental runs (seconds since the epoch); ``None`` means a full run.
    ``done`` is set once a pass over the source has finished.
    """

    cursor: JsonValue = None
    since: float | None = None
    done: bool = False


class ConnectorOutput(BaseModel):
    """One item from :meth:`Connector.load`, with the checkpoint *after* it.

    Carrying the checkpoint on every item lets the fetch activity stop at any batch
    boundary and heartbeat its exact position.
    """

    kind: Literal["document", "failure"]
    document: Document | None = None
    failure: DocumentFailure | None = None
    checkpoint: Checkpoint


def as_json(value: Any) -> Any:
    """JSON-safe form of a model or plain value (for heartbeats and logs)."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    return value
