"""In-process queue on ``asyncio.Queue``: bounded, so a slow consumer applies back-pressure."""

from __future__ import annotations

import asyncio

from sluice.agent_queue.base import AgentMessageQueue, Message, QueueClosed

_END = object()


class InMemoryAgentMessageQueue(AgentMessageQueue):
    """``close`` never waits: the end marker is queued only if there is room (a consumer may
    be waiting on an empty queue); otherwise ``get`` ends once the queue has drained."""

    def __init__(self, maxsize: int = 1000) -> None:
        self._queue: asyncio.Queue[object] = asyncio.Queue(maxsize)
        self._closed = False
        self._ended = False
        self._end_queued = False

    async def put(self, message: Message) -> None:
        if self._closed:
            raise QueueClosed("put after close: the stream has ended")
        await self._queue.put(message)

    async def get(self) -> Message | None:
        if self._ended or (self._closed and self._queue.empty()):
            self._ended = True
            return None
        item = await self._queue.get()
        if item is _END:
            self._ended = True
            return None
        return item  # type: ignore[return-value]

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            if not self._queue.full():
                self._queue.put_nowait(_END)
                self._end_queued = True

    def is_closed(self) -> bool:
        return self._closed

    def qsize(self) -> int:
        return self._queue.qsize() - (1 if self._end_queued and not self._ended else 0)
