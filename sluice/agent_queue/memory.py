"""In-process queue on ``asyncio.Queue``: bounded, so a slow consumer applies back-pressure."""

from __future__ import annotations

import asyncio

from sluice.agent_queue.base import AgentMessageQueue, Message, QueueClosed

_END = object()


class InMemoryAgentMessageQueue(AgentMessageQueue):
    def __init__(self, maxsize: int = 1000) -> None:
        self._queue: asyncio.Queue[object] = asyncio.Queue(maxsize)
        self._closed = False
        self._ended = False

    async def put(self, message: Message) -> None:
        if self._closed:
            raise QueueClosed("put after close: the stream has ended")
        await self._queue.put(message)

    async def get(self) -> Message | None:
        if self._ended:
            return None
        item = await self._queue.get()
        if item is _END:
            self._ended = True
            return None
        return item  # type: ignore[return-value]

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            await self._queue.put(_END)

    def is_closed(self) -> bool:
        return self._closed

    def qsize(self) -> int:
        return self._queue.qsize() - (1 if self._closed and not self._ended else 0)
