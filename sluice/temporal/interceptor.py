"""Carries ``tenant_id`` in Temporal headers: client → workflow → activities/children.

The client side stamps the tenant from :func:`tenant_scope` onto every workflow it
starts, signals, queries or updates. Inside a workflow the header (or, failing
that, the ``tenant_id`` field of the workflow input) is remembered and stamped on
every activity, child workflow and continue-as-new. In an activity it is bound to
the context variable that tenant-bound DB sessions read, and to structlog's
context with the workflow and activity IDs, so every log line names the tenant.

A workflow start whose header is malformed (not a string, not a valid tenant ID:
``"../evil"``, ``"x'); drop"``) or names another tenant than its input's ``tenant_id``
is failed at once with a non-retryable ``InvalidTenantError`` naming the header, before
the workflow code runs, so no activity is ever scheduled for it. (Whether a well-formed
tenant *exists* cannot be checked here: workflow code does no I/O. Its activities then
fail on the missing schema, and the CLI refuses unknown tenants before starting anything.)

The client half is :mod:`sluice.temporal.client_interceptor` (what the CLI loads).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NoReturn

import structlog
import temporalio.activity
import temporalio.api.common.v1
import temporalio.client
import temporalio.converter
import temporalio.exceptions
import temporalio.worker
import temporalio.workflow

from sluice.errors import InvalidTenantError
from sluice.temporal.client_interceptor import (
    Headers,
    TenantClientInterceptor,
    with_tenant,
)
from sluice.temporal.tenant_context import TENANT_HEADER, _current_tenant, set_tenant
from sluice.tenancy import validate_tenant_id

_log = structlog.get_logger(__name__)


class TenantInterceptor(TenantClientInterceptor, temporalio.worker.Interceptor):
    """Register on the client; workers built from that client inherit it."""

    def intercept_activity(
        self, next: temporalio.worker.ActivityInboundInterceptor
    ) -> temporalio.worker.ActivityInboundInterceptor:
        return _ActivityInbound(next)

    def workflow_interceptor_class(
        self, input: temporalio.worker.WorkflowInterceptorClassInput
    ) -> type[temporalio.worker.WorkflowInboundInterceptor] | None:
        return _WorkflowInbound


def _bind_activity_logs(tenant_id: str | None) -> None:
    info = temporalio.activity.info()
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(
        tenant_id=tenant_id,
        workflow_id=info.workflow_id,
        run_id=info.workflow_run_id,
        activity_type=info.activity_type,
        activity_id=info.activity_id,
        attempt=info.attempt,
    )


MAX_FAILURE_MESSAGE = 500
"""Characters of an activity error kept in history; the full traceback goes to the log."""


def short_failure(error: Exception) -> temporalio.exceptions.ApplicationError:
    """The error as history should hold it: its type (what retry policies match on) and a
    short message, without the chained stack traces that made the Web UI say "Failure
    exceeds size limit" instead of showing the error."""
    message = str(error) or type(error).__name__
    if len(message) > MAX_FAILURE_MESSAGE:
        message = message[: MAX_FAILURE_MESSAGE - 1] + "…"
    return temporalio.exceptions.ApplicationError(message, type=type(error).__name__)


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:79] + "…"


def rejected_tenant(reason: str) -> temporalio.exceptions.ApplicationError:
    """The non-retryable failure of a start whose tenant cannot be trusted."""
    return temporalio.exceptions.ApplicationError(
        f"rejected: {reason}", type=InvalidTenantError.__name__, non_retryable=True
    )


def header_tenant(headers: Headers) -> str | None:
    """The ``sluice-tenant-id`` header, validated; ``None`` when there is none.

    Raises :func:`rejected_tenant` when it is present but not a valid tenant ID (another
    payload type, path or SQL fragments, upper case...)."""
    payload = headers.get(TENANT_HEADER)
    if payload is None:
        return None
    try:
        value: object = temporalio.converter.PayloadConverter.default.from_payload(payload)
    except Exception:
        encoding = payload.metadata.get("encoding", b"").decode(errors="replace")
        raise rejected_tenant(
            f"header {TENANT_HEADER} is not a readable string (encoding {encoding!r})"
        ) from None
    try:
        return validate_tenant_id(value)
    except InvalidTenantError:
        raise rejected_tenant(
            f"header {TENANT_HEADER} {_shown(value)} is not a valid tenant ID "
            "(1-63 characters of a-z, 0-9 or _)"
        ) from None


def workflow_tenant(headers: Headers, args: Sequence[Any]) -> str | None:
    """The tenant a workflow run belongs to: its header and its input's ``tenant_id``,
    which must agree when both are there (every Sluice workflow input has one)."""
    from_header = header_tenant(headers)
    declared = getattr(args[0], "tenant_id", None) if args else None
    if declared is not None:
        try:
            declared = validate_tenant_id(declared)
        except InvalidTenantError:
            raise rejected_tenant(
                f"input tenant_id {_shown(declared)} is not a valid tenant ID"
            ) from None
        if from_header is not None and from_header != declared:
            raise rejected_tenant(
                f"header {TENANT_HEADER} {from_header!r} does not match the input's "
                f"tenant_id {declared!r}"
            )
    return from_header or declared


class _ActivityInbound(temporalio.worker.ActivityInboundInterceptor):
    async def execute_activity(self, input: temporalio.worker.ExecuteActivityInput) -> Any:
        tenant = header_tenant(input.headers)
        token = _current_tenant.set(tenant)
        _bind_activity_logs(tenant)
        try:
            return await super().execute_activity(input)
        except (temporalio.exceptions.ApplicationError, temporalio.exceptions.CancelledError):
            raise
        except Exception as error:
            if temporalio.activity.is_cancelled():
                raise
            _log.warning("activity failed", error=repr(error)[:2000], exc_info=True)
            raise short_failure(error) from None
        finally:
            _current_tenant.reset(token)
            structlog.contextvars.clear_contextvars()


class _WorkflowInbound(temporalio.worker.WorkflowInboundInterceptor):
    """Remembers the run's tenant and hands it to everything the workflow starts."""

    tenant_id: str | None = None

    def init(self, outbound: temporalio.worker.WorkflowOutboundInterceptor) -> None:
        super().init(_WorkflowOutbound(outbound, self))

    async def execute_workflow(self, input: temporalio.worker.ExecuteWorkflowInput) -> Any:
        # Before the workflow's own code: a rejected start fails the run (an
        # ApplicationError fails the workflow, not just its task) with nothing scheduled.
        tenant = workflow_tenant(input.headers, input.args)
        self.tenant_id = tenant
        set_tenant(tenant)
        return await super().execute_workflow(input)

    async def handle_signal(self, input: temporalio.worker.HandleSignalInput) -> None:
        set_tenant(self.tenant_id)
        await super().handle_signal(input)

    async def handle_query(self, input: temporalio.worker.HandleQueryInput) -> Any:
        set_tenant(self.tenant_id)
        return await super().handle_query(input)

    def handle_update_validator(self, input: temporalio.worker.HandleUpdateInput) -> None:
        set_tenant(self.tenant_id)
        super().handle_update_validator(input)

    async def handle_update_handler(self, input: temporalio.worker.HandleUpdateInput) -> Any:
        set_tenant(self.tenant_id)
        return await super().handle_update_handler(input)


class _WorkflowOutbound(temporalio.worker.WorkflowOutboundInterceptor):
    def __init__(
        self, next: temporalio.worker.WorkflowOutboundInterceptor, inbound: _WorkflowInbound
    ) -> None:
        super().__init__(next)
        self._inbound = inbound

    def _headers(self, headers: Headers) -> Headers:
        return with_tenant(headers, self._inbound.tenant_id)

    def start_activity(
        self, input: temporalio.worker.StartActivityInput
    ) -> temporalio.workflow.ActivityHandle[Any]:
        input.headers = self._headers(input.headers)
        return super().start_activity(input)

    def start_local_activity(
        self, input: temporalio.worker.StartLocalActivityInput
    ) -> temporalio.workflow.ActivityHandle[Any]:
        input.headers = self._headers(input.headers)
        return super().start_local_activity(input)

    async def start_child_workflow(
        self, input: temporalio.worker.StartChildWorkflowInput
    ) -> temporalio.workflow.ChildWorkflowHandle[Any, Any]:
        input.headers = self._headers(input.headers)
        return await super().start_child_workflow(input)

    def continue_as_new(self, input: temporalio.worker.ContinueAsNewInput) -> NoReturn:
        input.headers = self._headers(input.headers)
        super().continue_as_new(input)

    async def signal_external_workflow(
        self, input: temporalio.worker.SignalExternalWorkflowInput
    ) -> None:
        input.headers = self._headers(input.headers)
        await super().signal_external_workflow(input)
