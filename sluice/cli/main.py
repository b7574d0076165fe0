"""``sluice``: run the stack, the workers, and operate connectors from the shell.

Command modules are imported only when needed: ``sluice search ...`` loads the search
command alone, not the connector, worker and Temporal modules (and their imports),
which keeps a one-query command's start-up short. ``app`` (every command) is still
available as a module attribute, built on first access.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import typer

# name -> (module under sluice.cli, attribute, kind): "command" or "group" (a Typer app).
_COMMANDS: dict[str, tuple[str, str, str]] = {
    "dev": ("dev", "dev", "command"),
    "worker": ("system", "worker", "command"),
    "status": ("system", "status", "command"),
    "migrate": ("system", "migrate", "command"),
    "codec-server": ("codec", "codec_server", "command"),
    "search": ("search", "search", "command"),
    "eval": ("evaluate", "evaluate", "command"),
    "connector": ("connector", "app", "group"),
    "index": ("index", "app", "group"),
    "document": ("documents", "document_app", "group"),
    "document-set": ("documents", "set_app", "group"),
    "schedules": ("schedules", "app", "group"),
    "tenant": ("tenant", "app", "group"),
    "temporal": ("system", "temporal_app", "group"),
    "files": ("files", "app", "group"),
    "sandbox": ("sandbox", "app", "group"),
    "export": ("export", "export", "command"),
}


def _root() -> None:
    """Sluice: the background-job layer of a RAG platform, on Temporal."""


def build_app(only: str | None = None) -> typer.Typer:
    """The Typer app with every command, or only ``only`` (the one being run)."""
    import importlib

    app = typer.Typer(
        name="sluice",
        help="Sluice: the background-job layer of a RAG platform, on Temporal.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )
    app.callback()(_root)  # a group even when it holds one command
    for name, (module, attr, kind) in _COMMANDS.items():
        if only is not None and name != only:
            continue
        target = getattr(importlib.import_module(f"sluice.cli.{module}"), attr)
        if kind == "group":
            app.add_typer(target, name=name)
        else:
            app.command(name)(target)
    return app


def __getattr__(name: str) -> Any:
    if name == "app":
        app = build_app()
        globals()["app"] = app
        return app
    raise AttributeError(name)


def main() -> None:
    """Entry point: run the command, then leave without interpreter finalisation.

    The Temporal SDK's Rust runtime keeps native threads that may call into Python
    while the interpreter finalises, which can abort an otherwise finished command;
    everything Sluice owns is closed before this point, so flush and exit directly.
    """
    code: int = 0
    first = sys.argv[1] if len(sys.argv) > 1 else None
    try:
        code = _run(build_app(first if first in _COMMANDS else None))
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except KeyboardInterrupt:
        code = 130
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)


def _run(app: typer.Typer) -> int:
    """Run the command; a usage error (unknown option, a value of the wrong type) is one
    line naming the option or argument, exit code 2, like every other bad input."""
    # Typer vendors click; its exception types live here (none is re-exported).
    from typer._click import exceptions as usage

    command = typer.main.get_command(app)
    try:
        result = command.main(prog_name="sluice", standalone_mode=False)
    except usage.NoArgsIsHelpError:
        command.main(prog_name="sluice")  # prints the help as usual and exits
        return 2
    except usage.UsageError as exc:
        where = exc.ctx.command_path if exc.ctx is not None else "sluice"
        message = " ".join(exc.format_message().split())
        typer.echo(f"error: {message} (see '{where} --help')", err=True)
        return 2
    except usage.ClickException as exc:
        typer.echo(f"error: {' '.join(exc.format_message().split())}", err=True)
        return exc.exit_code
    except typer.Abort:
        return 1
    return result if isinstance(result, int) and not isinstance(result, bool) else 0


if __name__ == "__main__":
    main()
