"""Bookkeeping calls from workflows: short writes to Postgres that must not give up.

Every one of them is idempotent and retried until it succeeds (bounded by a day,
see :data:`sluice.temporal.policies.ATTEMPT_BOOKKEEPING`), so a database outage
pauses a connector workflow instead of failing it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from sluice.temporal import policies

ArgT = TypeVar("ArgT")
ResultT = TypeVar("ResultT")


async def bookkeeping(
    activity: Callable[[ArgT], Awaitable[ResultT]],
    arg: ArgT,
    *,
    summary: str,
    policy: policies.ActivityPolicy = policies.ATTEMPT_BOOKKEEPING,
) -> ResultT:
    """Run a bookkeeping activity with its never-give-up policy."""
    return await workflow.execute_activity(activity, arg, **policy.options(), summary=summary)
