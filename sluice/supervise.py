"""Keep `sluice dev`'s worker processes running, as supervisord did for the seed's workers.

While `sluice dev` waits for Ctrl-C, a worker that exits (crash, SIGKILL, OOM killer) is
reaped at once, reported in one line (kind, pid, exit code or signal, log file) and
started again with the same command, environment and health port after a backoff:
1 s, doubling, capped at 30 s. A worker that keeps crashing is said to, and is retried
at the capped interval rather than in a tight loop. The replacement is announced once
its ``/readyz`` answers 200.

Nothing here imports Temporal: the supervisor must keep working whatever state the
services it watches are in, and it stays cheap to import.
"""

from __future__ import annotations

import signal
import subprocess
import threading
import time
import urllib.request
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from sluice.devstack import die_with_parent
from sluice.errors import SluiceError

RESTART_FIRST = 1.0
"""Seconds before the first restart of a worker that died."""
RESTART_MAX = 30.0
"""Cap of the doubling backoff, and the interval for a worker that keeps crashing."""
CRASH_WINDOW = 60.0
CRASH_LOOP = 5
"""This many deaths within ``CRASH_WINDOW`` seconds is reported as a crash loop."""
STABLE_AFTER = 60.0
"""A worker ready for this long before it dies starts again from ``RESTART_FIRST``."""
TICK = 0.25
PROBE_EVERY = 0.5
STOP_TIMEOUT = 20.0

Say = Callable[[str], None]


@dataclass
class Worker:
    """One supervised worker process: how to start it, and what happened to it so far."""

    kind: str
    argv: list[str]
    env: dict[str, str]
    port: int
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    died_at: float | None = None
    ready_at: float | None = None
    restart_at: float | None = None
    next_probe: float = 0.0
    backoff: float = RESTART_FIRST
    crashes: deque[float] = field(default_factory=deque)
    crash_looping: bool = False

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    @property
    def readyz(self) -> str:
        return f"http://127.0.0.1:{self.port}/readyz"

    def start(self) -> None:
        """Spawn the process; its output is appended to the worker's log file."""
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                self.argv,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                # Its own session (Ctrl-C reaches only `sluice dev`, which stops workers
                # first), and SIGTERM (a graceful stop) if `sluice dev` itself is killed.
                preexec_fn=die_with_parent(signal.SIGTERM),
            )
        self.ready_at = None
        self.restart_at = None
        self.next_probe = 0.0


def is_ready(port: int, timeout: float = 2.0) -> bool:
    """Does the worker's ``/readyz`` answer 200 (Temporal, Postgres, Redis, polling ok)?"""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=timeout) as r:
            return bool(r.status == 200)
    except OSError:
        return False


def describe_exit(returncode: int) -> str:
    """``exit code 1`` or ``killed by SIGKILL (signal 9)``: what an operator greps for."""
    if returncode >= 0:
        return f"exit code {returncode}"
    try:
        name = signal.Signals(-returncode).name
    except ValueError:
        name = "an unknown signal"
    return f"killed by {name} (signal {-returncode})"


def log_tail(log: Path, lines: int = 10) -> str:
    """The end of a worker's log: why it died, without sending the reader to the file."""
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def wait_ready(workers: list[Worker], timeout: float = 120) -> None:
    """Block until every worker is ready; a worker that exits first fails the start-up.

    At start-up a worker that dies is a configuration problem, not bad luck: say why
    (its log tail) instead of restarting it.
    """
    deadline = time.monotonic() + timeout
    pending = list(workers)
    while pending:
        for w in list(pending):
            assert w.proc is not None
            if w.proc.poll() is not None:
                raise SluiceError(
                    f"worker {w.kind} exited with {w.proc.returncode}:\n{log_tail(w.log)}"
                )
            if is_ready(w.port):
                w.ready_at = time.monotonic()
                pending.remove(w)
        if pending and time.monotonic() > deadline:
            names = ", ".join(w.kind for w in pending)
            raise SluiceError(f"workers not ready after {timeout:.0f}s: {names}")
        if pending:
            time.sleep(0.2)


def stop_workers(workers: list[Worker], timeout: float = STOP_TIMEOUT) -> None:
    """SIGTERM every running worker (they drain), then wait; SIGKILL what is left."""
    running = [w.proc for w in workers if w.proc is not None and w.proc.poll() is None]
    for proc in running:
        proc.send_signal(signal.SIGTERM)
    for proc in running:
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@contextmanager
def _stop_requested() -> Iterator[threading.Event]:
    """An event set by SIGINT/SIGTERM, so Ctrl-C ends the loop instead of raising in it.

    A Python-level handler (not ``sigwait``) because the signal may be delivered to a
    native thread the Temporal SDK left behind; the handler still runs in this thread.
    """
    stop = threading.Event()

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def supervise(workers: list[Worker], say: Say) -> None:
    """Watch, reap and restart ``workers`` until SIGINT or SIGTERM; returns on either."""
    with _stop_requested() as stop:
        while not stop.is_set():
            now = time.monotonic()
            for w in workers:
                _tick(w, now, say)
            stop.wait(TICK)


def _tick(w: Worker, now: float, say: Say) -> None:
    """One look at one worker: reap it if it died, restart it when due, probe a new one."""
    if w.proc is not None and w.restart_at is None and w.proc.poll() is not None:
        _on_death(w, now, say)
    elif w.restart_at is not None and now >= w.restart_at:
        _restart(w, now, say)
    elif w.ready_at is None and w.restart_at is None and now >= w.next_probe:
        w.next_probe = now + PROBE_EVERY
        if is_ready(w.port):
            _on_ready(w, say)


def _on_death(w: Worker, now: float, say: Say) -> None:
    """Report the death in one line and schedule the restart after the backoff."""
    assert w.proc is not None and w.proc.returncode is not None
    if w.ready_at is not None and now - w.ready_at >= STABLE_AFTER:
        w.backoff = RESTART_FIRST
    w.crashes.append(now)
    while w.crashes and now - w.crashes[0] > CRASH_WINDOW:
        w.crashes.popleft()
    delay = w.backoff
    w.backoff = min(w.backoff * 2, RESTART_MAX)
    if len(w.crashes) >= CRASH_LOOP:
        delay = w.backoff = RESTART_MAX
    w.died_at = w.died_at if w.ready_at is None and w.died_at is not None else now
    w.ready_at, w.restart_at = None, now + delay
    say(
        f"worker {w.kind} (pid {w.proc.pid}) died: {describe_exit(w.proc.returncode)}; "
        f"log {w.log}; restarting in {delay:g}s"
    )
    if len(w.crashes) >= CRASH_LOOP and not w.crash_looping:
        w.crash_looping = True
        say(
            f"worker {w.kind} keeps crashing ({len(w.crashes)} times within "
            f"{CRASH_WINDOW:.0f}s); retrying every {RESTART_MAX:g}s, see {w.log}"
        )


def _restart(w: Worker, now: float, say: Say) -> None:
    """Start the replacement; a failure to even spawn counts as another death."""
    try:
        w.start()
    except OSError as exc:
        w.restart_at = now + w.backoff
        say(f"worker {w.kind} could not be started ({exc}); retrying in {w.backoff:g}s")
        return
    say(f"worker {w.kind} restarted as pid {w.pid}; waiting for {w.readyz}")


def _on_ready(w: Worker, say: Say) -> None:
    """The replacement answers ``/readyz`` 200: say so, and how long the outage lasted."""
    w.ready_at = time.monotonic()
    since = f", {w.ready_at - w.died_at:.1f}s after it died" if w.died_at is not None else ""
    say(f"worker {w.kind} (pid {w.pid}) is ready again{since}")
    w.crash_looping = False
