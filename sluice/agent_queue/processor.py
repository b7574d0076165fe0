"""The seed's ``AgentEventProcessor``: consume a queue until it ends, dispatching by type."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import structlog

from sluice.agent_queue.base import AgentMessageQueue, Message

Handler = Callable[[Message], Awaitable[None]]

log = structlog.get_logger(__name__)


class AgentEventProcessor:
    """Calls ``handlers[message["type"]]`` (or ``default``) for each message, in order.

    A handler's error is logged and counted, and the stream goes on: one bad event does
    not stop a chat's stream.
    """

    def __init__(
        self, queue: AgentMessageQueue, handlers: dict[str, Handler], default: Handler | None = None
    ) -> None:
        self.queue = queue
        self.handlers = handlers
        self.default = default
        self.handled = 0
        self.failed = 0

    async def run(self) -> int:
        """Process until end of stream; returns the number of messages handled."""
        while (message := await self.queue.get()) is not None:
            handler = self.handlers.get(str(message.get("type")), self.default)
            if handler is None:
                continue
            try:
                await handler(message)
                self.handled += 1
            except Exception:
                self.failed += 1
                log.exception("agent event handler failed", event_type=message.get("type"))
        return self.handled
