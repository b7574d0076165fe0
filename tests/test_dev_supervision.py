"""`sluice dev` keeps its workers running, and `sluice status` says what is wrong.

Real processes throughout: `sluice dev` with its own Temporal, Postgres and Redis, a
worker killed with SIGKILL the way the OOM killer does it, and `sluice status` against
a Temporal with no worker at all and against no Temporal at all.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from sluice import supervise
from sluice.devstack import dev_stack, free_port
from sluice.queues import ALL_QUEUES
from tests.support import only_line
from tests.test_dev_command import (
    RUN_TIMEOUT,
    _assert_nothing_left,
    _env,
    _start_interactive,
    _wait_for,
)

RESTART_TIMEOUT = 60.0


def _flat(text: str) -> str:
    return " ".join(text.split())


def _readyz(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=3) as r:
            return int(r.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def _not_defunct(pid: int) -> bool:
    """Gone for good: no process, or (pid reused) not a zombie."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _status(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sluice.cli.main", "status", *args],
        env={**env, "COLUMNS": "200", "TERM": "dumb"},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture
def interactive_dev(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    """`sluice dev --no-demo` in ``tmp_path``, up and waiting for Ctrl-C."""
    log = tmp_path / "dev.log"
    proc = _start_interactive(tmp_path, log)
    try:
        _wait_for(proc, log, "Ctrl-C stops everything.", RUN_TIMEOUT)
        yield proc, log
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_dev_restarts_a_killed_worker_and_still_stops_on_ctrl_c(
    tmp_path: Path, interactive_dev: tuple[subprocess.Popen[str], Path]
) -> None:
    proc, log = interactive_dev
    started = _flat(log.read_text())
    found = re.search(r"worker background: pid (\d+), health http://127\.0\.0\.1:(\d+)/", started)
    assert found, started
    old_pid, port = int(found[1]), int(found[2])
    assert _readyz(port) == 200
    # Another shell in the same folder finds the stack through dev.env.
    healthy = _status(tmp_path, _env(tmp_path / "data"))
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    assert f"sluice-background-{old_pid}@" in healthy.stdout

    killed_at = time.monotonic()
    os.kill(old_pid, signal.SIGKILL)
    out = _wait_for(proc, log, "is ready again", RESTART_TIMEOUT)
    restart_took = time.monotonic() - killed_at
    flat = _flat(out)
    assert (
        f"worker background (pid {old_pid}) died: killed by SIGKILL (signal 9); "
        f"log {tmp_path / 'data' / 'logs' / 'worker-background.log'}; restarting in 1s"
    ) in flat
    restarted = re.search(r"worker background restarted as pid (\d+); waiting for", flat)
    assert restarted, flat
    new_pid = int(restarted[1])
    assert new_pid != old_pid
    assert re.search(rf"worker background \(pid {new_pid}\) is ready again, [\d.]+s after", flat)
    assert _readyz(port) == 200, "the replacement serves the same health port"
    assert psutil.Process(new_pid).ppid() == proc.pid
    assert _not_defunct(old_pid), f"pid {old_pid} left <defunct>"
    print(f"\nworker SIGKILLed -> replacement ready in {restart_took:.1f}s (backoff 1s)")

    proc.send_signal(signal.SIGINT)
    code = proc.wait(60)
    out = log.read_text(errors="replace")
    assert code == 0, out
    assert "Traceback" not in out
    assert "stopping workers..." in out and "stopped." in out
    assert not (tmp_path / ".sluice" / "dev.env").exists()
    _assert_nothing_left(tmp_path)


def test_a_crash_looping_worker_is_reported_and_retried_at_the_capped_interval(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Real processes that die at once; the backoff scaled down from 1 s..30 s.
    monkeypatch.setattr(supervise, "RESTART_FIRST", 0.05)
    monkeypatch.setattr(supervise, "RESTART_MAX", 0.4)
    worker = supervise.Worker(
        kind="flaky",
        argv=[sys.executable, "-c", "import sys; sys.exit(3)"],
        env=dict(os.environ),
        port=free_port(),
        log=tmp_path / "flaky.log",
        backoff=supervise.RESTART_FIRST,
    )
    worker.start()
    lines: list[str] = []
    ctrl_c = threading.Timer(6.0, os.kill, (os.getpid(), signal.SIGINT))
    ctrl_c.start()
    t0 = time.monotonic()
    try:
        supervise.supervise([worker], lines.append)
    finally:
        ctrl_c.cancel()
    print(f"\n{time.monotonic() - t0:.1f}s of a crash loop:\n" + "\n".join(lines))

    deaths = [line for line in lines if " died: exit code 3; " in line]
    looping = [line for line in lines if "keeps crashing" in line]
    assert looping == [
        f"worker flaky keeps crashing (5 times within 60s); retrying every 0.4s, see {worker.log}"
    ], lines
    # 0.05 + 0.1 + 0.2 + 0.4 s (+ start-up and 0.25 s ticks), then one try per 0.4 s at
    # most: 6 s hold ~6-10 deaths; a loop that spins would show hundreds.
    assert 5 <= len(deaths) <= 20, lines
    assert all(line.endswith("restarting in 0.4s") for line in deaths[3:]), lines
    assert worker.proc is not None
    worker.proc.wait(5)
    supervise.stop_workers([worker])
    for p in psutil.Process().children():
        assert p.status() != psutil.STATUS_ZOMBIE, f"{p.pid} left <defunct>"


def test_status_reports_unpolled_queues_and_a_down_temporal_without_a_traceback(
    services: dict[str, str], tmp_path: Path
) -> None:
    with dev_stack(
        tmp_path / "stack",
        database_url=services["DATABASE_URL"],
        redis_url=services["REDIS_URL"],
        ports={"temporal": None},
        ui=False,
    ) as stack:
        env = {**os.environ, **stack.env}
        no_workers = _status(tmp_path, env)
    out = no_workers.stdout + no_workers.stderr
    assert no_workers.returncode == 1, out
    assert "Traceback" not in out
    assert re.search(r"temporal │ ok \(127\.0\.0\.1:\d+\)", out), out
    for queue in ALL_QUEUES:
        assert re.search(rf"│ {queue.value} +│ not polled +│ - +│", out), out
    assert f"unhealthy: {len(ALL_QUEUES)} of {len(ALL_QUEUES)} queues not polled" in out

    gone = {**env, "TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}"}
    down = _status(tmp_path, gone, "-q", "primary")
    out = down.stdout + down.stderr
    assert down.returncode == 1, out
    assert "Traceback" not in out
    assert "connection refused" in out
    assert "unknown (Temporal is down)" in out
    assert "unhealthy: temporal down; 1 queues not checked" in out

    bad = _status(tmp_path, env, "--queue", "nope")
    assert bad.returncode == 2
    assert only_line(bad.stderr).startswith("error: unknown task queue 'nope'")
