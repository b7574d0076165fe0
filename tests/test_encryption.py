"""Payload encryption: history holds no document path or connector name in clear; the
codec server (and ``temporal workflow show`` through it) reads it back; a rotated key
still decrypts old payloads; a wrong token is refused."""

from __future__ import annotations

import asyncio
import base64
import re
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from sluice import connector_ops
from sluice.config import load_settings
from sluice.devstack import free_port, temporal_dev_server_args, venv_bin
from sluice.errors import ConfigurationError
from sluice.payload_keys import new_key_spec, parse_keys
from sluice.temporal.client import data_converter
from sluice.temporal.codec import EncryptionCodec, PayloadKeyError
from sluice.temporal.interceptor import TenantInterceptor
from sluice.temporal.workflow_ids import connector_workflow_id
from tests.history_scan import histories, payloads_in
from tests.support import FAST, running_workers

KEY_OLD, KEY_NEW = new_key_spec("old"), new_key_spec("new")
TOKEN = "test-codec-token"
SECRET_PATH = "quarterly-zebra-merger"
CONNECTOR_NAME = "confidential-board-notes"


def _plain(text: str) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=f'"{text}"'.encode())


async def test_rotated_key_still_decrypts_and_compresses() -> None:
    old = EncryptionCodec(parse_keys(KEY_OLD))
    rotated = EncryptionCodec(parse_keys(f"{KEY_NEW},{KEY_OLD}"))
    text = "the same sentence again. " * 4000
    [sealed] = await old.encode([_plain(text)])
    assert sealed.metadata["encryption-key-id"] == b"old"
    assert len(sealed.data) < len(text) / 20  # compressed before it was encrypted
    assert (await rotated.decode([sealed]))[0].data == f'"{text}"'.encode()
    [resealed] = await rotated.encode([_plain("x")])
    assert resealed.metadata["encryption-key-id"] == b"new"
    with pytest.raises(PayloadKeyError, match="'new'"):
        await old.decode([resealed])
    plain = _plain("not encrypted")  # histories from before encryption still read
    assert (await rotated.decode([plain]))[0] == plain


def test_bad_key_is_one_line_naming_the_variable() -> None:
    with pytest.raises(ConfigurationError) as err:
        load_settings(sluice_payload_keys="k1:c2hvcnQ=")
    assert "SLUICE_PAYLOAD_KEYS='***'" in str(err.value)
    assert "32 bytes" in str(err.value)
    assert "c2hvcnQ" not in str(err.value)


def test_dev_server_gets_the_codec_endpoint() -> None:
    args = temporal_dev_server_args(7233, 8233, None, codec_endpoint="http://127.0.0.1:8081/t")
    assert args[args.index("--ui-codec-endpoint") + 1] == "http://127.0.0.1:8081/t"
    assert "--ui-codec-endpoint" not in temporal_dev_server_args(7233, 8233, None)


@pytest_asyncio.fixture(loop_scope="session")
async def encrypted(dev_env: WorkflowEnvironment) -> Client:
    """A client (and so workers) of the same dev server that encrypts its payloads."""
    settings = load_settings(sluice_payload_keys=f"{KEY_NEW},{KEY_OLD}")
    return await Client.connect(
        dev_env.client.service_client.config.target_host,
        data_converter=data_converter(settings),
        interceptors=[TenantInterceptor()],
    )


@pytest_asyncio.fixture(loop_scope="session")
async def codec_url() -> AsyncIterator[str]:
    from sluice.codec_server import run_codec_server

    port, stop = free_port(), asyncio.Event()
    keys = parse_keys(f"{KEY_NEW},{KEY_OLD}")
    task = asyncio.create_task(
        run_codec_server(keys, TOKEN, ["http://127.0.0.1:8233"], port, stop=stop)
    )
    await asyncio.sleep(0.2)
    yield f"http://127.0.0.1:{port}"
    stop.set()
    await task


async def test_history_holds_no_clear_text_and_the_codec_server_reads_it(
    dev_env: WorkflowEnvironment, encrypted: Client, codec_url: str, tenant: str, tmp_path: Path
) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i in range(3):
        (corpus / f"{SECRET_PATH}-{i}.md").write_text(f"# Merger {i}\n\nZebra terms {i}.\n")
    async with running_workers(encrypted):
        pair = await connector_ops.add_connector(
            encrypted,
            tenant,
            name=CONNECTOR_NAME,
            source="filesystem",
            config={"path": str(corpus)},
            tuning=FAST,
        )
        final = await connector_ops.wait_for_attempts(encrypted, tenant, pair.id, 1, timeout=60)
    assert final.last_attempt_status == "success"
    wid = connector_workflow_id(tenant, pair.id)
    raw = await histories(dev_env.client, wid)  # a client without the codec
    payloads = [p for h in raw for p in payloads_in(h)]
    assert payloads
    for history in raw:
        blob = history.SerializeToString()
        assert SECRET_PATH.encode() not in blob
        assert CONNECTOR_NAME.encode() not in blob
        assert b"Zebra terms" not in blob

    body = json_format.MessageToJson(Payloads(payloads=payloads))
    async with httpx.AsyncClient() as http:
        refused = await http.post(f"{codec_url}/decode", content=body)
        wrong = await http.post(
            f"{codec_url}/decode", content=body, headers={"Authorization": "Bearer nope"}
        )
        decoded = await http.post(
            f"{codec_url}/decode", content=body, headers={"Authorization": f"Bearer {TOKEN}"}
        )
        ui_style = await http.post(f"{codec_url}/{TOKEN}/decode", content=body)
    assert (refused.status_code, wrong.status_code) == (401, 401)
    assert decoded.status_code == ui_style.status_code == 200
    clear = b"".join(base64.b64decode(p.get("data", "")) for p in decoded.json()["payloads"])
    assert SECRET_PATH.encode() in clear and CONNECTOR_NAME.encode() in clear

    shown = await asyncio.to_thread(
        subprocess.run,
        [
            venv_bin("temporal"), "workflow", "show", "--workflow-id", wid,
            "--address", dev_env.client.service_client.config.target_host,
            "--codec-endpoint", f"{codec_url}/{TOKEN}", "--output", "json",
        ],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    # The CLI prints payloads as base64 protobuf JSON: all decrypted, the path readable.
    assert base64.b64encode(b"binary/encrypted").decode() not in shown.stdout
    shown_data = re.findall(r'"data": "([A-Za-z0-9+/=]+)"', shown.stdout)
    assert SECRET_PATH.encode() in b"".join(base64.b64decode(d) for d in shown_data)


async def test_codec_server_cors_only_for_the_ui_origin(codec_url: str) -> None:
    async with httpx.AsyncClient() as http:
        ok = await http.options(f"{codec_url}/decode", headers={"Origin": "http://127.0.0.1:8233"})
        other = await http.options(f"{codec_url}/decode", headers={"Origin": "http://evil.example"})
    assert ok.status_code == 204
    assert ok.headers["access-control-allow-origin"] == "http://127.0.0.1:8233"
    assert "authorization" in ok.headers["access-control-allow-headers"].lower()
    assert other.status_code == 403
    assert "access-control-allow-origin" not in other.headers
