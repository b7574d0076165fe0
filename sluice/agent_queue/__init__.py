"""The seed's ``AgentMessageQueue``: agent (chat) events from a producer to a consumer.

Two implementations of one interface (:class:`~sluice.agent_queue.base.AgentMessageQueue`):
in-process on asyncio (:mod:`.memory`) and across processes on Redis Streams
(:mod:`.redis_streams`), so an activity in a worker can stream events to an API process.
:class:`~sluice.agent_queue.processor.AgentEventProcessor` consumes and dispatches them.
"""

from sluice.agent_queue.base import AgentMessageQueue, Message, QueueClosed
from sluice.agent_queue.memory import InMemoryAgentMessageQueue
from sluice.agent_queue.processor import AgentEventProcessor
from sluice.agent_queue.redis_streams import RedisAgentMessageQueue

__all__ = [
    "AgentEventProcessor",
    "AgentMessageQueue",
    "InMemoryAgentMessageQueue",
    "Message",
    "QueueClosed",
    "RedisAgentMessageQueue",
]
