"""``sluice``: run the stack, the workers, and operate connectors from the shell."""

from __future__ import annotations

import os
import sys

import typer

from sluice.cli import connector, dev, search, system

app = typer.Typer(
    name="sluice",
    help="Sluice: the background-job layer of a RAG platform, on Temporal.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("dev")(dev.dev)
app.command("worker")(system.worker)
app.command("status")(system.status)
app.command("migrate")(system.migrate)
app.command("search")(search.search)
app.add_typer(connector.app, name="connector")
app.add_typer(system.temporal_app, name="temporal")


def main() -> None:
    """Entry point: run the command, then leave without interpreter finalisation.

    The Temporal SDK's Rust runtime keeps native threads that may call into Python
    while the interpreter finalises, which can abort an otherwise finished command;
    everything Sluice owns is closed before this point, so flush and exit directly.
    """
    code: int = 0
    try:
        app()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except KeyboardInterrupt:
        code = 130
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
