"""Building workers keeps the garbage collector's finalizers out of the workflow sandbox.

On Python 3.11 a finalizer that runs inside the sandbox's import of a workflow module
can make the worker refuse to start ("Failed validating workflow", a ``KeyError``
from the import lock; see ``workers/collector.py``). It is rare, so the test does not
wait for the crash: it makes the precondition as likely as it can be (garbage always
pending, a collection at nearly every allocation) and checks that no finalizer ever
ran inside the sandbox while the workers were built.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Callable

import pytest
from temporalio import workflow
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from sluice.config import get_settings
from sluice.temporal.client import connect
from workers.collector import collector_paused
from workers.kinds import WORKER_KINDS
from workers.runner import build_workers


class _PendingGarbage:
    """A reference cycle that notes where it was finalized and leaves another behind."""

    finalized_in_sandbox: list[bool] = []
    active = True

    def __init__(self) -> None:
        self.me = self

    def __del__(self) -> None:
        _PendingGarbage.finalized_in_sandbox.append(workflow.unsafe.in_sandbox())
        if _PendingGarbage.active:
            _PendingGarbage()


def _build_under_constant_collection(build: Callable[[], None]) -> list[bool]:
    _PendingGarbage.finalized_in_sandbox = []
    _PendingGarbage.active = True
    thresholds = gc.get_threshold()
    _PendingGarbage()
    gc.set_threshold(1)
    try:
        build()
    finally:
        gc.set_threshold(*thresholds)
        _PendingGarbage.active = False
        gc.collect()
    return _PendingGarbage.finalized_in_sandbox


@pytest.fixture
async def own_client(dev_env: WorkflowEnvironment) -> AsyncIterator[Client]:
    """A client of its own: workers built (never run) stay registered on their client."""
    yield await connect(get_settings(), workers=True)
    gc.collect()


async def test_no_finalizer_runs_inside_the_sandbox_while_workers_are_built(
    own_client: Client,
) -> None:
    kind = WORKER_KINDS["background"]

    def build() -> None:
        build_workers(own_client, kind, get_settings(), identity="gc-test")

    seen = _build_under_constant_collection(build)
    assert seen, "the pending garbage was collected at some point"
    assert not any(seen), f"{seen.count(True)} finalizers ran inside the sandbox"
    assert gc.isenabled(), "the collector is running again after construction"


async def test_the_same_construction_unguarded_does_let_finalizers_into_the_sandbox(
    own_client: Client,
) -> None:
    """The check above can fail: without the pause, finalizers do run in the sandbox."""
    from temporalio.worker import Worker

    from workers.registry import WORKFLOWS

    def build() -> None:
        for queue, flows in WORKFLOWS.items():
            Worker(own_client, task_queue=f"unguarded-{queue.value}", workflows=list(flows))

    assert any(_build_under_constant_collection(build))


def test_the_pause_restores_a_disabled_collector_as_disabled() -> None:
    gc.disable()
    try:
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
