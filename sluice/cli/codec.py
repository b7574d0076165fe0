"""``sluice codec-server``: serve payload decryption to the Web UI and the ``temporal`` CLI."""

from __future__ import annotations

import typer

from sluice.cli.common import fail, settings


def codec_server(
    port: int | None = typer.Option(
        None, "--port", "-p", help="Port to listen on (default: SLUICE_CODEC_PORT, 8081)."
    ),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind (0.0.0.0: all)."),
    new_key: bool = typer.Option(
        False, "--new-key", help="Print a fresh KEY_ID:BASE64 entry for SLUICE_PAYLOAD_KEYS."
    ),
) -> None:
    """Decrypt (and encrypt) Temporal payloads with SLUICE_PAYLOAD_KEYS for the Web UI.

    Point the UI at http://HOST:PORT/TOKEN (or `temporal ... --codec-endpoint
    http://HOST:PORT --codec-auth "Bearer TOKEN"`), TOKEN being SLUICE_CODEC_TOKEN.
    """
    if new_key:
        from sluice.payload_keys import new_key_spec

        typer.echo(new_key_spec())
        return
    import asyncio

    from sluice.codec_server import run_codec_server
    from sluice.errors import SluiceError
    from sluice.logging import configure_logging

    s = settings()
    configure_logging(s.log_format, s.log_level, workflow_logger=False)
    chosen = s.sluice_codec_port if port is None else port
    try:
        asyncio.run(
            run_codec_server(s.payload_keys, s.sluice_codec_token, s.codec_origins, chosen, host)
        )
    except SluiceError as exc:
        raise fail(str(exc)) from None
    except OSError as exc:
        raise fail(f"cannot listen on {host}:{chosen}: {exc.strerror or exc}") from None
    except KeyboardInterrupt:
        pass
