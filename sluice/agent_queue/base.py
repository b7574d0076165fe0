"""The queue's interface, kept from the seed: ``put``, ``get``, ``close``, ``is_closed``,
``qsize``, with ``get`` returning ``None`` at the end of the stream.

One change on purpose: ``put`` after ``close`` raises :class:`QueueClosed` (the seed's
queue dropped the message silently, so a producer never learnt its events were lost).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from sluice.errors import SluiceError

Message = dict[str, Any]


class QueueClosed(SluiceError):
    """``put`` on a queue that was closed (by this process or another)."""


class AgentMessageQueue(ABC):
    @abstractmethod
    async def put(self, message: Message) -> None:
        """Add a message; waits while a bounded queue is full; raises after ``close``."""

    @abstractmethod
    async def get(self) -> Message | None:
        """The next message, waiting for one; ``None`` once the stream has ended."""

    @abstractmethod
    async def close(self) -> None:
        """End the stream: consumers get what was put, then ``None``. Idempotent."""

    @abstractmethod
    def is_closed(self) -> bool:
        """Whether this handle knows the stream is closed."""

    @abstractmethod
    def qsize(self) -> int:
        """Messages waiting for this handle's consumer (as far as it knows, for Redis)."""
