"""The one way Sluice connects to Temporal: pydantic payloads and the tenant interceptor."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from sluice.config import Settings, get_settings
from sluice.errors import ConfigurationError
from sluice.temporal.interceptor import TenantInterceptor


async def connect(settings: Settings | None = None) -> Client:
    """A client for ``TEMPORAL_ADDRESS`` / ``TEMPORAL_NAMESPACE``."""
    settings = settings or get_settings()
    if settings.temporal_address is None:
        raise ConfigurationError("TEMPORAL_ADDRESS is not set (run `sluice dev` or set it)")
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=pydantic_data_converter,
        interceptors=[TenantInterceptor()],
    )
