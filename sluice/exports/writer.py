"""Stream an export into its file page by page, resumable at any page boundary.

Each page is fetched in its own short transaction (no snapshot held for an hour), encoded
as CSV and written at the file's known length, then ``on_page`` reports the new position
(the activity heartbeats it). A worker killed anywhere leaves at most one page more on
disk than its last heartbeat says; the retry truncates the file back to the heartbeated
offset and fetches the rows after the heartbeated key, so every row is written exactly
once. Memory holds one page, whatever the export's size.
"""

from __future__ import annotations

import asyncio
import csv
import io
import os
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from sluice import filestore
from sluice.db.session import tenant_connection
from sluice.exports.models import ExportPosition, ExportRequest, ExportResult
from sluice.exports.queries import QUERIES, count_rows, fetch_page


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def encode(rows: Sequence[Sequence[Any]], header: Sequence[str] | None = None) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if header is not None:
        writer.writerow(header)
    writer.writerows([_cell(v) for v in row] for row in rows)
    return out.getvalue().encode("utf-8")


def write_at(path: Path, offset: int, data: bytes) -> None:
    """Write ``data`` at ``offset`` and cut the file there (drops a half-reported page)."""
    mode = "r+b" if path.exists() else "wb"
    with open(path, mode) as handle:
        handle.seek(offset)
        handle.write(data)
        handle.truncate()


async def _start(request: ExportRequest, path: Path) -> ExportPosition:
    async with tenant_connection(request.tenant_id) as (_, raw):
        total = await count_rows(raw, request.kind, request.cc_pair_id)
    header = encode([], QUERIES[request.kind].columns)
    await asyncio.to_thread(write_at, path, 0, header)
    return ExportPosition(offset=len(header), total=total)


async def stream_export(
    request: ExportRequest,
    position: ExportPosition | None,
    on_page: Callable[[ExportPosition], None],
) -> ExportResult:
    """Export from ``position`` (a heartbeat) or from the start; returns the totals."""
    started = time.monotonic()
    path = filestore.export_path(request.tenant_id, request.export_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    resumed = position is not None and await asyncio.to_thread(path.exists)
    if position is None or not resumed:
        position = await _start(request, path)
        on_page(position)
    key = QUERIES[request.kind].columns.index(QUERIES[request.kind].key)
    while True:
        async with tenant_connection(request.tenant_id) as (_, raw):
            rows = await fetch_page(
                raw, request.kind, position.after, request.cc_pair_id, request.page_size
            )
        if not rows:
            break
        data = encode(rows)
        await asyncio.to_thread(write_at, path, position.offset, data)
        position = position.model_copy(
            update={
                "after": rows[-1][key],
                "offset": position.offset + len(data),
                "rows": position.rows + len(rows),
            }
        )
        del rows, data
        on_page(position)
        if request.pause_ms:
            await asyncio.sleep(request.pause_ms / 1000)
    await asyncio.to_thread(_truncate, path, position.offset)
    return ExportResult(
        export_id=request.export_id,
        kind=request.kind,
        path=str(path),
        rows=position.rows,
        bytes=position.offset,
        seconds=round(time.monotonic() - started, 3),
        resumed=resumed,
    )


def _truncate(path: Path, offset: int) -> None:
    """An export resumed after its last page was written still ends at the right length."""
    if os.path.getsize(path) != offset:
        os.truncate(path, offset)
