"""Connector settings (queue ``connector_doc_fetching``): validate and store a change
asked for through the connector workflow's ``update_settings`` Update."""

from __future__ import annotations

import structlog
from temporalio import activity

from sluice.ccpairs import update_cc_pair_settings
from sluice.indexing.models import SettingsApplied, StoreSettingsRequest
from sluice.temporal.tenant_context import current_tenant

log = structlog.get_logger(__name__)


@activity.defn(name="store_connector_settings")
async def store_connector_settings(request: StoreSettingsRequest) -> SettingsApplied:
    """Validate the merged config (the source must be usable) and store it; a bad value
    raises ConnectorConfigError / ConfigurationError (non-retryable) and writes nothing."""
    pair = await update_cc_pair_settings(
        current_tenant(),
        request.cc_pair_id,
        refresh_interval_seconds=request.refresh_interval_seconds,
        change_interval=request.change_interval,
        config_changes=request.config,
    )
    log.info(
        "connector settings changed",
        cc_pair_id=pair.id,
        refresh_interval_seconds=pair.refresh_interval_seconds,
        changed_keys=sorted(request.config),
    )
    return SettingsApplied(
        refresh_interval_seconds=pair.refresh_interval_seconds, config=pair.config
    )
