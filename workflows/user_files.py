"""One workflow per user-file operation: process (``user_file/{tenant}/{id}``), move, delete.

Each runs one activity on the operation's own queue and shows the outcome in the Web UI
(details: ready with N chunks, or failed and why). Processing, moves and deletion of a
file are ordered by the file's row lock in Postgres, not by the workflows, so a delete
need not wait for processing to end.
"""

from __future__ import annotations

from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from sluice.queues import TaskQueue
    from sluice.temporal import policies, workflow_ids
    from sluice.userfiles.models import UserFileOutcome, UserFileRequest


async def _run_one(
    activity: str, request: UserFileRequest, options: dict[str, Any], summary: str
) -> UserFileOutcome:
    """The operation's one activity, then its outcome in the workflow's details."""
    outcome: UserFileOutcome = await workflow.execute_activity(
        activity, request, result_type=UserFileOutcome, **options, summary=summary
    )
    workflow.set_current_details(
        f"user file {outcome.file_id}: {outcome.status}"
        + (f" ({outcome.detail})" if outcome.detail else "")
    )
    return outcome


@workflow.defn(name=workflow_ids.USER_FILE)
class UserFileWorkflow:
    @workflow.run
    async def run(self, request: UserFileRequest) -> UserFileOutcome:
        workflow.set_current_details(f"user file {request.file_id}: parsing and indexing")
        return await _run_one(
            "process_user_file",
            request,
            policies.USER_FILE_PROCESS.options(),
            f"index user file {request.file_id}",
        )


@workflow.defn(name=workflow_ids.USER_FILE_MOVE)
class UserFileMoveWorkflow:
    @workflow.run
    async def run(self, request: UserFileRequest) -> UserFileOutcome:
        return await _run_one(
            "move_user_file",
            request,
            policies.USER_FILE_CHANGE.options(),
            f"move user file {request.file_id} to {request.project or 'no project'}",
        )


@workflow.defn(name=workflow_ids.USER_FILE_DELETE)
class UserFileDeleteWorkflow:
    @workflow.run
    async def run(self, request: UserFileRequest) -> UserFileOutcome:
        return await _run_one(
            "delete_user_file",
            request,
            policies.USER_FILE_CHANGE.options(task_queue=TaskQueue.USER_FILE_DELETE),
            f"delete user file {request.file_id}",
        )
