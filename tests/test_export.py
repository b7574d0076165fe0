"""CSV exports: 100,000 rows survive a SIGKILLed worker process with every row exactly
once (the retry truncates to the heartbeated offset and resumes after its key)."""

from __future__ import annotations

import csv
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from sluice.config import get_settings
from sluice.db.session import tenant_connection
from sluice.exports import ops
from sluice.exports.models import ExportKind, ExportPosition, ExportRequest
from tests.support import eventually, running_workers
from tests.test_worker_crash import worker_process

ROWS = 100_000


@pytest.fixture
def file_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("SLUICE_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    yield tmp_path / "data"
    monkeypatch.undo()
    get_settings.cache_clear()


async def documents(tenant: str, count: int) -> None:
    async with tenant_connection(tenant) as (_, raw):
        await raw.execute(
            """
            INSERT INTO document (id, source, semantic_identifier, content_hash, link)
            SELECT 'doc:' || lpad(i::text, 7, '0'), 'synthetic', 'Title, "quoted" ' || i,
                   md5(i::text), CASE WHEN i % 3 = 0 THEN NULL ELSE 'https://x/' || i END
            FROM generate_series(1, $1) AS i
            """,
            count,
        )


def exported_ids(path: Path) -> list[str]:
    with open(path, newline="") as handle:
        reader = csv.reader(handle)
        assert next(reader)[0] == "id"
        return [row[0] for row in reader]


async def test_export_survives_a_killed_worker_with_every_row_once(
    dev_env: WorkflowEnvironment, tenant: str, tmp_path: Path, file_store: Path
) -> None:
    client = dev_env.client
    await documents(tenant, ROWS)
    request = ExportRequest(
        tenant_id=tenant,
        export_id=ops.new_export_id(),
        kind=ExportKind.DOCUMENTS,
        page_size=1000,
        pause_ms=40,
        heartbeat_seconds=3,
    )
    with worker_process(dev_env, tmp_path / "first.log") as first:
        handle = await ops.start(client, request)

        async def mid_way() -> ExportPosition | None:
            pos = await ops.position(client, handle, tenant)
            return pos if pos is not None and pos.rows >= 20_000 else None

        killed_at = await eventually(mid_way, timeout=90, interval=0.2)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    assert killed_at.rows < ROWS and killed_at.total == ROWS
    with worker_process(dev_env, tmp_path / "second.log"):
        result = await handle.result()
    assert result.resumed and result.rows == ROWS
    ids = exported_ids(Path(result.path))
    assert len(ids) == ROWS == len(set(ids))
    assert ids == [f"doc:{i:07d}" for i in range(1, ROWS + 1)]
    assert "resuming export from heartbeat" in (tmp_path / "second.log").read_text()
    out = tmp_path / "out.csv"
    await ops.copy_out(result, out)
    assert out.stat().st_size == result.bytes


async def test_export_filters_by_cc_pair_and_quotes_csv(
    dev_env: WorkflowEnvironment, tenant: str, tmp_path: Path, file_store: Path
) -> None:
    await documents(tenant, 25)
    async with running_workers(dev_env.client):
        request = ExportRequest(
            tenant_id=tenant,
            export_id=ops.new_export_id(),
            kind=ExportKind.DOCUMENTS,
            page_size=7,
        )
        result = await (await ops.start(dev_env.client, request)).result()
        assert (result.rows, result.resumed) == (25, False)
        with open(result.path, newline="") as handle:
            rows = list(csv.DictReader(handle))
        assert rows[0]["semantic_identifier"] == 'Title, "quoted" 1'
        assert rows[2]["link"] == ""
        empty = ExportRequest(
            tenant_id=tenant, export_id=ops.new_export_id(), kind=ExportKind.ERRORS, cc_pair_id=5
        )
        result = await (await ops.start(dev_env.client, empty)).result()
        assert result.rows == 0 and Path(result.path).read_text().startswith("id,")
