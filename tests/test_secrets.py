"""A credential's secret never reaches Temporal history or a log line.

A web connector crawls a local site that answers only with the right bearer token; the
secret is stored as the cc-pair's credential, loaded inside the fetch activity and sent
to the site. Afterwards every payload of every run of the workflow (decoded) and every
log line captured during the run are scanned for it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from temporalio.testing import WorkflowEnvironment

from sluice import connector_ops
from sluice.temporal.workflow_ids import connector_workflow_id
from tests.history_scan import histories, payloads_in
from tests.support import FAST, fetchval, running_workers

SECRET = "s3cr3t-7f1c9a2e-bearer-do-not-leak"


class _Site(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        if self.path == "/robots.txt":
            body, status = b"User-agent: *\nAllow: /\n", 200
        elif self.headers.get("Authorization") != f"Bearer {SECRET}":
            body, status = b"unauthorised", 401
        else:
            n = int(self.path.rsplit("/", 1)[-1] or 0)
            links = "".join(f'<a href="/p/{m}">p{m}</a>' for m in range(n + 1, min(n + 3, 6)))
            page = f"<html><head><title>Page {n}</title></head><body>Page {n}. {links}"
            body, status = (page + "</body></html>").encode(), 200
        self.send_response(status)
        self.send_header("Content-Type", "text/html" if status == 200 else "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def site(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Site)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


async def test_credential_secret_is_in_no_history_and_no_log(
    dev_env: WorkflowEnvironment, tenant: str, site: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = dev_env.client
    async with running_workers(client):
        pair = await connector_ops.add_connector(
            client,
            tenant,
            name="intranet",
            source="web",
            config={"start_url": f"{site}/p/0", "max_pages": 10},
            tuning=FAST,
            credential={"bearer_token": SECRET},
        )
        final = await connector_ops.wait_for_attempts(client, tenant, pair.id, 1, timeout=60)
    # The secret was used: the site answers only with it.
    assert final.last_attempt_status == "success", final
    assert await fetchval(tenant, "SELECT count(*) FROM document") == 6

    raw = await histories(client, connector_workflow_id(tenant, pair.id))
    payloads = [p for h in raw for p in payloads_in(h)]
    assert len(payloads) > 10
    codec = client.data_converter.payload_codec
    decoded = await codec.decode(payloads) if codec else payloads
    for history in raw:
        assert SECRET.encode() not in history.SerializeToString()
    for payload in decoded:
        assert SECRET.encode() not in payload.SerializeToString()

    lines = [*caplog.text.splitlines(), *(repr(r.__dict__) for r in caplog.records)]
    assert len(lines) > 10
    leaked = [line for line in lines if SECRET in line]
    assert not leaked, leaked[:3]
