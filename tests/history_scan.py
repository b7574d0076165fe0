"""Every payload of a workflow's history, for tests that check what history holds."""

from __future__ import annotations

from collections.abc import Iterator

from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload
from temporalio.api.history.v1 import History
from temporalio.client import Client


def payloads_in(message: Message) -> Iterator[Payload]:
    """Every ``Payload`` anywhere inside ``message`` (inputs, results, heartbeats,
    failures' encoded attributes, summaries, memos, headers)."""
    if isinstance(message, Payload):
        yield message
        return
    for field, value in message.ListFields():
        if field.type != field.TYPE_MESSAGE:
            continue
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            values = list(value.values())
        elif field.is_repeated:
            values = list(value)
        else:
            values = [value]
        for item in values:
            if isinstance(item, Message):
                yield from payloads_in(item)


async def histories(client: Client, workflow_id: str) -> list[History]:
    """The raw history of every run of ``workflow_id`` (the chain of continue-as-new)."""
    found = []
    async for wf in client.list_workflows(f'WorkflowId = "{workflow_id}"'):
        handle = client.get_workflow_handle(workflow_id, run_id=wf.run_id)
        found.append(History(events=[e async for e in handle.fetch_history_events()]))
    return found
