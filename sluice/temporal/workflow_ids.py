"""Every workflow's ID and type name, defined once and importable without workflow code.

IDs are readable and deterministic: they make each workflow a singleton (one connector
workflow per cc-pair, one swap per tenant...) and let the CLI find a workflow from what
a person typed, without importing the workflow modules (and the activity, database and
embedding code they pull in): ``sluice connector status`` stays a light command.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sluice.bulk import BulkRequest

CONNECTOR = "ConnectorWorkflow"
DELETION = "ConnectorDeletionWorkflow"
PRUNING = "ConnectorPruningWorkflow"
PERMISSION_SYNC = "ConnectorPermissionSyncWorkflow"
BULK = "BulkConnectorsWorkflow"
MODEL_SWAP = "ModelSwapWorkflow"
SWEEP = "SweepWorkflow"
DOCUMENT_INDEX = "DocumentIndexWorkflow"
USER_FILE = "UserFileWorkflow"
USER_FILE_MOVE = "UserFileMoveWorkflow"
USER_FILE_DELETE = "UserFileDeleteWorkflow"
CSV_EXPORT = "CsvExportWorkflow"
SANDBOX = "SandboxWorkflow"


def connector_workflow_id(tenant_id: str, cc_pair_id: int) -> str:
    """One connector workflow per cc-pair, ever."""
    return f"connector/{tenant_id}/{cc_pair_id}"


def deletion_workflow_id(tenant_id: str, cc_pair_id: int) -> str:
    """One deletion per cc-pair at a time: a second request finds the first."""
    return f"connector-deletion/{tenant_id}/{cc_pair_id}"


def pruning_workflow_id(tenant_id: str, cc_pair_id: int) -> str:
    return f"connector-pruning/{tenant_id}/{cc_pair_id}"


def permission_sync_workflow_id(tenant_id: str, cc_pair_id: int) -> str:
    return f"connector-permission-sync/{tenant_id}/{cc_pair_id}"


def bulk_workflow_id(request: BulkRequest) -> str:
    return f"bulk/{request.tenant_id}/{request.operation.value}/{request.selector.describe()}"


def model_swap_workflow_id(tenant_id: str) -> str:
    """One swap per tenant: a second request finds the first."""
    return f"model-swap/{tenant_id}"


def document_index_workflow_id(tenant_id: str, document_id: str) -> str:
    """One index workflow per document: its index types build side by side in it, and a
    request made while it runs (a version bump, a delete) is a signal to it, so two builds
    of one document (and so of one document and index type) never run at once."""
    return f"document-index/{tenant_id}/{document_id}"


def user_file_workflow_id(tenant_id: str, file_id: int) -> str:
    """One processing workflow per uploaded file (the sweep starts a lost one again)."""
    return f"user_file/{tenant_id}/{file_id}"


def user_file_move_workflow_id(tenant_id: str, file_id: int) -> str:
    """One move of a file at a time: moves of one file are applied in order."""
    return f"user_file_move/{tenant_id}/{file_id}"


def user_file_delete_workflow_id(tenant_id: str, file_id: int) -> str:
    """One deletion per file: a second request finds the first."""
    return f"user_file_delete/{tenant_id}/{file_id}"


def csv_export_workflow_id(tenant_id: str, export_id: str) -> str:
    return f"csv_export/{tenant_id}/{export_id}"


def sandbox_workflow_id(tenant_id: str, run_id: str) -> str:
    return f"sandbox/{tenant_id}/{run_id}"
