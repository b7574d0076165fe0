"""Structured logs: JSON lines that say whose work they describe, and never a secret.

Activity log lines must carry ``tenant_id`` (bound by the tenant interceptor from the
Temporal header) and ``workflow_id`` / ``run_id`` / ``activity_type``; keys that name
credentials are masked wherever they appear.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from temporalio.testing import WorkflowEnvironment

from sluice import connector_ops
from sluice.logging import configure_logging
from sluice.temporal.workflow_ids import connector_workflow_id
from tests.support import FAST, running_workers


class JsonCapture:
    def __init__(self, stream: io.StringIO) -> None:
        self.stream = stream

    def records(self) -> list[dict[str, Any]]:
        lines = [line for line in self.stream.getvalue().splitlines() if line.strip()]
        parsed = []
        for line in lines:
            try:
                parsed.append(json.loads(line))
            except json.JSONDecodeError:
                raise AssertionError(f"not a JSON log line: {line!r}") from None
        return parsed

    def events(self, event: str) -> list[dict[str, Any]]:
        return [r for r in self.records() if r.get("event") == event]


@pytest.fixture
def json_logs() -> Iterator[JsonCapture]:
    """JSON logging as in production, with a copy of every line in a StringIO."""
    configure_logging("json", "INFO")
    root = logging.getLogger()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(root.handlers[0].formatter)
    root.addHandler(handler)
    try:
        yield JsonCapture(stream)
    finally:
        root.removeHandler(handler)
        configure_logging("console", "INFO")


async def test_activity_lines_name_tenant_workflow_run_and_activity(
    dev_env: WorkflowEnvironment, tenant: str, json_logs: JsonCapture
) -> None:
    client = dev_env.client
    async with running_workers(client):
        pair = await connector_ops.add_connector(
            client,
            tenant,
            name="logged",
            source="synthetic",
            config={"count": 12, "size_bytes": 400, "seed": 7},
            tuning=FAST,
        )
        final = await connector_ops.wait_for_attempts(client, tenant, pair.id, 1, timeout=60)
    assert final.last_attempt_status == "success"

    workflow_id = connector_workflow_id(tenant, pair.id)
    expected = {
        "index attempt started": "start_index_attempt",
        "batch indexed": "process_batch",
        "index attempt finished": "finish_index_attempt",
    }
    run_ids = set()
    for event, activity_type in expected.items():
        lines = [r for r in json_logs.events(event) if r.get("tenant_id") == tenant]
        assert lines, f"no {event!r} line for {tenant}: {json_logs.records()[-10:]}"
        for line in lines:
            assert line["workflow_id"] == workflow_id, line
            assert line["activity_type"] == activity_type, line
            assert line["run_id"], line
            assert line["level"] == "info"
            assert "timestamp" in line
            run_ids.add(line["run_id"])
    # One attempt of one workflow run: every line points at the same run.
    assert len(run_ids) == 1, run_ids
    batches = [r for r in json_logs.events("batch indexed") if r.get("tenant_id") == tenant]
    assert sum(r["indexed"] for r in batches) == 12


def test_secrets_are_masked_at_every_level(json_logs: JsonCapture) -> None:
    log = structlog.get_logger("sluice.test")
    log.info(
        "connector configured",
        api_key="sk-top-level",
        config={
            "path": "/srv/docs",
            "api_key": "sk-nested",
            "auth": {"password": "hunter2", "user": "bob"},
            "headers": [{"token": "tok-in-list"}],
        },
    )
    logging.getLogger("sluice.stdlib").warning(
        "stdlib call", extra={"client_secret": "cs-extra", "attempt": 3}
    )

    text = json_logs.stream.getvalue()
    for secret in ("sk-top-level", "sk-nested", "hunter2", "tok-in-list", "cs-extra"):
        assert secret not in text, f"{secret} leaked: {text}"

    (line,) = json_logs.events("connector configured")
    assert line["api_key"] == "***"
    assert line["config"]["api_key"] == "***"
    assert line["config"]["auth"] == {"password": "***", "user": "bob"}
    assert line["config"]["headers"] == [{"token": "***"}]
    assert line["config"]["path"] == "/srv/docs"
    (stdlib,) = json_logs.events("stdlib call")
    assert stdlib["client_secret"] == "***"
    assert stdlib["attempt"] == 3
    assert stdlib["level"] == "warning"


def test_logging_a_config_does_not_change_it(json_logs: JsonCapture) -> None:
    config = {"api_key": "sk-still-here", "nested": {"password": "pw"}}
    structlog.get_logger("sluice.test").info("config seen", config=config)
    assert config == {"api_key": "sk-still-here", "nested": {"password": "pw"}}
    (line,) = json_logs.events("config seen")
    assert line["config"] == {"api_key": "***", "nested": {"password": "***"}}
