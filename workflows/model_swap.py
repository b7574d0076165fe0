"""Embedding-model swap without downtime: build a new index generation, then switch.

One swap per tenant at a time (``model_swap_workflow_id``). It reads top to
bottom:

1. **start**: try the new model on one text, create the ``building`` generation and
   its vector table. From here on, every batch a connector indexes lands in both
   generations.
2. **re-embed**: page through every chunk that has no vector in the new generation
   (text already in the index: nothing is fetched again), continuing-as-new when
   history grows, so the position is the workflow's checkpoint.
3. **index**: build the new table's HNSW index once, concurrently.
4. **switch**: atomically make the new generation live, once no chunk lacks a vector
   (a chunk missed by a race is embedded and the switch tried again). Search answers
   from the old generation until this commit and from the new one after it.
5. **retire**: after a grace period (a search that resolved the old generation just
   before the switch finishes), drop the old vectors.

Cancel the workflow (``sluice index switch-model --cancel``, or the Web UI) or let an
activity fail for good, and the building generation is dropped: the live index is
never touched before step 4.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, is_cancelled_exception
from temporalio.workflow import ActivityCancellationType

with workflow.unsafe.imports_passed_through():
    from activities.generations import GenerationActivities
    from sluice.index.swap_models import (
        AbandonRequest,
        EmbedPagesRequest,
        ModelSwapInput,
        SwapProgress,
        SwapResult,
    )
    from sluice.temporal import policies, workflow_ids


@workflow.defn(name=workflow_ids.MODEL_SWAP)
class ModelSwapWorkflow:
    def __init__(self) -> None:
        self.input: ModelSwapInput | None = None
        self.phase = "starting"

    @workflow.query
    def progress(self) -> SwapProgress:
        assert self.input is not None
        return SwapProgress(
            tenant_id=self.input.tenant_id,
            model=self.input.spec.name,
            generation_id=self.input.generation_id,
            phase=self.phase,
            chunks_embedded=self.input.chunks_embedded,
            chunks_total=self.input.chunks_total,
        )

    @workflow.run
    async def run(self, input: ModelSwapInput) -> SwapResult:
        self.input = input
        try:
            if input.generation_id is None:
                await self._start()
            await self._re_embed()
            self._set_phase("building the vector index")
            await workflow.execute_activity_method(
                GenerationActivities.build_generation_index,
                self._generation(),
                **policies.BUILD_GENERATION_INDEX.options(),
                # On cancel, wait until the build has stopped: dropping the table while
                # CREATE INDEX CONCURRENTLY waits for our transaction would deadlock.
                cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
            )
            await self._switch()
        except (asyncio.CancelledError, ActivityError) as err:
            if is_cancelled_exception(err):
                await self._abandon("canceled", None)
                raise
            assert isinstance(err, ActivityError)
            message = str(err.cause or err)
            await self._abandon("failed", message)
            raise ApplicationError(
                f"model swap to {input.spec.name} failed: {message}", non_retryable=True
            ) from err
        retired = await self._retire()
        self._set_phase("done")
        return SwapResult(
            generation_id=self._generation(),
            model=input.spec.name,
            retired_id=retired,
            chunks_embedded=input.chunks_embedded,
        )

    async def _start(self) -> None:
        assert self.input is not None
        self._set_phase("trying the new model")
        started = await workflow.execute_activity_method(
            GenerationActivities.start_generation,
            self.input.spec,
            **policies.START_GENERATION.options(),
        )
        self.input.generation_id = started.generation_id
        self.input.previous_live_id = started.previous_live_id
        self.input.chunks_total = started.chunks_total

    async def _re_embed(self) -> None:
        """Page through chunks lacking a vector; continue-as-new when history is long."""
        assert self.input is not None
        self._set_phase("re-embedding")
        while True:
            page = await workflow.execute_activity_method(
                GenerationActivities.embed_generation_pages,
                EmbedPagesRequest(
                    generation_id=self._generation(),
                    after=self.input.after,
                    page_size=self.input.page_size,
                ),
                **policies.EMBED_GENERATION_PAGES.options(),
            )
            self.input.after = page.after
            self.input.chunks_embedded += page.embedded
            self._set_phase("re-embedding")
            if page.finished:
                return
            if workflow.info().is_continue_as_new_suggested():
                workflow.continue_as_new(self.input)

    async def _switch(self) -> None:
        """Switch once every chunk has a vector; embed what a race left out, then retry."""
        assert self.input is not None
        while True:
            self._set_phase("switching")
            switched = await workflow.execute_activity_method(
                GenerationActivities.switch_generation,
                self._generation(),
                **policies.GENERATION_BOOKKEEPING.options(),
            )
            if not switched.missing:
                return
            self.input.after = None
            await self._re_embed()

    async def _retire(self) -> int | None:
        assert self.input is not None
        previous = self.input.previous_live_id
        if previous is None:
            return None
        self._set_phase("live; retiring the old generation")
        await workflow.sleep(timedelta(seconds=self.input.retire_after_seconds))
        await workflow.execute_activity_method(
            GenerationActivities.drop_generation_vectors,
            previous,
            **policies.GENERATION_BOOKKEEPING.options(),
        )
        return previous

    async def _abandon(self, status: str, error: str | None) -> None:
        assert self.input is not None
        if self.input.generation_id is None:
            return
        self._set_phase(status)
        await workflow.execute_activity_method(
            GenerationActivities.abandon_generation,
            AbandonRequest(generation_id=self.input.generation_id, status=status, error=error),
            **policies.GENERATION_BOOKKEEPING.options(),
        )

    def _generation(self) -> int:
        assert self.input is not None and self.input.generation_id is not None
        return self.input.generation_id

    def _set_phase(self, phase: str) -> None:
        assert self.input is not None
        self.phase = phase
        total = self.input.chunks_total
        counts = f"{self.input.chunks_embedded}/{total}" if total is not None else "?"
        workflow.set_current_details(
            f"{self.input.spec.name}: {phase} ({counts} chunks re-embedded)"
        )
