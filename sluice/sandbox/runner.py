"""Run one command under limits; nothing of it survives the call.

* a fresh temporary directory as its working directory (and HOME), removed afterwards;
* its own process group (a new session), so the whole tree is killed together;
* ``RLIMIT_AS`` set before exec (``preexec_fn``): an allocation past the limit fails in
  the command, which exits non-zero and says so;
* ``PR_SET_PDEATHSIG`` (Linux): the command is killed if the worker process dies;
* a wall-clock limit, after which the group is SIGKILLed;
* output (stdout and stderr together) kept as a tail of at most ``output_cap_bytes``;
* ``beat`` called about every second (the activity's heartbeat; a cancel arrives there).

On cancellation, timeout and normal exit alike the process group is SIGKILLed, so a
background child the command left behind cannot outlive the run either.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import tempfile
import time
from collections.abc import Callable

from sluice.sandbox.models import ProducedFile, RunStatus, SandboxRequest, SandboxResult

BEAT_SECONDS = 1.0
MAX_LISTED_FILES = 1000
_OUT_OF_MEMORY = re.compile(r"MemoryError|Cannot allocate memory|bad_alloc|out of memory", re.I)


class OutputTail:
    """The last ``cap`` bytes of a stream, and how many bytes went by."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.buffer = bytearray()
        self.total = 0

    def add(self, chunk: bytes) -> None:
        self.total += len(chunk)
        self.buffer += chunk[-self.cap :]
        if len(self.buffer) > self.cap:
            del self.buffer[: len(self.buffer) - self.cap]


def _limits(memory_mb: int) -> Callable[[], None]:
    def apply() -> None:  # runs in the child, between fork and exec
        import resource

        limit = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        with contextlib.suppress(Exception):
            import ctypes

            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PDEATHSIG

    return apply


def _env(workdir: str) -> dict[str, str]:
    """A bare environment: the worker's secrets (DATABASE_URL...) never reach the command."""
    return {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "HOME": workdir,
        "TMPDIR": workdir,
        "LANG": "C.UTF-8",
    }


def kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


async def _pump(stream: asyncio.StreamReader, tail: OutputTail) -> None:
    while chunk := await stream.read(65536):
        tail.add(chunk)


async def _supervise(
    proc: asyncio.subprocess.Process,
    req: SandboxRequest,
    tail: OutputTail,
    beat: Callable[[float, int], None],
) -> bool:
    """Wait for the command, beating every second; True if it ran out of time."""
    started = time.monotonic()
    waiter = asyncio.ensure_future(proc.wait())
    try:
        while not waiter.done():
            left = req.timeout_seconds - (time.monotonic() - started)
            if left <= 0:
                return True
            await asyncio.wait({waiter}, timeout=min(BEAT_SECONDS, left))
            beat(time.monotonic() - started, tail.total)
        return False
    finally:
        if not waiter.done():
            waiter.cancel()


async def run_command(req: SandboxRequest, beat: Callable[[float, int], None]) -> SandboxResult:
    """Run ``req.command``; the result says how it ended. A cancellation is re-raised once
    the process group is dead."""
    workdir = tempfile.mkdtemp(prefix="sluice-sandbox-")
    started = time.monotonic()
    result = SandboxResult(
        run_id=req.run_id, command=req.command, status=RunStatus.OK, exit_code=None
    )
    try:
        try:
            proc = await asyncio.create_subprocess_exec(
                *req.command,
                cwd=workdir,
                env=_env(workdir),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_limits(req.memory_mb),
            )
        except OSError as exc:
            result.status, result.detail = RunStatus.START_FAILED, f"cannot start: {exc}"
            return result
        await _run_started(proc, req, result, beat)
        result.files = await asyncio.to_thread(_produced, workdir)
        return result
    finally:
        result.seconds = round(time.monotonic() - started, 3)
        await asyncio.to_thread(shutil.rmtree, workdir, True)


async def _run_started(
    proc: asyncio.subprocess.Process,
    req: SandboxRequest,
    result: SandboxResult,
    beat: Callable[[float, int], None],
) -> None:
    tail = OutputTail(req.output_cap_bytes)
    assert proc.stdout is not None
    reader = asyncio.ensure_future(_pump(proc.stdout, tail))
    try:
        timed_out = await _supervise(proc, req, tail, beat)
    finally:
        kill_group(proc.pid)  # whatever happened, nothing of the run remains
        code = await asyncio.shield(proc.wait())
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(reader, 5)
    _describe(result, req, tail, code, timed_out)


def _describe(
    result: SandboxResult, req: SandboxRequest, tail: OutputTail, code: int, timed_out: bool
) -> None:
    result.output_tail = tail.buffer.decode("utf-8", errors="replace")
    result.output_bytes = tail.total
    result.truncated = tail.total > len(tail.buffer)
    result.exit_code = code
    if timed_out:
        result.status = RunStatus.TIMED_OUT
        result.detail = f"killed after its time limit of {req.timeout_seconds:g} s"
    elif code != 0 and _OUT_OF_MEMORY.search(result.output_tail):
        result.status = RunStatus.MEMORY_EXCEEDED
        result.detail = f"ran out of memory: its limit is {req.memory_mb} MB (exit {code})"
    elif code != 0:
        result.status = RunStatus.FAILED
        result.detail = f"killed by signal {-code}" if code < 0 else f"exit code {code}"


def _produced(workdir: str) -> list[ProducedFile]:
    """Regular files the command left in its directory (relative paths, at most 1,000)."""
    found: list[ProducedFile] = []
    for dirpath, _dirs, names in os.walk(workdir):
        for name in sorted(names):
            full = os.path.join(dirpath, name)
            if os.path.isfile(full) and not os.path.islink(full):
                rel = os.path.relpath(full, workdir).replace(os.sep, "/")
                found.append(ProducedFile(path=rel, size=os.path.getsize(full)))
            if len(found) >= MAX_LISTED_FILES:
                return found
    return sorted(found, key=lambda f: f.path)
