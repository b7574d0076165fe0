"""The current tenant, as a context variable.

Safe to import from workflows (no I/O): the tenant interceptor sets it for each
workflow task, signal and activity from the ``sluice-tenant-id`` header.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from sluice.errors import InvalidTenantError
from sluice.tenancy import validate_tenant_id

TENANT_HEADER = "sluice-tenant-id"

_current_tenant: ContextVar[str | None] = ContextVar("sluice_tenant_id", default=None)


def current_tenant() -> str:
    """The tenant this code runs for; raises if none was propagated (a wiring bug)."""
    tenant = _current_tenant.get()
    if tenant is None:
        raise InvalidTenantError("no tenant in context: was the call made without one?")
    return tenant


def maybe_current_tenant() -> str | None:
    return _current_tenant.get()


def set_tenant(tenant_id: str | None) -> None:
    _current_tenant.set(None if tenant_id is None else validate_tenant_id(tenant_id))


@contextmanager
def tenant_scope(tenant_id: str) -> Iterator[str]:
    """Run client calls for ``tenant_id``: the interceptor puts it in their headers."""
    token = _current_tenant.set(validate_tenant_id(tenant_id))
    try:
        yield tenant_id
    finally:
        _current_tenant.reset(token)
