"""``sluice``: run the stack, the workers, and operate connectors from the shell."""

from __future__ import annotations

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
app.command("migrate")(system.migrate)
app.command("search")(search.search)
app.add_typer(connector.app, name="connector")
app.add_typer(system.temporal_app, name="temporal")

if __name__ == "__main__":
    app()
