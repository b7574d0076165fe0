"""Keep the garbage collector out of the workflow sandbox while workers are built.

A ``Worker`` checks each workflow class by importing its module in a fresh sandbox.
On CPython before 3.12 a module's import lock is not re-entrant (gh-91351). If a
cyclic garbage collection runs while this thread holds such a lock and finalizes,
say, a coroutine nobody awaited, the finalizer's warning imports ``warnings``
through the sandbox's importer. That nested import takes and drops the same
thread's lock entry, the outer import then fails with ``KeyError: <thread id>``,
and the worker refuses to start: ``RuntimeError: Failed validating workflow ...``
(temporalio/sdk-python#585). It is rare, but a process that builds workers many
times (the test suite) meets it now and then.

Collecting first and pausing the collector for the construction (a fraction of a
second) runs every pending finalizer outside the sandbox instead. Nothing is
skipped: the collector resumes, as it was, when construction ends.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """Collect now, then hold cyclic collection for the block (restored after)."""
    was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
