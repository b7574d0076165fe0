"""``sluice search "text"``: hybrid (vector + full text) search over the document index."""

from __future__ import annotations

import typer
from rich.console import Console

from sluice.cli.common import TenantOption, run, tenant

console = Console()


def search(
    query: str = typer.Argument(..., help="What to look for."),
    limit: int = typer.Option(5, "--limit", "-k", min=1, max=100),
    tenant_id: str | None = TenantOption,
) -> None:
    """Show the best-matching chunks, ranked by reciprocal-rank fusion."""
    from sluice.index.search import search_chunks

    t = tenant(tenant_id)
    hits = run(search_chunks(t, query, limit=limit))
    if not hits:
        console.print("no results")
        return
    for rank, hit in enumerate(hits, 1):
        snippet = " ".join(hit.content.split())[:240]
        console.print(
            f"[bold]{rank}. {hit.title}[/]  [dim]{hit.document_id} #{hit.chunk_id} "
            f"score {hit.score:.4f} "
            f"(vector {hit.vector_rank or '-'}, text {hit.text_rank or '-'})[/]"
        )
        if hit.link:
            console.print(f"   [cyan]{hit.link}[/]")
        console.print(f"   {snippet}")
