"""A probe every queue serves: proves end to end that a queue has a live worker.

Readiness checks and monitoring run it; it also makes every queue pollable from
day one, before its own activities exist.
"""

from __future__ import annotations

import os
import socket

from temporalio import activity


@activity.defn(name="queue_probe")
async def queue_probe() -> str:
    """Answer with the worker's identity and queue, so callers see who served them."""
    info = activity.info()
    return f"{info.task_queue}@{socket.gethostname()}:{os.getpid()}"
