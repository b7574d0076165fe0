"""bench/indexing refuses a worker set that cannot finish an indexing run, at once and in
one line, instead of waiting for an attempt no worker will ever close."""

from __future__ import annotations

import subprocess
import sys

from bench.indexing import unpolled_queues


def test_every_layout_the_docs_name_polls_what_a_run_needs() -> None:
    assert unpolled_queues(("background",)) == []
    assert unpolled_queues(("primary", "docfetching", "docprocessing", "light")) == []


def test_a_missing_kind_names_the_queue_nobody_polls() -> None:
    assert unpolled_queues(("primary", "docfetching", "docprocessing")) == ["checkpoint_cleanup"]
    assert "docprocessing" in unpolled_queues(("primary", "docfetching", "light"))


def test_the_bench_exits_2_with_one_line() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "bench.indexing", "--workers", "primary,docfetching"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "no worker polls" in lines[0], run.stderr
    assert "Traceback" not in run.stderr
