"""A tiny HTTP/1.1 server on asyncio streams, for the few endpoints Sluice serves.

The health, metrics and codec endpoints are a handful of small requests a minute from a
probe, Prometheus or a browser tab; a web framework would be a dependency (and start-up
time) for that. One request per connection, bodies up to ``MAX_BODY`` bytes.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

MAX_BODY = 64 * 1024 * 1024
REASONS = {
    200: "OK",
    204: "No Content",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Payload Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes = b""


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


def json_response(status: int, body: object, headers: dict[str, str] | None = None) -> Response:
    return Response(status, json.dumps(body).encode(), headers=headers or {})


Handler = Callable[[Request], Awaitable[Response]]


async def _read_request(reader: asyncio.StreamReader) -> Request | Response:
    request_line = await asyncio.wait_for(reader.readline(), timeout=5)
    parts = request_line.decode(errors="replace").split()
    headers: dict[str, str] = {}
    while True:
        line = await asyncio.wait_for(reader.readline(), timeout=5)
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.decode(errors="replace").partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0") or 0)
    if length > MAX_BODY:
        return json_response(413, {"error": f"body over {MAX_BODY} bytes"})
    body = await asyncio.wait_for(reader.readexactly(length), timeout=30) if length else b""
    method = parts[0].upper() if parts else "GET"
    path = parts[1].split("?", 1)[0] if len(parts) > 1 else "/"
    return Request(method, path, headers, body)


def _encode(response: Response) -> bytes:
    head = [
        f"HTTP/1.1 {response.status} {REASONS.get(response.status, 'Unknown')}",
        f"Content-Type: {response.content_type}",
        f"Content-Length: {len(response.body)}",
        "Connection: close",
        *(f"{k}: {v}" for k, v in response.headers.items()),
    ]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + response.body


async def serve(handler: Handler, port: int, host: str = "0.0.0.0") -> asyncio.Server:
    """Serve ``handler``; returns the server (its bound port is in ``sockets[0]``)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            parsed = await _read_request(reader)
            if isinstance(parsed, Response):
                response = parsed
            else:
                try:
                    response = await handler(parsed)
                except Exception as exc:  # one bad request must not take the server down
                    response = json_response(500, {"error": type(exc).__name__})
            writer.write(_encode(response))
            await writer.drain()
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(handle, host, port)
