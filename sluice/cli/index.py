"""``sluice index``: embedding generations (``switch-model``, ``generations``) and seed 002's
document indexes (``create``, ``update``, ``delete``, ``status``: ``document_index.py``)."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING

import typer
from pydantic import ValidationError

from sluice.cli import document_index
from sluice.cli.common import TenantOption, fail, run, tenant

if TYPE_CHECKING:
    from sluice.index.generations import EmbeddingSpec

app = typer.Typer(
    help="The document index: embedding model generations; collection documents' indexes.",
    no_args_is_help=True,
)


def _spec(provider: str, dim: int, model: str | None, base_url: str | None) -> EmbeddingSpec:
    from sluice.index.generations import EmbeddingSpec

    try:
        return EmbeddingSpec.model_validate(
            {"provider": provider, "dim": dim, "model": model, "base_url": base_url}
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        message = first["msg"].removeprefix("Value error, ")
        field = ".".join(str(p) for p in first["loc"])
        if not field:  # a whole-spec check names its field first: "dim: ..."
            field, _, message = message.partition(": ")
        raise fail(f"--{field.replace('_', '-')}: {message}") from None


@app.command("switch-model")
def switch_model(
    provider: str = typer.Option("local", help="local (bundled WordLlama) or openai."),
    dim: int = typer.Option(256, help="Vector dimension (local: 64, 128 or 256)."),
    model: str | None = typer.Option(None, help="Model name (openai provider)."),
    base_url: str | None = typer.Option(
        None, help="OpenAI-compatible endpoint (default: EMBEDDING_BASE_URL)."
    ),
    retire_after: int = typer.Option(
        60, min=0, help="Seconds the old vectors stay after the switch."
    ),
    wait: bool = typer.Option(False, "--wait", help="Wait until search has switched."),
    cancel: bool = typer.Option(False, "--cancel", help="Cancel the running swap instead."),
    tenant_id: str | None = TenantOption,
) -> None:
    """Re-embed every chunk with another model, beside the live index; search switches
    over when it is complete. Connectors keep indexing meanwhile (into both)."""
    t = tenant(tenant_id)
    if cancel:
        run(_cancel(t))
        typer.echo(f"model swap of tenant {t} canceled; the live index is unchanged")
        return
    spec = _spec(provider, dim, model, base_url)
    run(_switch(t, spec, retire_after, wait))


async def _switch(tenant_id: str, spec: EmbeddingSpec, retire_after: int, wait: bool) -> None:
    from temporalio.client import WorkflowFailureError

    from sluice import model_swap
    from sluice.temporal.client import connect

    client = await connect()
    await model_swap.switch_model(client, tenant_id, spec, retire_after_seconds=retire_after)
    typer.echo(
        f"switching tenant {tenant_id} to {spec.name}: search stays on the live generation "
        "until the new one is complete (`sluice index generations` shows progress)"
    )
    if not wait:
        return
    waiter = asyncio.create_task(model_swap.wait_for_swap(client, tenant_id))
    while not waiter.done():
        progress = await model_swap.running_swap(client, tenant_id)
        if progress is not None:
            total = progress.chunks_total if progress.chunks_total is not None else "?"
            typer.echo(f"  {progress.phase}: {progress.chunks_embedded}/{total} chunks")
        await asyncio.wait([waiter], timeout=2)
    try:
        result = await waiter
    except WorkflowFailureError as exc:
        raise fail(str(exc.cause or exc)) from None
    typer.echo(
        f"generation {result.generation_id} ({result.model}) is live; "
        f"{result.chunks_embedded} chunks re-embedded"
        + (f", generation {result.retired_id} dropped" if result.retired_id else "")
    )


async def _cancel(tenant_id: str) -> None:
    from sluice import model_swap
    from sluice.temporal.client import connect

    await model_swap.cancel_swap(await connect(), tenant_id)


@app.command("generations")
def generations(
    as_json: bool = typer.Option(False, "--json", help="One JSON document."),
    tenant_id: str | None = TenantOption,
) -> None:
    """Every embedding generation of the index: which is live, which is building."""
    from sluice import model_swap

    t = tenant(tenant_id)
    rows = run(model_swap.generations(t))
    if as_json:
        typer.echo(json.dumps([r.model_dump() for r in rows], indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("id", "model", "status", "vectors", "re-embedded", "created", "error")
    for r in rows:
        total = r.chunks_total if r.chunks_total is not None else "?"
        status = r.status + (" (vectors dropped)" if r.dropped and r.status != "live" else "")
        vectors = "-" if r.vectors is None else str(r.vectors)
        embedded = f"{r.chunks_done}/{total}" if r.status == "building" else "-"
        table.add_row(
            str(r.id), r.name, status, vectors, embedded, r.created_at[:19], r.error or ""
        )
    Console().print(table)


document_index.register(app)
