"""AgentMessageQueue: in-process and across processes (Redis Streams), end of stream,
resume after a reconnect, put after close, bounded backlog, the event processor."""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
import redis.asyncio as aioredis

from sluice.agent_queue import (
    AgentEventProcessor,
    InMemoryAgentMessageQueue,
    Message,
    QueueClosed,
    RedisAgentMessageQueue,
)


async def test_in_memory_queue_ends_and_refuses_put_after_close() -> None:
    queue = InMemoryAgentMessageQueue(maxsize=2)
    await queue.put({"type": "a"})
    await queue.put({"type": "b"})
    blocked = asyncio.create_task(queue.put({"type": "c"}))  # back-pressure: full
    await asyncio.sleep(0.05)
    assert not blocked.done() and queue.qsize() == 2
    assert await queue.get() == {"type": "a"}
    await blocked
    await queue.close()
    assert queue.is_closed()
    with pytest.raises(QueueClosed):
        await queue.put({"type": "late"})
    assert [await queue.get(), await queue.get()] == [{"type": "b"}, {"type": "c"}]
    assert await queue.get() is None
    assert await queue.get() is None  # stays ended


@pytest_asyncio.fixture(loop_scope="session")
async def redis_conn(services: dict[str, str]) -> AsyncIterator[Any]:
    conn = aioredis.from_url(services["REDIS_URL"])
    yield conn
    await conn.aclose()


async def produce_in_subprocess(url: str, stream: str, count: int) -> float:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.agent_producer",
        url,
        stream,
        str(count),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    return float(out.decode())


async def test_a_stream_crosses_processes_with_resume_and_end(
    services: dict[str, str], redis_conn: Any
) -> None:
    stream = f"test/{uuid.uuid4().hex[:8]}"
    count = 500
    await produce_in_subprocess(services["REDIS_URL"], stream, count)

    first = RedisAgentMessageQueue(redis_conn, stream, consumer="api", read_count=50)
    got = [await first.get() for _ in range(200)]
    await first.commit()  # a clean disconnect mid-stream
    del first

    again = RedisAgentMessageQueue(redis_conn, stream, consumer="api", read_count=50)
    rest: list[Message] = []
    while (message := await again.get()) is not None:
        rest.append(message)
    seqs = [m["seq"] for m in got + rest if m]
    assert seqs == list(range(count)), "resumed where it stopped: nothing lost or repeated"
    assert again.is_closed() and await again.get() is None

    late = RedisAgentMessageQueue(redis_conn, stream)  # the producer closed it elsewhere
    with pytest.raises(QueueClosed):
        await late.put({"type": "token"})


async def test_a_crashed_consumer_gets_at_most_one_batch_again(redis_conn: Any) -> None:
    stream = f"test/{uuid.uuid4().hex[:8]}"
    producer = RedisAgentMessageQueue(redis_conn, stream)
    for i in range(30):
        await producer.put({"seq": i})
    await producer.close()
    crashed = RedisAgentMessageQueue(redis_conn, stream, consumer="c", read_count=10)
    for _ in range(15):
        await crashed.get()  # no commit: the process "dies" here
    resumed = RedisAgentMessageQueue(redis_conn, stream, consumer="c", read_count=10)
    first = await resumed.get()
    assert first is not None and first["seq"] == 10  # the unfinished batch comes again


async def test_the_backlog_is_bounded_by_trimming_the_oldest(redis_conn: Any) -> None:
    stream = f"test/{uuid.uuid4().hex[:8]}"
    queue = RedisAgentMessageQueue(redis_conn, stream, maxlen=100)
    for i in range(1_000):
        await queue.put({"seq": i})
    length = await redis_conn.xlen(queue.key)
    assert 100 <= length < 1_000  # approximate trimming (MAXLEN ~) keeps about maxlen
    reader = RedisAgentMessageQueue(redis_conn, stream)
    first = await reader.get()
    assert first is not None and first["seq"] >= 1_000 - length


async def test_the_event_processor_dispatches_until_the_end(
    services: dict[str, str], redis_conn: Any
) -> None:
    stream = f"test/{uuid.uuid4().hex[:8]}"
    await produce_in_subprocess(services["REDIS_URL"], stream, 100)
    seen: list[int] = []

    async def on_token(message: Message) -> None:
        if message["seq"] == 3:
            raise ValueError("a bad event does not stop the stream")
        seen.append(message["seq"])

    processor = AgentEventProcessor(RedisAgentMessageQueue(redis_conn, stream), {"token": on_token})
    assert await processor.run() == 99
    assert processor.failed == 1 and len(seen) == 99
