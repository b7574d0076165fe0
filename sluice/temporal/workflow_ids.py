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
