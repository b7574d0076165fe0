"""Worker versioning (opt-in): SLUICE_WORKER_DEPLOYMENT + SLUICE_WORKER_BUILD_ID make every
worker of a process poll as one version of a Temporal Worker Deployment, its workflows
AUTO_UPGRADE.

The real-server test never makes its version *current* (that would route the session's
shared task queues to a worker that is gone once the test ends): it pins one workflow to
the version with a start-time override, which is enough to see the versioned worker run
it and report the behaviour, and checks at the end that the deployment has no current
version, so every other test's unversioned workers still get their tasks.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from temporalio.api.enums.v1 import VersioningBehavior as VersioningBehaviorProto
from temporalio.api.workflowservice.v1 import DescribeWorkerDeploymentRequest
from temporalio.client import WorkflowHandle
from temporalio.common import PinnedVersioningOverride, WorkerDeploymentVersion
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from schedules.models import SweepInput, SweepResult
from sluice.config import get_settings, load_settings
from sluice.errors import ConfigurationError
from sluice.health import standard_checks
from sluice.monitoring import describe_queue
from sluice.temporal.tenant_context import tenant_scope
from sluice.temporal.workflow_ids import SWEEP
from tests.support import eventually
from workers.kinds import WORKER_KINDS
from workers.runner import build_workers, deployment_config


def test_versioning_is_off_unless_both_are_set() -> None:
    assert load_settings().worker_version is None
    assert deployment_config(load_settings()) is None
    on = load_settings(sluice_worker_deployment="sluice", sluice_worker_build_id="v1.2.3")
    assert on.worker_version == ("sluice", "v1.2.3")
    config = deployment_config(on)
    assert config is not None and config.use_worker_versioning
    assert config.version == WorkerDeploymentVersion("sluice", "v1.2.3")
    assert config.default_versioning_behavior.name == "AUTO_UPGRADE"
    for half in ({"sluice_worker_deployment": "sluice"}, {"sluice_worker_build_id": "v1"}):
        with pytest.raises(ConfigurationError) as caught:
            deployment_config(load_settings(**half))  # type: ignore[arg-type]
        assert "SLUICE_WORKER_DEPLOYMENT and SLUICE_WORKER_BUILD_ID" in str(caught.value)
    with pytest.raises(ConfigurationError) as bad:
        load_settings(sluice_worker_deployment="a.b", sluice_worker_build_id="v1")
    assert "SLUICE_WORKER_DEPLOYMENT='a.b'" in str(bad.value)
    assert (
        load_settings(sluice_worker_deployment="", sluice_worker_build_id="").worker_version is None
    )


async def test_a_versioned_worker_runs_its_workflows_as_its_build(
    dev_env: WorkflowEnvironment, tenant: str
) -> None:
    client = dev_env.client
    deployment = "sluice-test-" + uuid.uuid4().hex[:8]
    version = WorkerDeploymentVersion(deployment, "b1")
    settings = get_settings().model_copy(
        update={"sluice_worker_deployment": deployment, "sluice_worker_build_id": "b1"}
    )
    kind = WORKER_KINDS["background"]
    identity = f"versioned-{deployment}"
    workers = build_workers(client, kind, settings, identity=identity)
    tasks = [asyncio.create_task(w.run()) for w in workers]
    try:
        # Readiness (/readyz's `polling` check) sees a versioned poller too.
        polling = standard_checks(settings, client, identity, [q.value for q in kind.queues])[
            "polling"
        ]

        async def polls() -> bool:
            try:
                await polling()
            except RuntimeError:
                return False
            return True

        await eventually(polls, timeout=30)

        async def registered() -> bool:
            try:
                described = await client.workflow_service.describe_worker_deployment(
                    DescribeWorkerDeploymentRequest(
                        namespace=client.namespace, deployment_name=deployment
                    )
                )
            except RPCError:
                return False
            return any(
                v.deployment_version.build_id == "b1"
                for v in described.worker_deployment_info.version_summaries
            )

        await eventually(registered, timeout=30)

        async def start() -> WorkflowHandle[Any, SweepResult] | None:
            # The version reaches each task queue's routing data a moment after the
            # deployment lists it; until then a pinned start is refused.
            try:
                with tenant_scope(tenant):
                    return await client.start_workflow(
                        SWEEP,
                        SweepInput(tenant_id=tenant, job="connector-reconcile"),
                        id=f"versioned/{tenant}",
                        task_queue="primary",
                        result_type=SweepResult,
                        versioning_override=PinnedVersioningOverride(version),
                    )
            except RPCError as err:
                if err.status != RPCStatusCode.FAILED_PRECONDITION:
                    raise
                return None

        handle = await eventually(start, timeout=30, interval=0.5)
        with tenant_scope(tenant):
            result = await asyncio.wait_for(handle.result(), timeout=60)
            described = await handle.describe()
        assert result.found == 0
        info = described.raw_description.workflow_execution_info.versioning_info
        assert info.deployment_version.deployment_name == deployment
        assert info.deployment_version.build_id == "b1"
        assert info.behavior == VersioningBehaviorProto.VERSIONING_BEHAVIOR_AUTO_UPGRADE
    finally:
        await asyncio.gather(*(w.shutdown() for w in workers), return_exceptions=True)
        await asyncio.gather(*tasks, return_exceptions=True)
    described_deployment = await client.workflow_service.describe_worker_deployment(
        DescribeWorkerDeploymentRequest(namespace=client.namespace, deployment_name=deployment)
    )
    routing = described_deployment.worker_deployment_info.routing_config
    assert not routing.current_deployment_version.build_id, "the test made its version current"

    # The backlog gauge the HPAs scale on counts a task waiting for a version with no
    # poller left (as after a scale-to-zero of that version's pods).
    with tenant_scope(tenant):
        waiting = await client.start_workflow(
            SWEEP,
            SweepInput(tenant_id=tenant, job="connector-reconcile"),
            id=f"versioned-waiting/{tenant}",
            task_queue="primary",
            result_type=SweepResult,
            versioning_override=PinnedVersioningOverride(version),
        )
    try:

        async def backlog() -> int:
            return (await describe_queue(client, "primary", "workflow")).backlog

        assert await eventually(backlog, timeout=30) >= 1
    finally:
        with tenant_scope(tenant):
            await waiting.terminate(reason="test over")
