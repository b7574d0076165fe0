"""What a `sluice` command loads: the heavy libraries only where the command needs them.

Each case runs the command in a fresh interpreter (through the same ``build_app`` the
``sluice`` entry point uses) and lists the heavy packages it imported. The assertions are
about behaviour, not time: ``--help`` loads no database, Temporal or embedding code;
``connector list`` and ``index generations`` read Postgres without SQLAlchemy, the Temporal
SDK or the embedding model; a search embeds its query without the Temporal SDK or
SQLAlchemy; ``connector status`` asks Temporal with the client half of the SDK only.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import pytest
from temporalio.testing import WorkflowEnvironment

HEAVY = (
    "temporalio",
    "temporalio.worker",
    "wordllama",
    "numpy",
    "tokenizers",
    "sqlalchemy",
    "asyncpg",
    "structlog",
    "pydantic_settings",
    "httpx",
    "sluice.ccpairs",
    "sluice.connector_ops",
    "sluice.indexing.models",
    "workflows",
    "activities",
)

PROBE = """
import json, sys
from typer.testing import CliRunner
from sluice.cli.main import build_app, _COMMANDS

args = sys.argv[1:]
result = CliRunner().invoke(build_app(args[0] if args[0] in _COMMANDS else None), args)
heavy = sorted({h for m in sys.modules for h in HEAVY if m == h or m.startswith(h + ".")})
print(json.dumps({"code": result.exit_code, "output": result.output, "heavy": heavy}))
"""


async def loaded(*args: str, tenant: str = "default") -> tuple[int, str, set[str]]:
    """(exit code, output, heavy packages imported) of ``sluice ARGS`` in a new process."""
    code = f"HEAVY = {HEAVY!r}\n{PROBE}"
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", code, *args],
        env={**os.environ, "DEFAULT_TENANT": tenant, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    return report["code"], report["output"], set(report["heavy"])


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["search", "--help"],
        ["connector", "--help"],
        ["connector", "list", "--help"],
        ["connector", "status", "--help"],
        ["status", "--help"],
        ["files", "--help"],
        ["files", "upload", "--help"],
        ["files", "project", "add-member", "--help"],
        ["export", "--help"],
        ["sandbox", "run", "--help"],
    ],
    ids=" ".join,
)
async def test_help_loads_nothing_heavy(args: list[str]) -> None:
    code, output, heavy = await loaded(*args)
    assert code == 0, output
    assert "Usage" in output
    assert heavy == set()


async def test_connector_list_reads_postgres_without_temporal_or_the_model(tenant: str) -> None:
    code, output, heavy = await loaded("connector", "list", tenant=tenant)
    assert code == 0, output
    assert "source" in output and "status" in output  # the table's header
    assert "asyncpg" in heavy  # it did read the database, on a raw connection
    assert not heavy & {"sqlalchemy", "httpx", "temporalio", "workflows", "activities"}
    assert not heavy & {"wordllama", "numpy"}


async def test_search_embeds_without_temporal(tenant: str) -> None:
    code, output, heavy = await loaded("search", "how does a connector resume", tenant=tenant)
    assert code == 0, output
    # The query was embedded with the local model: its tokenizer and weights are read from
    # the wordllama wheel without importing the package (nor httpx, for OpenAI only).
    assert "tokenizers" in heavy
    assert not heavy & {"temporalio", "workflows", "activities", "sqlalchemy"}
    assert not heavy & {"wordllama", "httpx"}


async def test_index_generations_reads_postgres_without_temporal(tenant: str) -> None:
    code, output, heavy = await loaded("index", "generations", tenant=tenant)
    assert code == 0, output
    assert "live" in output
    assert "asyncpg" in heavy
    assert not heavy & {"sqlalchemy", "temporalio", "workflows", "activities", "numpy"}


async def test_connector_status_loads_only_the_temporal_client(
    dev_env: WorkflowEnvironment, tenant: str
) -> None:
    # No workflow for cc-pair 1: Temporal says so, then the database is asked whether the
    # pair exists (the raw path), and the command names what is missing.
    code, output, heavy = await loaded("connector", "status", "1", tenant=tenant)
    assert code == 2 and "cc-pair 1 does not exist" in output, output
    assert "temporalio" in heavy
    assert not heavy & {"temporalio.worker", "workflows", "activities"}
    assert not heavy & {"sqlalchemy", "httpx", "numpy", "wordllama", "tokenizers"}


async def test_files_list_reads_postgres_without_temporal_or_the_model(tenant: str) -> None:
    code, output, heavy = await loaded("files", "list", tenant=tenant)
    assert code == 0, output
    assert "owner" in output and "status" in output
    assert "sqlalchemy" in heavy
    assert not heavy & {"temporalio", "workflows", "activities", "wordllama", "numpy"}
