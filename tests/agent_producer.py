"""A producer in its own process: ``python -m tests.agent_producer URL STREAM COUNT``.

Puts COUNT events on the Redis agent queue STREAM, closes it, and prints how long the
puts took (the cross-process tests and ``bench/agent_queue.py`` run it).
"""

from __future__ import annotations

import asyncio
import sys
import time

import redis.asyncio as aioredis

from sluice.agent_queue import RedisAgentMessageQueue


async def produce(url: str, stream: str, count: int) -> float:
    conn = aioredis.from_url(url)
    try:
        queue = RedisAgentMessageQueue(conn, stream, maxlen=max(10_000, count * 2))
        started = time.perf_counter()
        for i in range(count):
            await queue.put({"type": "token", "seq": i, "text": f"word{i}"})
        await queue.close()
        return time.perf_counter() - started
    finally:
        await conn.aclose()


if __name__ == "__main__":
    url, stream, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    print(f"{asyncio.run(produce(url, stream, count)):.4f}")
