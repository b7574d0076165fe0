"""The one way Sluice connects to Temporal: pydantic payloads, encrypted when a key is set,
and the tenant interceptor.

:func:`data_converter` is the single place the payload format is decided; the client,
the test environments, the replayer and the benchmarks all take it from here, so a
worker and the process that started its workflow always agree on encryption.
"""

from __future__ import annotations

import dataclasses

from temporalio.client import Client, Interceptor
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter
from temporalio.runtime import Runtime

from sluice.config import Settings, get_settings
from sluice.errors import ConfigurationError
from sluice.temporal.client_interceptor import TenantClientInterceptor


def data_converter(settings: Settings | None = None) -> DataConverter:
    """Pydantic payloads; AES-GCM encrypted (see :mod:`sluice.temporal.codec`) when
    ``SLUICE_PAYLOAD_KEYS`` is set."""
    settings = settings or get_settings()
    keys = settings.payload_keys
    if not keys:
        return pydantic_data_converter
    from temporalio.converter import DefaultFailureConverterWithEncodedAttributes

    from sluice.temporal.codec import EncryptionCodec

    # Failure messages and stack traces can name a document (a path, a title): with
    # encryption on they move into the failure's encoded attributes, encrypted too.
    return dataclasses.replace(
        pydantic_data_converter,
        payload_codec=EncryptionCodec(keys),
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )


async def connect(
    settings: Settings | None = None, runtime: Runtime | None = None, *, workers: bool = False
) -> Client:
    """A client for ``TEMPORAL_ADDRESS`` / ``TEMPORAL_NAMESPACE``.

    ``runtime``: a worker's, exporting the SDK's metrics (see :func:`sdk_metrics_runtime`).
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
        data_converter=data_converter(settings),
        interceptors=[interceptor],
        runtime=runtime,
    )


def sdk_metrics_runtime(port: int) -> Runtime:
    """A Temporal runtime whose metrics (activity latencies, schedule-to-start, pollers,
    sticky cache) Prometheus can read on ``127.0.0.1:port``, in seconds, counters
    ending in ``_total``."""
    from temporalio.runtime import PrometheusConfig, TelemetryConfig

    prometheus = PrometheusConfig(
        bind_address=f"127.0.0.1:{port}",
        counters_total_suffix=True,
        unit_suffix=True,
        durations_as_seconds=True,
    )
    return Runtime(telemetry=TelemetryConfig(metrics=prometheus))
