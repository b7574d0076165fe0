"""Connector-credential pairs: create, read and change them, with validation first.

Validation runs before any row is written, so a bad request creates nothing.
Credentials are stored but never returned by the listing nor logged.

Reads (:func:`list_cc_pairs`, :func:`get_cc_pair`) are plain SQL on a raw connection, so
``sluice connector list`` loads neither SQLAlchemy nor the connectors (see
:mod:`sluice.db.raw`); writes use the ORM, and validating a config loads the connector
registry, both imported where they are used.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sluice.db.raw import raw_tenant_connection
from sluice.db.statuses import CcPairStatus
from sluice.errors import ConfigurationError, NotFoundError

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from sluice.db.models import Connector as ConnectorRow
    from sluice.db.models import ConnectorCredentialPair


@dataclass(frozen=True)
class CcPairInfo:
    id: int
    name: str
    source: str
    config: dict[str, Any]
    status: str
    refresh_interval_seconds: int | None
    prune_interval_seconds: int | None
    consecutive_failures: int
    flag_reason: str | None
    last_successful_index_at: datetime | None
    permission_sync_interval_seconds: int | None = None


def _check_interval(name: str, value: int | None) -> None:
    if value is not None and value <= 0:
        raise ConfigurationError(f"{name} must be a positive number of seconds, got {value}")


def check_request(
    source: str,
    config: dict[str, Any],
    refresh_interval_seconds: int | None,
    prune_interval_seconds: int | None,
) -> dict[str, Any]:
    """Everything a new cc-pair must satisfy, checked without writing; the normalised config."""
    _check_interval("refresh_interval_seconds", refresh_interval_seconds)
    _check_interval("prune_interval_seconds", prune_interval_seconds)
    from sluice.connectors.registry import validate_config

    return validate_config(source, config)


async def create_cc_pair(
    tenant_id: str,
    *,
    name: str,
    source: str,
    config: dict[str, Any],
    refresh_interval_seconds: int | None = None,
    prune_interval_seconds: int | None = None,
    credential: dict[str, Any] | None = None,
    permission_sync_interval_seconds: int | None = None,
) -> CcPairInfo:
    """Validate everything, then write connector, credential and cc-pair in one transaction."""
    if not name.strip():
        raise ConfigurationError("name must not be empty")
    normalised = check_request(source, config, refresh_interval_seconds, prune_interval_seconds)
    _check_interval("permission_sync_interval_seconds", permission_sync_interval_seconds)
    from sluice.db.models import Connector as ConnectorRow
    from sluice.db.models import ConnectorCredentialPair, Credential
    from sluice.db.session import tenant_session

    async with tenant_session(tenant_id) as session:
        await _refuse_duplicate_name(session, name)
        connector = ConnectorRow(name=name, source=source, config=normalised)
        session.add(connector)
        cred = None
        if credential is not None:
            cred = Credential(source=source, secret=credential)
            session.add(cred)
        await session.flush()
        pair = ConnectorCredentialPair(
            name=name,
            connector_id=connector.id,
            credential_id=cred.id if cred else None,
            status=CcPairStatus.ACTIVE.value,
            refresh_interval_seconds=refresh_interval_seconds,
            prune_interval_seconds=prune_interval_seconds,
            permission_sync_interval_seconds=permission_sync_interval_seconds,
            consecutive_failures=0,
        )
        session.add(pair)
        await session.flush()
        return _info(pair, connector)


async def _refuse_duplicate_name(session: AsyncSession, name: str) -> None:
    """Names identify connectors to people (`connector list`, the Web UI): one per tenant."""
    from sqlalchemy import select

    from sluice.db.models import ConnectorCredentialPair

    taken = (
        await session.execute(
            select(ConnectorCredentialPair.id, ConnectorCredentialPair.status).where(
                ConnectorCredentialPair.name == name
            )
        )
    ).first()
    if taken is not None:
        note = ", being deleted" if taken.status == CcPairStatus.DELETING.value else ""
        raise ConfigurationError(
            f"name {name!r} is taken by cc-pair {taken.id}{note}: choose another --name"
        )


def _info(pair: ConnectorCredentialPair, connector: ConnectorRow) -> CcPairInfo:
    return CcPairInfo(
        id=pair.id,
        name=pair.name,
        source=connector.source,
        config=connector.config,
        status=pair.status,
        refresh_interval_seconds=pair.refresh_interval_seconds,
        prune_interval_seconds=pair.prune_interval_seconds,
        consecutive_failures=pair.consecutive_failures,
        flag_reason=pair.flag_reason,
        last_successful_index_at=pair.last_successful_index_at,
        permission_sync_interval_seconds=pair.permission_sync_interval_seconds,
    )


_SELECT_INFO = """
    SELECT p.id, p.name, c.source, c.config, p.status, p.refresh_interval_seconds,
           p.prune_interval_seconds, p.consecutive_failures, p.flag_reason,
           p.last_successful_index_at, p.permission_sync_interval_seconds
    FROM connector_credential_pair p JOIN connector c ON c.id = p.connector_id
"""


def _info_from_row(row: Any) -> CcPairInfo:
    return CcPairInfo(**dict(row.items()))


async def list_cc_pairs(tenant_id: str) -> list[CcPairInfo]:
    async with raw_tenant_connection(tenant_id) as raw:
        rows = await raw.fetch(_SELECT_INFO + "ORDER BY p.id")
    return [_info_from_row(r) for r in rows]


async def get_cc_pair(tenant_id: str, cc_pair_id: int) -> CcPairInfo:
    async with raw_tenant_connection(tenant_id) as raw:
        row = await raw.fetchrow(_SELECT_INFO + "WHERE p.id = $1", cc_pair_id)
    if row is None:
        raise NotFoundError(f"cc-pair {cc_pair_id} does not exist in tenant {tenant_id!r}")
    return _info_from_row(row)


async def load_connector_settings(
    tenant_id: str, cc_pair_id: int
) -> tuple[str, dict[str, Any], dict[str, Any] | None]:
    """(source, config, credential secret) for the fetch activity; the secret stays in memory."""
    from sqlalchemy import select

    from sluice.db.models import Connector as ConnectorRow
    from sluice.db.models import ConnectorCredentialPair, Credential
    from sluice.db.session import tenant_session

    async with tenant_session(tenant_id) as session:
        row = (
            await session.execute(
                select(ConnectorRow.source, ConnectorRow.config, Credential.secret)
                .select_from(ConnectorCredentialPair)
                .join(ConnectorRow, ConnectorRow.id == ConnectorCredentialPair.connector_id)
                .outerjoin(Credential, Credential.id == ConnectorCredentialPair.credential_id)
                .where(ConnectorCredentialPair.id == cc_pair_id)
            )
        ).first()
    if row is None:
        raise NotFoundError(f"cc-pair {cc_pair_id} does not exist in tenant {tenant_id!r}")
    return row[0], row[1], row[2]


async def update_cc_pair_settings(
    tenant_id: str,
    cc_pair_id: int,
    *,
    refresh_interval_seconds: int | None,
    change_interval: bool,
    config_changes: dict[str, Any],
) -> CcPairInfo:
    """Merge ``config_changes`` into the connector's config, validate the whole (source
    usable included) and store it with the interval, in one transaction; nothing is
    written if anything is invalid. An interval of 0 means "index-now only"."""
    interval = refresh_interval_seconds or None
    from sluice.db.models import Connector as ConnectorRow
    from sluice.db.models import ConnectorCredentialPair
    from sluice.db.session import tenant_session

    async with tenant_session(tenant_id) as session:
        pair = await session.get(ConnectorCredentialPair, cc_pair_id)
        if pair is None:
            raise NotFoundError(f"cc-pair {cc_pair_id} does not exist in tenant {tenant_id!r}")
        connector = await session.get(ConnectorRow, pair.connector_id)
        assert connector is not None
        merged = {**connector.config, **config_changes}
        new_interval = interval if change_interval else pair.refresh_interval_seconds
        normalised = check_request(
            connector.source, merged, new_interval, pair.prune_interval_seconds
        )
        connector.config = normalised
        pair.refresh_interval_seconds = new_interval
        await session.flush()
        return _info(pair, connector)


async def mark_cc_pair_deleting(tenant_id: str, cc_pair_id: int) -> None:
    """Show the pair as ``deleting`` at once (``connector list``), before its workflow stops."""
    from sluice.indexing.deletion import mark_deleting

    async with raw_tenant_connection(tenant_id) as raw:
        if not await mark_deleting(raw, cc_pair_id):
            raise NotFoundError(f"cc-pair {cc_pair_id} does not exist in tenant {tenant_id!r}")


async def delete_cc_pair_rows(tenant_id: str, cc_pair_id: int) -> int:
    """Delete the cc-pair, the documents only it held, and its connector. Idempotent."""
    from sqlalchemy import text

    from sluice.db.models import Connector as ConnectorRow
    from sluice.db.models import ConnectorCredentialPair
    from sluice.db.session import tenant_session

    async with tenant_session(tenant_id) as session:
        pair = await session.get(ConnectorCredentialPair, cc_pair_id)
        if pair is None:
            return 0
        result = await session.execute(
            text(
                """
                DELETE FROM document d
                WHERE d.id IN (SELECT document_id FROM document_by_connector_credential_pair
                               WHERE cc_pair_id = :cc)
                  AND NOT EXISTS (SELECT 1 FROM document_by_connector_credential_pair o
                                  WHERE o.document_id = d.id AND o.cc_pair_id <> :cc)
                """
            ),
            {"cc": cc_pair_id},
        )
        connector_id = pair.connector_id
        await session.delete(pair)
        await session.flush()
        connector = await session.get(ConnectorRow, connector_id)
        if connector is not None:
            await session.delete(connector)
        return int(getattr(result, "rowcount", 0) or 0)
