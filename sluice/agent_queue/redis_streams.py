"""The queue across processes, on a Redis Stream.

* ``put`` is ``XADD`` through a Lua script that first checks the stream's ``closed`` key,
  so a put after ``close`` raises :class:`QueueClosed` in any process, atomically.
* ``close`` sets that key and appends one end-of-stream entry; a consumer's ``get``
  returns ``None`` when it reads it.
* **Bounded backlog: the oldest events are trimmed** (``XADD MAXLEN ~ maxlen``). A chat
  stream must never block the agent that produces it, so a consumer that falls more than
  ``maxlen`` events behind loses the oldest ones rather than stalling the producer.
* **Resume**: a named consumer's position is stored in Redis (``<key>:cursor:<name>``)
  each time it reads a new batch, so a consumer that reconnects (a new process, same
  name) goes on after the last batch it had read: at-least-once, at most one batch
  (``read_count`` events) delivered twice after a crash, nothing skipped.
* Every key expires ``ttl_seconds`` after its last write, so abandoned streams vanish.
"""

from __future__ import annotations

import json
from collections import deque
from typing import Any

from sluice.agent_queue.base import AgentMessageQueue, Message, QueueClosed

_PUT = """
if redis.call('EXISTS', KEYS[2]) == 1 then
  return redis.error_reply('CLOSED')
end
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 'm', ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return id
"""

_CLOSE = """
if redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[1]) then
  redis.call('XADD', KEYS[1], '*', 'end', '1')
  redis.call('EXPIRE', KEYS[1], ARGV[1])
  return 1
end
return 0
"""


class RedisAgentMessageQueue(AgentMessageQueue):
    def __init__(
        self,
        redis: Any,
        stream: str,
        *,
        consumer: str | None = None,
        maxlen: int = 10_000,
        ttl_seconds: int = 86_400,
        read_count: int = 100,
        block_ms: int = 1_000,
    ) -> None:
        self.redis = redis
        self.key = f"sluice:agent:{stream}"
        self.closed_key = f"{self.key}:closed"
        self.cursor_key = f"{self.key}:cursor:{consumer}" if consumer else None
        self.maxlen = maxlen
        self.ttl = ttl_seconds
        self.read_count = read_count
        self.block_ms = block_ms
        self.position: str | None = None
        """ID of the last entry handed out (``None``: not read yet)."""
        self._buffer: deque[tuple[str, dict[bytes, bytes]]] = deque()
        self._closed = False
        self._ended = False
        self._put = redis.register_script(_PUT)
        self._close = redis.register_script(_CLOSE)

    async def put(self, message: Message) -> None:
        data = json.dumps(message, separators=(",", ":"), default=str)
        try:
            await self._put(keys=[self.key, self.closed_key], args=[data, self.maxlen, self.ttl])
        except Exception as exc:
            if "CLOSED" in str(exc):
                self._closed = True
                raise QueueClosed(f"put after close on {self.key}") from None
            raise

    async def close(self) -> None:
        await self._close(keys=[self.key, self.closed_key], args=[self.ttl])
        self._closed = True

    def is_closed(self) -> bool:
        return self._closed or self._ended

    def qsize(self) -> int:
        return len(self._buffer)

    async def backlog(self) -> int:
        """Entries after this consumer's position on the server (end marker included)."""
        start = "-" if self.position is None else f"({self.position}"
        return len(await self.redis.xrange(self.key, start, "+"))

    async def get(self) -> Message | None:
        while not self._buffer:
            if self._ended:
                return None
            await self._fill()
        entry_id, fields = self._buffer.popleft()
        self.position = entry_id
        if b"end" in fields:
            self._ended = True
            self._buffer.clear()
            await self._commit(entry_id)
            return None
        return json.loads(fields[b"m"])  # type: ignore[no-any-return]

    async def _fill(self) -> None:
        if self.position is None:
            stored = await self.redis.get(self.cursor_key) if self.cursor_key else None
            self.position = stored.decode() if stored else "0-0"
        await self._commit(self.position)
        reply = await self.redis.xread(
            {self.key: self.position}, count=self.read_count, block=self.block_ms
        )
        for _, entries in reply or []:
            for entry_id, fields in entries:
                self._buffer.append((_text(entry_id), fields))

    async def commit(self) -> None:
        """Store this consumer's position now (a clean disconnect; reads also store it)."""
        if self.position is not None:
            await self._commit(self.position)

    async def _commit(self, entry_id: str) -> None:
        if self.cursor_key and entry_id != "0-0":
            await self.redis.set(self.cursor_key, entry_id, ex=self.ttl)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
