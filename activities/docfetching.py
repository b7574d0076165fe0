"""Docfetching (queue ``connector_doc_fetching``): run a connector, stage batches.

The activity runs the connector from the checkpoint it is given for a bounded
number of batches, stages each batch (claim check) and returns the references
with the next checkpoint; the workflow keeps that checkpoint in its history.
It heartbeats on *progress* — every document produced — with the position of
the last staged batch, so a hung connector misses its heartbeat timeout and the
retry resumes from the last staged batch instead of the beginning.

Limits that hold for every connector: a document over ``max_document_bytes`` fails
alone with a clear error; a batch is staged once it holds ``max_batch_bytes`` (so
memory is bounded by bytes, not only counts); and the activity hands back what it
has after ``max_seconds``, so a slow source's documents are processed as they come.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import structlog
from temporalio import activity

from sluice.ccpairs import load_connector_settings
from sluice.connectors.base import Connector, ConnectorContext
from sluice.connectors.models import Checkpoint, ConnectorOutput, Document, DocumentFailure
from sluice.connectors.registry import build_connector
from sluice.db.session import tenant_connection
from sluice.indexing.attempts import failed_document_ids, record_failures
from sluice.indexing.models import FetchHeartbeat, FetchRequest, FetchResult
from sluice.indexing.staging import stage_batch
from sluice.indexing.unchanged import unchanged_documents
from sluice.temporal.tenant_context import current_tenant

log = structlog.get_logger(__name__)

PROGRESS_HEARTBEAT_EVERY = 1.0
"""Most seconds between progress heartbeats (and at most a quarter of the timeout)."""


def _resume_point(request: FetchRequest) -> FetchHeartbeat:
    """Where to start: the last heartbeat of a previous try, else the request's checkpoint."""
    details = activity.info().heartbeat_details
    if details:
        try:
            return FetchHeartbeat.model_validate(details[0])
        except ValueError:  # unreadable details: start over from the request, safely
            log.warning("ignoring unreadable heartbeat details")
    return FetchHeartbeat(
        checkpoint=request.checkpoint, batches=[], docs_fetched=0, failures=0, position=0
    )


async def _source(
    tenant: str, request: FetchRequest, connector: Connector[Any], checkpoint: Checkpoint
) -> AsyncIterator[ConnectorOutput]:
    """The connector from the checkpoint, or (retry-failed) the recent failures by ID."""
    if request.retry_failed_before is None:
        return connector.load(checkpoint)
    async with tenant_connection(tenant) as (_, raw):
        ids = await failed_document_ids(raw, request.cc_pair_id, request.retry_failed_before)
    log.info("retrying failed documents", documents=len(ids))
    return connector.load_documents(ids, checkpoint)


def document_bytes(document: Document) -> int:
    """Size of a document's text in UTF-8 bytes (what chunking and embedding will see).

    An ASCII text's length is its size (``isascii`` reads a flag CPython keeps), so only
    other texts are encoded to be measured.
    """
    return sum(_utf8_size(section.text) for section in document.sections)


def _utf8_size(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode())


def too_large(document: Document, size: int, limit: int) -> DocumentFailure:
    mib = 1024 * 1024
    return DocumentFailure(
        document_id=document.id,
        document_link=document.link,
        message=f"document is {size / mib:.1f} MiB of text, over the {limit / mib:.1f} MiB "
        "limit (max_document_bytes): skipped, the rest of the run goes on",
    )


@activity.defn(name="fetch_documents")
async def fetch_documents(request: FetchRequest) -> FetchResult:
    tenant = current_tenant()
    state = _resume_point(request)
    if state.batches or state.position:
        log.info(
            "resuming fetch from heartbeat", batches=len(state.batches), docs=state.docs_fetched
        )
    source, config, secret = await load_connector_settings(tenant, request.cc_pair_id)
    context = ConnectorContext(
        tenant,
        request.cc_pair_id,
        activity.info().attempt,
        keepalive=lambda: activity.heartbeat(state),
        credential=secret,
    )
    connector = build_connector(source, config, context)
    connector.validate_source()

    documents: list[Document] = []
    failures: list[DocumentFailure] = []
    checkpoint: Checkpoint = state.checkpoint
    produced_any = False
    position = state.position
    batch_bytes = 0
    started = time.monotonic()

    async def flush(after: Checkpoint) -> None:
        nonlocal documents, failures, checkpoint, batch_bytes
        seq = request.first_seq + len(state.batches)
        fetched = len(documents)
        async with tenant_connection(tenant) as (_, raw):
            if documents and request.skip_unchanged:
                unchanged = await unchanged_documents(raw, request.cc_pair_id, documents)
                documents = [d for d in documents if d.id not in unchanged]
                state.docs_unchanged += fetched - len(documents)
            if documents:
                ref = await stage_batch(raw, request.cc_pair_id, request.attempt_id, seq, documents)
                state.batches.append(ref)
            await record_failures(raw, request.attempt_id, request.cc_pair_id, "fetching", failures)
        state.docs_fetched += fetched
        state.failures += len(failures)
        documents, failures = [], []
        batch_bytes = 0
        checkpoint = after
        state.checkpoint = after
        activity.heartbeat(state)

    last = checkpoint
    last_beat = 0.0
    timeout = activity.info().heartbeat_timeout
    beat_every = min(PROGRESS_HEARTBEAT_EVERY, timeout.total_seconds() / 4 if timeout else 1.0)
    async for output in await _source(tenant, request, connector, checkpoint):
        produced_any = True
        position += 1
        if output.document is not None:
            size = document_bytes(output.document)
            if size > request.max_document_bytes:
                failures.append(too_large(output.document, size, request.max_document_bytes))
            else:
                documents.append(output.document)
                batch_bytes += size
        elif output.failure is not None:
            failures.append(output.failure)
        last = output.checkpoint
        state.position = position
        now = time.monotonic()
        if now - last_beat >= beat_every:
            # Progress: items are being produced. At most once a second (each call costs
            # the SDK a task); every staged batch heartbeats anyway, in flush().
            activity.heartbeat(state)
            last_beat = now
        out_of_time = time.monotonic() - started >= request.max_seconds
        if (
            len(documents) >= request.batch_size
            or batch_bytes >= request.max_batch_bytes
            or (out_of_time and documents)
        ):
            await flush(last)
            if len(state.batches) >= request.max_batches or out_of_time:
                break
            if activity.is_worker_shutdown():
                # A deploy: hand back what is staged; the next fetch runs on another worker,
                # so the run is interrupted, never failed.
                log.info("worker shutting down; returning the batches staged so far")
                break
    else:
        if not produced_any:
            last = Checkpoint(cursor=checkpoint.cursor, since=checkpoint.since, done=True)
        await flush(last)

    return FetchResult(
        batches=state.batches,
        checkpoint=state.checkpoint,
        docs_fetched=state.docs_fetched,
        failures=state.failures,
        docs_unchanged=state.docs_unchanged,
    )
