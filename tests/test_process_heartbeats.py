"""process_batch's heartbeats: none in a batch's first seconds (a server write that tells
nobody anything), then every progress report, throttled by the worker as before."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

import pytest
from temporalio.testing import ActivityEnvironment

from activities import docprocessing
from activities.docprocessing import QUIET_START, _beat


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def run_beats(heartbeat_timeout: timedelta | None, at: list[float]) -> list[tuple[Any, ...]]:
    """Report progress at each offset (seconds from the start); return the heartbeats."""
    sent: list[tuple[Any, ...]] = []
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, heartbeat_timeout=heartbeat_timeout)
    env.on_heartbeat = lambda *details: sent.append(details)
    clock = Clock()

    def body() -> None:
        start = clock.now
        beat = _beat(7)
        for offset in at:
            clock.now = start + offset
            beat(f"stage@{offset}")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(docprocessing.time, "monotonic", clock)
        env.run(body)
    return sent


def test_a_short_batch_sends_no_heartbeat() -> None:
    quiet = QUIET_START.total_seconds()
    assert run_beats(timedelta(seconds=20), [0, quiet / 2, quiet * 0.99]) == []


def test_a_long_batch_heartbeats_after_the_quiet_start() -> None:
    quiet = QUIET_START.total_seconds()
    sent = run_beats(timedelta(seconds=20), [0, quiet, quiet + 5])
    assert sent == [(7, f"stage@{quiet}"), (7, f"stage@{quiet + 5}")]


def test_a_short_heartbeat_timeout_shortens_the_quiet_start() -> None:
    """With a 1 s heartbeat timeout, waiting 2 s would time the batch out: a quarter."""
    sent = run_beats(timedelta(seconds=1), [0.1, 0.3])
    assert sent == [(7, "stage@0.3")]
