"""A private PostgreSQL for fault injection: kill it, restart it, freeze it.

The session-wide Postgres (the ``services`` fixture) is never touched: a fault test
gets its own server (own data directory, own port), started by the same code as
``sluice dev`` (:func:`sluice.devstack.start_postgres`, PostgreSQL 18 + pgvector).

* ``kill()``: SIGKILL the postmaster and every process under it. New connections
  are *refused*; open ones break.
* ``restart()`` / ``await restart_async()``: start again on the same port and data
  directory (crash recovery replays the WAL), wait until it accepts connections.
* ``freeze()`` / ``thaw()``: SIGSTOP / SIGCONT the postmaster and every backend.
  The kernel still completes TCP handshakes, so connections and queries *hang*
  instead of failing (a stuck or partitioned database).
* ``await outage(seconds)``, ``async with down()``, ``with frozen()``: the same as
  bounded episodes that always end with a working server.

From a test module (module-scoped server, a fresh tenant per test)::

    from tests.pgfaults import PrivatePostgres, private_db, private_tenant  # noqa: F401

    @pytest.mark.faults
    async def test_x(private_db: PrivatePostgres, private_tenant: str) -> None:
        async with private_db.down():
            ...  # the process's DATABASE_URL points at the dead server

While the module runs, ``DATABASE_URL`` names the private server and the engines
are rebuilt; afterwards the previous URL, settings and engines come back.

No server outlives the test run: teardown kills the process tree (thawing first),
the postmaster dies with its starting thread (``PR_SET_PDEATHSIG``), and a small
reaper process SIGKILLs whatever is left if the test process itself dies, which also
covers a frozen server (a stopped process ignores everything but SIGKILL).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import pytest_asyncio

from sluice.devstack import Service, free_port, start_postgres
from tests.leftovers import retire

# --- Process trees (Linux /proc) ----------------------------------------------------------
# Postgres backends call setsid(), so they are not in the postmaster's process group:
# signalling the group would miss them. The tree is found through parent pids instead.


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) of ``pid``, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return fields[0], int(fields[1])


def _descendants(root: int) -> list[int]:
    """Every live process below ``root`` (children first found, then theirs)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = _stat(int(entry))
            if st is not None and st[0] != "Z":
                children.setdefault(st[1], []).append(int(entry))
    found: list[int] = []
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _alive(pid: int) -> bool:
    st = _stat(pid)
    return st is not None and st[0] != "Z"


def _signal(pids: list[int], sig: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def _wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} within {timeout:.0f}s")
        time.sleep(0.005)


def _stop(pids: list[int]) -> None:
    """SIGSTOP ``pids`` and wait until every one is stopped (or gone)."""
    _signal(pids, signal.SIGSTOP)
    _wait_for(
        lambda: all((_stat(p) or ("X", 0))[0] in "TtXZ" for p in pids), 5, f"{pids} not stopped"
    )


def _stop_postmaster(pid: int) -> None:
    """Stop the postmaster first: a stopped postmaster forks no new backends."""
    _stop([pid])


def kill_tree(pid: int) -> list[int]:
    """SIGKILL ``pid`` and all its descendants (stopped or not); the pids signalled."""
    if not _alive(pid):
        return []
    _stop_postmaster(pid)
    tree = [*_descendants(pid), pid]
    _signal(tree, signal.SIGKILL)
    return tree


def _reaper_main() -> None:
    """Child process: track postmaster pids from stdin; when stdin closes (the test
    process ended, however it ended), SIGKILL the trees still registered."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    pids: set[int] = set()
    for line in sys.stdin:
        line = line.strip()
        if line.startswith("-"):
            pids.discard(int(line[1:]))
        elif line:
            pids.add(int(line))
    for pid in pids:
        try:
            with open(f"/proc/{pid}/comm") as f:
                if f.read().strip() != "postgres":
                    continue  # pid reused by something else
        except FileNotFoundError:
            continue
        kill_tree(pid)


# --- The private server -------------------------------------------------------------------


class PrivatePostgres:
    """A PostgreSQL 18 + pgvector of one's own, to kill, restart and freeze.

    ``url`` has the form the project uses for ``DATABASE_URL``
    (``postgresql+asyncpg://postgres@127.0.0.1:<port>/sluice``); it stays the same
    across restarts. Use as a context manager, or call :meth:`start` / :meth:`stop`.
    """

    def __init__(self, data_dir: Path, port: int | None = None, database: str = "sluice") -> None:
        self.data_dir = Path(data_dir).resolve()
        self.port = port or free_port()
        self.database = database
        self.url = f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"
        self.log = self.data_dir / "logs" / "postgres.log"
        self.is_frozen = False
        self._service: Service | None = None
        # Every start happens on this one thread: the postmaster's parent-death signal
        # fires when the thread that forked it ends, so the thread must live as long
        # as the server, and starting there keeps the event loop free during restarts.
        self._starter = ThreadPoolExecutor(1, thread_name_prefix="private-postgres")
        self._reaper: subprocess.Popen[bytes] | None = None

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> PrivatePostgres:
        """Start the server (initdb on first start) and wait until it accepts connections."""
        if self.running:
            return self
        if self._reaper is None:
            self._reaper = subprocess.Popen(
                [sys.executable, "-c", "from tests.pgfaults import _reaper_main; _reaper_main()"],
                cwd=Path(__file__).resolve().parents[1],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        self._starter.submit(self._start).result()
        return self

    def _start(self) -> None:
        service, url = start_postgres(self.data_dir, self.port, self.database)
        assert url == self.url, (url, self.url)
        self._service = service
        self._tell_reaper(str(self.pid))

    def stop(self) -> None:
        """Kill the server (no shutdown checkpoint needed: the data is scratch) and the
        helper thread and reaper. Safe to call twice, or after a failed start."""
        with contextlib.suppress(Exception):
            self.kill()
        self._starter.shutdown(wait=True)
        if self._reaper is not None:
            with contextlib.suppress(OSError):
                assert self._reaper.stdin is not None
                self._reaper.stdin.close()
            try:
                self._reaper.wait(15)
            except subprocess.TimeoutExpired:
                self._reaper.kill()
                self._reaper.wait(5)
            self._reaper = None

    def __enter__(self) -> PrivatePostgres:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def pid(self) -> int | None:
        """The postmaster's pid, or None if never started."""
        return self._service.proc.pid if self._service else None

    @property
    def running(self) -> bool:
        """The postmaster process exists (it may be frozen)."""
        return self._service is not None and self._service.proc.poll() is None

    def backend_pids(self) -> list[int]:
        """Every process under the postmaster (backends and auxiliary processes)."""
        return _descendants(self.pid) if self.running and self.pid else []

    # -- faults -------------------------------------------------------------------------

    def kill(self) -> None:
        """SIGKILL the postmaster and all its descendants; return once they are gone.

        Afterwards connections to :attr:`url` are refused; open ones are broken.
        """
        service = self._service
        if service is None or service.proc.poll() is not None:
            self.is_frozen = False
            return
        pid = service.proc.pid
        tree = kill_tree(pid)
        service.proc.wait(10)  # reaped, so the stale postmaster.pid is seen as stale
        # Orphaned backends are reaped by init; the next postmaster refuses to start
        # while one of them still holds the old shared memory.
        _wait_for(lambda: not any(_alive(p) for p in tree), 10, "killed backends still alive")
        self.is_frozen = False
        self._tell_reaper(f"-{pid}")

    def restart(self) -> None:
        """Start again on the same port and data directory (kills first if needed)."""
        self.kill()
        self.start()

    async def restart_async(self) -> None:
        """:meth:`restart` without blocking the event loop while the server comes up."""
        self.kill()
        await asyncio.wrap_future(self._starter.submit(self._start))

    def freeze(self) -> None:
        """SIGSTOP the postmaster, then every process under it: nothing answers, and
        connecting or querying hangs (TCP handshakes still complete in the kernel)."""
        if not self.running or self.is_frozen:
            return
        assert self.pid is not None
        _stop_postmaster(self.pid)
        _stop(_descendants(self.pid))
        self.is_frozen = True

    def thaw(self) -> None:
        """SIGCONT everything :meth:`freeze` stopped."""
        if not self.running or not self.is_frozen:
            self.is_frozen = False
            return
        assert self.pid is not None
        _signal([*_descendants(self.pid), self.pid], signal.SIGCONT)
        self.is_frozen = False

    def heal(self) -> None:
        """Back to a working server, whatever a test left behind."""
        self.thaw()
        if not self.running:
            self.restart()

    async def outage(self, seconds: float) -> None:
        """Kill, stay down for ``seconds`` (the loop keeps running), restart."""
        async with self.down():
            await asyncio.sleep(seconds)

    @contextlib.asynccontextmanager
    async def down(self) -> AsyncIterator[PrivatePostgres]:
        """Killed inside the block; restarted (and ready) when it ends, even on error."""
        self.kill()
        try:
            yield self
        finally:
            await self.restart_async()

    @contextlib.contextmanager
    def frozen(self) -> Iterator[PrivatePostgres]:
        """Frozen inside the block; thawed when it ends, even on error."""
        self.freeze()
        try:
            yield self
        finally:
            self.thaw()

    # -- internals ----------------------------------------------------------------------

    def _tell_reaper(self, line: str) -> None:
        if self._reaper is not None and self._reaper.stdin is not None:
            with contextlib.suppress(OSError):
                self._reaper.stdin.write(line.encode() + b"\n")
                self._reaper.stdin.flush()


# --- Fixtures -----------------------------------------------------------------------------


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def private_db(
    services: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[PrivatePostgres]:
    """A private Postgres for this module; ``DATABASE_URL`` points at it meanwhile.

    ``services`` (the session's Postgres and Redis) is started first and comes back
    afterwards: the previous ``DATABASE_URL``, fresh settings, and engines rebuilt on
    first use. Engines to the private server are disposed before it stops.
    """
    from sluice.config import get_settings
    from sluice.db.engine import dispose_engines

    pg = PrivatePostgres(tmp_path_factory.mktemp("private-pg"))
    with pg:
        saved = os.environ.get("DATABASE_URL")
        await dispose_engines()
        os.environ["DATABASE_URL"] = pg.url
        get_settings.cache_clear()
        try:
            yield pg
        finally:
            pg.heal()  # a frozen server would hang the pool's goodbyes
            with contextlib.suppress(Exception):
                await asyncio.wait_for(dispose_engines(), 15)
            if saved is None:
                os.environ.pop("DATABASE_URL", None)
            else:
                os.environ["DATABASE_URL"] = saved
            get_settings.cache_clear()


@pytest_asyncio.fixture(loop_scope="session")
async def private_tenant(private_db: PrivatePostgres) -> AsyncIterator[str]:
    """A fresh tenant migrated into the private server; the server is healed (thawed,
    restarted if dead) before and after the test, so one test's fault ends with it."""
    from sluice.db.migrate import migrate_tenant

    private_db.heal()
    tenant_id = "t_" + uuid.uuid4().hex[:10]
    await migrate_tenant(tenant_id)
    yield tenant_id
    private_db.heal()
    await retire(tenant_id)
