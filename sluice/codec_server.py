"""``sluice codec-server``: decrypts payloads for the Temporal Web UI and ``temporal`` CLI.

History holds only ciphertext (:mod:`sluice.temporal.codec`); people reading it need
the keys, which live here and in the workers, never in the Temporal server. This is
Temporal's remote codec protocol: ``POST /encode`` and ``POST /decode`` with a JSON
``{"payloads": [...]}`` body.

Authentication is a shared token (``SLUICE_CODEC_TOKEN``), accepted two ways:

* ``Authorization: Bearer TOKEN`` — the ``temporal`` CLI (``--codec-auth``) and scripts;
* as the first path segment, ``/TOKEN/decode`` — the Web UI, whose codec settings take
  only an endpoint URL (its "pass access token" option forwards the user's OIDC token,
  which this server cannot check). Set the UI's endpoint to ``http://HOST:PORT/TOKEN``.

Browsers are allowed in by CORS only from ``SLUICE_CODEC_CORS_ORIGINS`` (the UI's
origin). Without a token the server refuses to listen anywhere but loopback.
"""

from __future__ import annotations

import asyncio
import hmac
from urllib.parse import unquote

import structlog
from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads

from sluice.errors import ConfigurationError
from sluice.httpserve import Request, Response, json_response, serve
from sluice.temporal.codec import EncryptionCodec

log = structlog.get_logger(__name__)

LOOPBACK = ("127.0.0.1", "localhost", "::1")


class CodecApp:
    """The request handler: CORS, token check, then encode/decode."""

    def __init__(self, codec: EncryptionCodec, token: str | None, origins: list[str]) -> None:
        self.codec = codec
        self.token = token
        self.origins = set(origins)

    def _cors(self, request: Request) -> dict[str, str]:
        origin = request.headers.get("origin")
        if origin is None or origin not in self.origins:
            return {}
        return {
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Methods": "POST, OPTIONS",
            "Access-Control-Allow-Headers": "Content-Type, X-Namespace, Authorization",
            "Access-Control-Allow-Credentials": "true",
            "Access-Control-Max-Age": "600",
            "Vary": "Origin",
        }

    def _authorised(self, request: Request) -> tuple[bool, str]:
        """(token accepted, the path without a token segment)."""
        path = request.path
        if self.token is None:
            return True, path
        bearer = request.headers.get("authorization", "")
        if bearer.lower().startswith("bearer ") and hmac.compare_digest(
            bearer[7:].strip().encode(), self.token.encode()
        ):
            return True, path
        first, _, rest = path.lstrip("/").partition("/")
        if rest and hmac.compare_digest(unquote(first).encode(), self.token.encode()):
            return True, "/" + rest
        return False, path

    async def __call__(self, request: Request) -> Response:
        cors = self._cors(request)
        if request.method == "OPTIONS":
            return Response(204 if cors else 403, headers=cors)
        ok, path = self._authorised(request)
        if not ok:
            return json_response(401, {"error": "missing or wrong codec token"}, cors)
        if path not in ("/encode", "/decode"):
            return json_response(404, {"error": "not found", "paths": ["/encode", "/decode"]})
        if request.method != "POST":
            return json_response(405, {"error": "use POST"}, cors)
        try:
            payloads = json_format.Parse(request.body or b"{}", Payloads())
            if path == "/encode":
                result = await self.codec.encode(payloads.payloads)
            else:
                result = await self.codec.decode(payloads.payloads)
        except Exception as exc:
            return json_response(400, {"error": f"{type(exc).__name__}: {exc}"[:300]}, cors)
        body = json_format.MessageToJson(Payloads(payloads=result)).encode()
        return Response(200, body, headers=cors)


async def run_codec_server(
    keys: list[tuple[str, bytes]],
    token: str | None,
    origins: list[str],
    port: int,
    host: str = "127.0.0.1",
    stop: asyncio.Event | None = None,
) -> None:
    """Serve until ``stop`` is set (or forever)."""
    if not keys:
        raise ConfigurationError("SLUICE_PAYLOAD_KEYS is not set: there is nothing to decode")
    if token is None and host not in LOOPBACK:
        raise ConfigurationError(
            f"SLUICE_CODEC_TOKEN is not set: refusing to serve decrypted payloads on {host}"
        )
    server = await serve(CodecApp(EncryptionCodec(keys), token, origins), port, host)
    bound = server.sockets[0].getsockname()[1]
    log.info("codec server started", url=f"http://{host}:{bound}", origins=origins)
    try:
        await (stop or asyncio.Event()).wait()
    finally:
        server.close()
