"""The client half of the tenant interceptor: ``tenant_id`` into every call's headers.

A client that only starts, signals, queries or updates workflows (every ``sluice``
command) needs nothing more, and this module imports only the Temporal client and its
payload converter. Workers need the whole :class:`~sluice.temporal.interceptor.
TenantInterceptor` (it also imports the worker, workflow and activity modules, and
structlog), which a client passes on to the workers built from it: see
:func:`sluice.temporal.client.connect`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import temporalio.api.common.v1
import temporalio.client
import temporalio.common
import temporalio.converter

from sluice.temporal.search import TENANT
from sluice.temporal.tenant_context import TENANT_HEADER, maybe_current_tenant

Headers = Mapping[str, temporalio.api.common.v1.Payload]


def _encode(tenant_id: str) -> temporalio.api.common.v1.Payload:
    return temporalio.converter.PayloadConverter.default.to_payload(tenant_id)


def with_tenant(headers: Headers, tenant_id: str | None) -> Headers:
    if tenant_id is None:
        return headers
    return {**headers, TENANT_HEADER: _encode(tenant_id)}


SearchAttributes = temporalio.common.SearchAttributes | temporalio.common.TypedSearchAttributes


def with_tenant_attribute(
    attributes: SearchAttributes | None, tenant_id: str | None
) -> SearchAttributes | None:
    """Tag the workflow with its tenant unless the caller already did: every workflow
    of a tenant is then found by ``SluiceTenant`` (listings, ``sluice tenant remove``)."""
    if tenant_id is None:
        return attributes
    pair = temporalio.common.SearchAttributePair(TENANT, tenant_id)
    if attributes is None:
        return temporalio.common.TypedSearchAttributes([pair])
    if isinstance(attributes, temporalio.common.TypedSearchAttributes):
        return attributes if attributes.get(TENANT) is not None else attributes.updated(pair)
    return attributes if TENANT.name in attributes else {**attributes, TENANT.name: [tenant_id]}


class TenantClientInterceptor(temporalio.client.Interceptor):
    """Register on a client that runs no workers (the CLI, status probes)."""

    def intercept_client(
        self, next: temporalio.client.OutboundInterceptor
    ) -> temporalio.client.OutboundInterceptor:
        return _ClientOutbound(next)


class _ClientOutbound(temporalio.client.OutboundInterceptor):
    async def start_workflow(
        self, input: temporalio.client.StartWorkflowInput
    ) -> temporalio.client.WorkflowHandle[Any, Any]:
        tenant = maybe_current_tenant()
        input.headers = with_tenant(input.headers, tenant)
        input.search_attributes = with_tenant_attribute(input.search_attributes, tenant)
        return await super().start_workflow(input)

    async def signal_workflow(self, input: temporalio.client.SignalWorkflowInput) -> None:
        input.headers = with_tenant(input.headers, maybe_current_tenant())
        await super().signal_workflow(input)

    async def query_workflow(self, input: temporalio.client.QueryWorkflowInput) -> Any:
        input.headers = with_tenant(input.headers, maybe_current_tenant())
        return await super().query_workflow(input)

    async def start_workflow_update(
        self, input: temporalio.client.StartWorkflowUpdateInput
    ) -> temporalio.client.WorkflowUpdateHandle[Any]:
        input.headers = with_tenant(input.headers, maybe_current_tenant())
        return await super().start_workflow_update(input)

    async def create_schedule(
        self, input: temporalio.client.CreateScheduleInput
    ) -> temporalio.client.ScheduleHandle:
        action = input.schedule.action
        if isinstance(action, temporalio.client.ScheduleActionStartWorkflow):
            tenant = maybe_current_tenant()
            if tenant is not None:
                action.headers = {**(action.headers or {}), TENANT_HEADER: _encode(tenant)}
        return await super().create_schedule(input)
