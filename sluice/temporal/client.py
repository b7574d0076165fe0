"""The one way Sluice connects to Temporal: pydantic payloads and the tenant interceptor."""

from __future__ import annotations

from temporalio.client import Client, Interceptor
from temporalio.contrib.pydantic import pydantic_data_converter

from sluice.config import Settings, get_settings
from sluice.errors import ConfigurationError
from sluice.temporal.client_interceptor import TenantClientInterceptor


async def connect(settings: Settings | None = None, *, workers: bool = False) -> Client:
    """A client for ``TEMPORAL_ADDRESS`` / ``TEMPORAL_NAMESPACE``.

    ``workers``: Temporal workers will be built from this client (they inherit its
    interceptor), so it carries the whole tenant interceptor, which loads the worker side of
    the SDK. A client that only calls workflows (every CLI command) gets the client half:
    the same headers, without those imports (:func:`workers.runner.build_workers` refuses
    a client without the worker half).
    """
    settings = settings or get_settings()
    if settings.temporal_address is None:
        raise ConfigurationError("TEMPORAL_ADDRESS is not set (run `sluice dev` or set it)")
    interceptor: Interceptor
    if workers:
        from sluice.temporal.interceptor import TenantInterceptor

        interceptor = TenantInterceptor()
    else:
        interceptor = TenantClientInterceptor()
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=pydantic_data_converter,
        interceptors=[interceptor],
    )
