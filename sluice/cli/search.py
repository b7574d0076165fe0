"""``sluice search "text"``: hybrid (vector + full text) search over the document index.

Imports stay light at module level (typer only): the embedding model, the database
driver and rich load when the command runs, so ``sluice --help`` stays fast.
"""

from __future__ import annotations

import typer

from sluice.cli.common import TenantOption, run, tenant


def search(
    query: str = typer.Argument(..., help="What to look for."),
    limit: int = typer.Option(5, "--limit", "-k", min=1, max=100, help="How many results."),
    connector: int | None = typer.Option(
        None, "--connector", help="Only documents of this connector (cc-pair ID)."
    ),
    source: str | None = typer.Option(None, "--source", help="Only documents of this source."),
    collection: str | None = typer.Option(
        None, "--collection", help="Only documents in this document set (`sluice document-set`)."
    ),
    context: int = typer.Option(
        0, "--context", min=0, max=5, help="Also show N chunks around each result's best one."
    ),
    as_user: str | None = typer.Option(
        None,
        "--as-user",
        help="Only what this user may read (their user, synced groups and public grants); "
        "an unknown user sees public documents only.",
    ),
    chunks: bool = typer.Option(
        False, "--chunks", help="Chunk-level results (default: one per document, best chunk)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the results as a JSON array."),
    tenant_id: str | None = TenantOption,
) -> None:
    """Show the best-matching documents, ranked by fusing vector and BM25-style text ranks."""
    from sluice.cli.common import fail

    if not query.strip():
        raise fail("empty query: give some words to search for")
    from sluice.index.search import search as do_search

    t = tenant(tenant_id)
    hits = run(
        do_search(
            t,
            query,
            k=limit,
            connector=connector,
            source=source,
            collection=collection,
            chunks=chunks,
            context=context,
            as_user=as_user,
        )
    )
    if as_json:
        import json

        typer.echo(json.dumps([h.model_dump() for h in hits], indent=2))
        return
    from rich.console import Console
    from rich.markup import escape

    console = Console()
    if not hits:
        console.print("no results")
        return
    for hit in hits:
        console.print(
            f"[bold]{hit.rank}. {escape(hit.title)}[/]  [dim]{escape(hit.document_id)} "
            f"#{hit.chunk_id} score {hit.score:.4f} "
            f"(vector {hit.vector_rank or '-'}, text {hit.text_rank or '-'})[/]"
        )
        if hit.link:
            console.print(f"   [cyan]{escape(hit.link)}[/]")
        console.print(f"   {escape(hit.snippet)}")
        for near in hit.neighbours:
            console.print(f"   [dim]#{near.chunk_id} {escape(near.snippet)}[/]")
