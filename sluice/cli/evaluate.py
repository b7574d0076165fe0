"""``sluice eval QRELS.tsv``: hits@k and MRR@10 of the live index on judged queries."""

from __future__ import annotations

from pathlib import Path

import typer

from sluice.cli.common import TenantOption, run, tenant


def evaluate(
    qrels: Path = typer.Argument(..., help="TSV: kind<TAB>query<TAB>expected document."),
    k: int = typer.Option(5, "-k", min=1, max=100, help="Cut-off for hits@k."),
    connector: int | None = typer.Option(
        None, "--connector", help="Only documents of this connector (cc-pair ID)."
    ),
    source: str | None = typer.Option(None, "--source", help="Only documents of this source."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    misses: bool = typer.Option(False, "--misses", help="List the queries not found in top k."),
    tenant_id: str | None = TenantOption,
) -> None:
    """Run each judged query against the already indexed documents; nothing is indexed."""
    from sluice.cli.common import fail
    from sluice.index.evaluation import QrelsError, evaluate, format_report, read_qrels

    try:
        judged = read_qrels(qrels)
    except QrelsError as exc:
        raise fail(str(exc)) from None
    t = tenant(tenant_id)
    result = run(evaluate(t, judged, k=k, connector=connector, source=source))
    if as_json:
        typer.echo(result.model_dump_json(indent=2))
        return
    typer.echo(format_report(result))
    if misses:
        for o in result.outcomes:
            if o.rank is None or o.rank > k:
                typer.echo(f"miss [{o.kind}] {o.query!r} -> {o.expected} (rank {o.rank or '-'})")
