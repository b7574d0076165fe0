"""Bad input, generated: connector configs, tenant IDs, command lines, Update payloads
and uploaded bytes. Each either works or fails with one clear error naming the field;
nothing is created half-way; no traceback reaches a user.

Checks that talk to the real servers draw their examples with hypothesis first, then
run them (the servers' clients live on the test's event loop); pure checks are plain
``@given`` tests that shrink failures to the smallest input.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from temporalio.client import WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from sluice import connector_ops
from sluice.connectors.filesystem import UnreadableFile, extract_text
from sluice.connectors.registry import CONNECTORS, config_fields, validate_config
from sluice.errors import ConfigurationError, InvalidTenantError
from sluice.indexing.models import SettingsUpdate
from sluice.tenancy import validate_tenant_id
from sluice.userfiles.parse import SUPPORTED
from tests.support import fetchval, only_line, running_workers

FUZZ = settings(max_examples=200, deadline=None, database=None)

# What a shell can pass as an argument: no NUL, no lone surrogates.
arg_text = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=40)
json_leaf = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
json_value = st.recursive(
    json_leaf,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=6,
)


def draw(strategy: st.SearchStrategy[Any], n: int) -> list[Any]:
    """``n`` examples of ``strategy`` (for checks that must run on the test's loop)."""
    found: list[Any] = []

    @settings(max_examples=n, deadline=None, database=None, derandomize=True)
    @given(strategy)
    def collect(value: Any) -> None:
        found.append(value)

    collect()
    return found


def one_clear_line(message: str) -> None:
    assert message and "\n" not in message.strip() and "Traceback" not in message


# --- pure ---------------------------------------------------------------------------------


@FUZZ
@given(st.text(max_size=70) | st.integers() | st.none() | st.binary(max_size=10))
def test_tenant_ids_are_valid_or_refused_by_name(candidate: object) -> None:
    try:
        assert validate_tenant_id(candidate) == candidate
    except InvalidTenantError as exc:
        one_clear_line(str(exc))
        assert "tenant_id" in str(exc)


@FUZZ
@given(
    source=st.sampled_from(sorted(CONNECTORS)),
    config=st.dictionaries(
        st.sampled_from(["count", "path", "start_url", "size_bytes", "seed", "name", "x"])
        | st.text(max_size=10),
        json_value,
        max_size=4,
    ),
)
def test_connector_configs_are_valid_or_name_the_field(source: str, config: dict[str, Any]) -> None:
    try:
        normalised = validate_config(source, config)
    except ConfigurationError as exc:
        one_clear_line(str(exc))
        assert "field" in str(exc) or "path" in str(exc) or source in str(exc), str(exc)
    else:
        assert set(normalised) <= set(config_fields(source))


@FUZZ
@given(raw=st.binary(max_size=400), name=st.sampled_from([*SUPPORTED, ".pdf", "", ".MD"]))
def test_uploaded_bytes_parse_or_are_refused_with_a_reason(raw: bytes, name: str) -> None:
    try:
        title, sections, _ = extract_text(raw, "upload" + name, SUPPORTED)
    except UnreadableFile as exc:
        one_clear_line(str(exc))
    else:
        assert title is None or isinstance(title, str)
        assert all(isinstance(section, str) for section in sections)


@FUZZ
@given(st.dictionaries(st.text(max_size=30), json_value, max_size=3))
def test_update_payloads_are_typed_or_refused(payload: dict[str, Any]) -> None:
    try:
        SettingsUpdate.model_validate(payload)
    except ValidationError as exc:
        assert exc.error_count() >= 1


# --- through the real servers --------------------------------------------------------------


async def test_settings_updates_on_a_running_connector_work_or_name_the_field(
    dev_env: WorkflowEnvironment, tenant: str
) -> None:
    """Random Updates to a live connector's workflow: each is applied or rejected by the
    validator before anything is written; the workflow lives on either way."""
    client = dev_env.client
    pair = await connector_ops.add_connector(
        client, tenant, name="fuzzed", source="synthetic", config={"count": 5}
    )
    changes = draw(
        st.builds(
            dict,
            refresh_interval_seconds=st.none() | st.integers(-5, 10**6),
            config=st.dictionaries(
                st.sampled_from(["count", "size_bytes", "x", "path"]), json_value, max_size=2
            ),
        ),
        25,
    )
    async with running_workers(client):
        for change in changes:
            try:
                await connector_ops.update_connector(client, tenant, pair.id, **change)
            except (ConfigurationError, WorkflowUpdateFailedError, ValidationError) as exc:
                one_clear_line(str(exc))
    described = await connector_ops.handle(client, tenant, pair.id).describe()
    assert described.status is not None and described.status.name == "RUNNING"


def _cli(
    env: WorkflowEnvironment, tenant: str, args: list[str]
) -> subprocess.CompletedProcess[str]:
    environ = {
        **os.environ,
        "TEMPORAL_ADDRESS": env.client.service_client.config.target_host,
        "DEFAULT_TENANT": tenant,
    }
    return subprocess.run(
        [sys.executable, "-m", "sluice.cli.main", *args],
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )


command_lines = st.one_of(
    st.tuples(st.just("connector"), st.sampled_from(["status", "pause", "index-now"]), arg_text),
    st.tuples(st.just("document"), st.just("show"), arg_text),
    st.tuples(st.just("search"), arg_text, st.just("-k"), arg_text),
    st.tuples(
        st.just("connector"),
        st.just("add"),
        st.just("--name"),
        arg_text,
        st.just("--source"),
        st.sampled_from(["synthetic", "filesystem", "web"]) | arg_text,
        st.just("--config"),
        arg_text,
    ),
    st.lists(arg_text, min_size=1, max_size=4),
).map(list)


async def test_command_lines_work_or_fail_with_one_line_and_create_nothing_half_way(
    dev_env: WorkflowEnvironment, tenant: str, tmp_path: Path
) -> None:
    lines = draw(command_lines, 30)
    added = 0
    for args in lines:
        done = await asyncio.to_thread(_cli, dev_env, tenant, args)
        output = done.stdout + done.stderr
        assert "Traceback" not in output, (args, output)
        assert done.returncode in (0, 2), (args, output)
        if done.returncode == 2:
            assert only_line(done.stderr).startswith("error:"), (args, done.stderr)
        elif args[:2] == ["connector", "add"]:
            added += 1
    pairs = await fetchval(tenant, "SELECT count(*) FROM connector_credential_pair")
    assert pairs == added, "a failed add left a cc-pair behind"
