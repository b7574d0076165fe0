"""CSV exports (queue ``csv_generation``, heavy worker): the activity streams the rows
(:mod:`sluice.exports.writer`) and heartbeats the position after every page; a retry
after a crash resumes from that heartbeat."""

from __future__ import annotations

import structlog
from temporalio import activity

from sluice.exports.models import ExportPosition, ExportRequest, ExportResult
from sluice.exports.writer import stream_export

log = structlog.get_logger(__name__)


@activity.defn(name="export_csv")
async def export_csv(request: ExportRequest) -> ExportResult:
    details = activity.info().heartbeat_details
    position = ExportPosition.model_validate(details[0]) if details else None
    if position is not None:
        log.info(
            "resuming export from heartbeat",
            export_id=request.export_id,
            rows=position.rows,
            offset=position.offset,
        )
    result = await stream_export(request, position, activity.heartbeat)
    log.info(
        "export written",
        export_id=request.export_id,
        rows=result.rows,
        bytes=result.bytes,
        seconds=result.seconds,
        resumed=result.resumed,
    )
    return result
