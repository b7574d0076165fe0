"""Bookkeeping calls from workflows: short writes to Postgres that must not give up.

Every one of them is idempotent and retried until it succeeds (bounded by a day,
see :data:`sluice.temporal.policies.ATTEMPT_BOOKKEEPING`), so a database outage
pauses a connector workflow instead of failing it. While a call is still retrying
after :data:`~sluice.temporal.policies.BOOKKEEPING_STUCK_AFTER`, the caller is told
(the connector shows ``stuck`` in the Web UI) and a warning is logged.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from sluice.temporal import policies
    from workflows import patches

ArgT = TypeVar("ArgT")
ResultT = TypeVar("ResultT")


async def bookkeeping(
    activity: Callable[[ArgT], Awaitable[ResultT]],
    arg: ArgT,
    *,
    summary: str,
    policy: policies.ActivityPolicy = policies.ATTEMPT_BOOKKEEPING,
    on_stuck: Callable[[bool], None] | None = None,
) -> ResultT:
    """Run a bookkeeping activity with its never-give-up policy; ``on_stuck(True)`` while
    it has been retrying for a while, ``on_stuck(False)`` once it got through."""
    alert = on_stuck is not None and workflow.patched(patches.BOOKKEEPING_STUCK_ALERT)
    call = workflow.execute_activity(activity, arg, **policy.options(), summary=summary)
    if not alert or on_stuck is None:
        return await call
    task = asyncio.ensure_future(call)
    try:
        await workflow.wait_condition(
            task.done,
            timeout=policies.BOOKKEEPING_STUCK_AFTER,
            timeout_summary=f"alert if still retrying: {summary}",
        )
    except TimeoutError:
        workflow.logger.warning(
            "bookkeeping still retrying after %ss (is Postgres reachable?): %s",
            policies.BOOKKEEPING_STUCK_AFTER.total_seconds(),
            summary,
        )
        on_stuck(True)
        try:
            return await task
        finally:
            on_stuck(False)
    except asyncio.CancelledError:
        task.cancel()
        raise
    return task.result()
