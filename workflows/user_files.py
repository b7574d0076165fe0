"""One workflow per user-file operation: process (``user_file/{tenant}/{id}``), move, delete.

Each runs one activity on the operation's own queue and shows the outcome in the Web UI
(details: ready with N chunks, or failed and why). Processing, moves and deletion of a
file are ordered by the file's row lock in Postgres, not by the workflows, so a delete
need not wait for processing to end.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from sluice.queues import TaskQueue
    from sluice.temporal import policies, workflow_ids
    from sluice.userfiles.models import UserFileOutcome, UserFileRequest


def _details(outcome: UserFileOutcome) -> None:
    workflow.set_current_details(
        f"user file {outcome.file_id}: {outcome.status}"
        + (f" ({outcome.detail})" if outcome.detail else "")
    )


@workflow.defn(name=workflow_ids.USER_FILE)
class UserFileWorkflow:
    @workflow.run
    async def run(self, request: UserFileRequest) -> UserFileOutcome:
        workflow.set_current_details(f"user file {request.file_id}: parsing and indexing")
        outcome: UserFileOutcome = await workflow.execute_activity(
            "process_user_file",
            request,
            result_type=UserFileOutcome,
            **policies.USER_FILE_PROCESS.options(),
            summary=f"index user file {request.file_id}",
        )
        _details(outcome)
        return outcome


@workflow.defn(name=workflow_ids.USER_FILE_MOVE)
class UserFileMoveWorkflow:
    @workflow.run
    async def run(self, request: UserFileRequest) -> UserFileOutcome:
        outcome: UserFileOutcome = await workflow.execute_activity(
            "move_user_file",
            request,
            result_type=UserFileOutcome,
            **policies.USER_FILE_CHANGE.options(),
            summary=f"move user file {request.file_id} to {request.project or 'no project'}",
        )
        _details(outcome)
        return outcome


@workflow.defn(name=workflow_ids.USER_FILE_DELETE)
class UserFileDeleteWorkflow:
    @workflow.run
    async def run(self, request: UserFileRequest) -> UserFileOutcome:
        outcome: UserFileOutcome = await workflow.execute_activity(
            "delete_user_file",
            request,
            result_type=UserFileOutcome,
            **policies.USER_FILE_CHANGE.options(task_queue=TaskQueue.USER_FILE_DELETE),
            summary=f"delete user file {request.file_id}",
        )
        _details(outcome)
        return outcome
