"""The checkpointed connector protocol every source implements.

A connector is built from a validated config model and a :class:`ConnectorContext`.
``load(checkpoint)`` yields documents and per-document failures, each with the
checkpoint after it; the last item's checkpoint (or the final one from
``final_checkpoint``) has ``done=True`` once the pass has finished.
``list_ids()`` lists the source's document IDs cheaply, for pruning;
``list_permissions()`` lists each document's ACL just as cheaply, and ``list_groups()``
the source's groups, for permission sync (no content is read, nothing is re-embedded).
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

from sluice.connectors.models import Checkpoint, ConnectorOutput, Document, DocumentFailure

PUBLIC = "public"
"""The principal every user holds: a document whose ACL has it is readable by anyone."""


class ConnectorConfig(BaseModel):
    """Base for per-source configuration; unknown fields are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid")


ConfigT = TypeVar("ConfigT", bound=ConnectorConfig)
T = TypeVar("T")


@dataclass(frozen=True)
class ConnectorContext:
    """What a connector may know about the run that drives it."""

    tenant_id: str = "default"
    cc_pair_id: int = 0
    attempt: int = 1
    """Temporal activity attempt (1 on the first try); lets fault injection act once."""
    keepalive: Callable[[], None] = field(default=lambda: None)
    credential: dict[str, Any] | None = field(default=None, repr=False)
    """The cc-pair's credential secret, loaded inside the fetch activity from its row
    (never an activity input or result, so never in history; never logged)."""
    """Call while waiting without producing (a rate limit, a slow page): proves the
    connector is alive, so the heartbeat timeout only catches a connector that hangs."""

    async def wait(self, seconds: float, every: float = 1.0) -> None:
        """Sleep ``seconds`` (say, a rate limit's Retry-After), staying alive meanwhile."""
        remaining = seconds
        while remaining > 0:
            self.keepalive()
            step = min(every, remaining)
            await asyncio.sleep(step)
            remaining -= step
        self.keepalive()

    async def alive_while(self, operation: Awaitable[T], every: float = 5.0) -> T:
        """Await a *bounded* operation (one with its own timeout, like an HTTP request),
        staying alive meanwhile. Never use it around something that can wait forever:
        that would hide a hang from the heartbeat timeout."""

        async def beat() -> None:
            while True:
                self.keepalive()
                await asyncio.sleep(every)

        beater = asyncio.create_task(beat())
        try:
            return await operation
        finally:
            beater.cancel()


class Connector(ABC, Generic[ConfigT]):
    """Base class: subclasses set ``source`` and ``config_model`` and implement two methods."""

    source: ClassVar[str]
    config_model: ClassVar[type[ConnectorConfig]]

    def __init__(self, config: ConfigT, context: ConnectorContext | None = None) -> None:
        self.config = config
        self.context = context or ConnectorContext()

    def validate_source(self) -> None:
        """Check that the source is reachable/usable; raise ConnectorConfigError if not."""

    @abstractmethod
    def load(self, checkpoint: Checkpoint) -> AsyncIterator[ConnectorOutput]:
        """Yield documents and failures from ``checkpoint`` on, each with its next checkpoint."""

    @abstractmethod
    def list_ids(self) -> AsyncIterator[str]:
        """Yield every document ID currently at the source (cheap: no content)."""

    async def list_permissions(self) -> AsyncIterator[tuple[str, list[str]]]:
        """Yield ``(document ID, ACL)`` for every document at the source, without content.

        The default suits sources whose documents anyone may read (the web, synthetic
        data): every listed ID is ``public``. Sources with permissions override it."""
        async for doc_id in self.list_ids():
            yield doc_id, [PUBLIC]

    def list_groups(self) -> dict[str, list[str]] | None:
        """The source's groups and their members' user names, or ``None`` when the source
        has no groups (then the group sync leaves the stored groups alone)."""
        return None

    async def fetch_document(self, doc_id: str) -> Document | DocumentFailure:
        """Fetch one document again by its ID ("retry failed documents"). Sources that can
        override this; the rest report each document as not re-fetchable."""
        return DocumentFailure(
            document_id=doc_id,
            message=f"the {self.source} connector cannot fetch documents by ID (retry-failed)",
        )

    @classmethod
    def fetches_by_id(cls) -> bool:
        return cls.fetch_document is not Connector.fetch_document

    async def load_documents(
        self, ids: Sequence[str], checkpoint: Checkpoint
    ) -> AsyncIterator[ConnectorOutput]:
        """Fetch ``ids`` again, in order; the cursor is how many are done."""
        cursor = checkpoint.cursor
        start = cursor if isinstance(cursor, int) and not isinstance(cursor, bool) else 0
        for index in range(start, len(ids)):
            result = await self.fetch_document(ids[index])
            after = Checkpoint(cursor=index + 1, done=index + 1 == len(ids))
            if isinstance(result, Document):
                yield ConnectorOutput(kind="document", document=result, checkpoint=after)
            else:
                yield ConnectorOutput(kind="failure", failure=result, checkpoint=after)
