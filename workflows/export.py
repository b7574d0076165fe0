"""A CSV export: one activity on ``csv_generation`` that streams the rows into a file in
the file store and heartbeats its position; a worker killed mid-export is replaced by a
retry that resumes at the last page. The result names the file (never its rows)."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from sluice.exports.models import ExportRequest, ExportResult
    from sluice.temporal import policies, workflow_ids


@workflow.defn(name=workflow_ids.CSV_EXPORT)
class CsvExportWorkflow:
    @workflow.run
    async def run(self, request: ExportRequest) -> ExportResult:
        what = request.kind.value + (
            f" of cc-pair {request.cc_pair_id}" if request.cc_pair_id else ""
        )
        workflow.set_current_details(f"exporting {what}")
        result: ExportResult = await workflow.execute_activity(
            "export_csv",
            request,
            result_type=ExportResult,
            **policies.CSV_EXPORT.options(heartbeat=timedelta(seconds=request.heartbeat_seconds)),
            summary=f"export {what}",
        )
        workflow.set_current_details(
            f"{result.rows} {what} rows, {result.bytes} bytes in {result.seconds:.1f} s"
        )
        return result
