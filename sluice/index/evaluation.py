"""Retrieval evaluation: hits@k and MRR@10 of the live index on a set of judged queries.

A qrels file is TSV, one query a line: ``kind<TAB>query<TAB>expected``, where
``expected`` names the document that answers the query: its full document ID, or a
suffix of it after a ``/`` (a file's path relative to the indexed folder). Blank lines
and lines starting with ``#`` are skipped. Nothing is indexed here: queries run against
what the tenant already holds (optionally one connector or source).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from pydantic import BaseModel

from sluice.errors import SluiceError

MRR_DEPTH = 10


class QrelsError(SluiceError):
    """A qrels file that cannot be read."""


class Judged(BaseModel):
    kind: str
    query: str
    expected: str


class QueryOutcome(BaseModel):
    kind: str
    query: str
    expected: str
    rank: int | None  # 1-based rank of the expected document within MRR_DEPTH, else None
    top: list[str]


class Figures(BaseModel):
    queries: int
    hits_at_1: float
    hits_at_k: float
    mrr_at_10: float


class EvalReport(BaseModel):
    k: int
    overall: Figures
    by_kind: dict[str, Figures]
    outcomes: list[QueryOutcome]


def read_qrels(path: Path) -> list[Judged]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise QrelsError(f"cannot read {path}: {exc.strerror or exc}") from None
    judged: list[Judged] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) != 3 or not all(f.strip() for f in fields):
            raise QrelsError(f"{path}:{number}: expected kind<TAB>query<TAB>expected")
        kind, query, expected = (f.strip() for f in fields)
        judged.append(Judged(kind=kind, query=query, expected=expected))
    if not judged:
        raise QrelsError(f"{path}: no queries")
    return judged


def matches(document_id: str, expected: str) -> bool:
    return document_id == expected or document_id.endswith("/" + expected.lstrip("/"))


def rank_of(ranked: list[str], expected: str) -> int | None:
    for i, document_id in enumerate(ranked[:MRR_DEPTH], 1):
        if matches(document_id, expected):
            return i
    return None


def figures(outcomes: list[QueryOutcome], k: int) -> Figures:
    n = len(outcomes)
    hits = sum(1 for o in outcomes if o.rank is not None and o.rank <= k)
    first = sum(1 for o in outcomes if o.rank == 1)
    rr = sum(1.0 / o.rank for o in outcomes if o.rank is not None)
    return Figures(
        queries=n,
        hits_at_1=first / n if n else 0.0,
        hits_at_k=hits / n if n else 0.0,
        mrr_at_10=rr / n if n else 0.0,
    )


def report(outcomes: list[QueryOutcome], k: int) -> EvalReport:
    kinds: dict[str, list[QueryOutcome]] = defaultdict(list)
    for o in outcomes:
        kinds[o.kind].append(o)
    return EvalReport(
        k=k,
        overall=figures(outcomes, k),
        by_kind={kind: figures(items, k) for kind, items in sorted(kinds.items())},
        outcomes=outcomes,
    )


async def evaluate(
    tenant_id: str,
    judged: list[Judged],
    *,
    k: int = 5,
    connector: int | None = None,
    source: str | None = None,
) -> EvalReport:
    """Run every judged query through :func:`sluice.index.search.search` (documents)."""
    from sluice.index.search import search

    outcomes: list[QueryOutcome] = []
    for item in judged:
        hits = await search(
            tenant_id,
            item.query,
            k=max(k, MRR_DEPTH),
            connector=connector,
            source=source,
        )
        ranked = [h.document_id for h in hits]
        outcomes.append(
            QueryOutcome(
                kind=item.kind,
                query=item.query,
                expected=item.expected,
                rank=rank_of(ranked, item.expected),
                top=ranked[:k],
            )
        )
    return report(outcomes, k)


def format_report(r: EvalReport) -> str:
    lines = [f"{'kind':<14} {'queries':>7} {'hits@1':>7} {f'hits@{r.k}':>8} {'MRR@10':>7}"]
    for kind, f in [*r.by_kind.items(), ("overall", r.overall)]:
        lines.append(
            f"{kind:<14} {f.queries:>7} {f.hits_at_1:>7.2f} {f.hits_at_k:>8.2f} {f.mrr_at_10:>7.3f}"
        )
    return "\n".join(lines)
