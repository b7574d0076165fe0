"""Hybrid search against real Postgres + pgvector: OR matching with IDF, identifiers
whole and by parts, per-document grouping, filters, and the `sluice search` command."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import pytest

from sluice.ccpairs import create_cc_pair
from sluice.connectors.models import Document, Section
from sluice.db.session import tenant_connection
from sluice.index.embedding import WordLlamaProvider
from sluice.index.search import EmptyQueryError, SearchResult, search, search_chunks
from sluice.index.store import literal_tokens
from sluice.indexing.pipeline import index_documents
from tests.support import only_line

FILLER = "Unrelated filler prose about gardens, weather and the price of bread. " * 14


def doc(doc_id: str, *sections: str, source: str = "test") -> Document:
    return Document(
        id=doc_id,
        source=source,
        semantic_identifier=doc_id,
        sections=[Section(text=s) for s in sections],
    )


async def index(tenant: str, docs: list[Document], name: str = "t") -> int:
    pair = await create_cc_pair(tenant, name=name, source="synthetic", config={"count": 1})
    async with tenant_connection(tenant) as (_, raw):
        await index_documents(raw, pair.id, docs, WordLlamaProvider())
    return pair.id


CORPUS = [
    # The answer: four identifiers spread over three chunks of one file.
    doc(
        "spread.py",
        "def configure_retry_budget(): sets the budget. " + FILLER,
        "class FrontierCursor: walks pages. " + FILLER,
        "Calls sluice.index.store and reads src/lib/pathfinder-core.conf " + FILLER,
    ),
    doc("hyphen.txt", "The pathfinder tool ships with a core library. " + FILLER),
    doc("budget.txt", "A budget for retries keeps configure steps bounded. " + FILLER),
    *[doc(f"noise{i}.txt", f"Noise note {i}. " + FILLER) for i in range(6)],
]


async def test_or_matching_finds_terms_spread_over_chunks(tenant: str) -> None:
    await index(tenant, CORPUS)
    query = "configure_retry_budget FrontierCursor sluice.index.store pathfinder-core"
    hits = await search(tenant, query, k=3)
    assert hits[0].document_id == "spread.py"
    assert hits[0].text_rank == 1


@pytest.mark.parametrize(
    "query",
    [
        "configure_retry_budget",  # whole, with _
        "sluice.index.store",  # whole, with .
        "src/lib/pathfinder-core.conf",  # whole, with / - .
        "pathfinder-core.conf",  # a file name without its folder
        "FrontierCursor",
        "retry budget configure",  # parts of an _ identifier
        "store index",  # parts of a . identifier
        "conf lib",  # parts of a / identifier
    ],
)
async def test_identifiers_are_found_whole_and_by_parts(tenant: str, query: str) -> None:
    await index(tenant, CORPUS)
    hits = await search(tenant, query, k=3)
    assert hits[0].document_id == "spread.py", [h.document_id for h in hits]


async def test_whole_identifier_outranks_its_parts_scattered_in_prose(tenant: str) -> None:
    await index(tenant, CORPUS)
    hits = await search(tenant, "configure_retry_budget", k=3)
    ranks = [h.document_id for h in hits]
    assert ranks[0] == "spread.py" and "budget.txt" in ranks


async def test_identifier_made_of_punctuation_and_a_word_is_matched_literally(
    tenant: str,
) -> None:
    # Full-text lexemes keep only "upstream" of "@{upstream}": the page that holds the
    # token exactly must come first, ahead of pages that only say "upstream".
    await index(
        tenant,
        [
            doc(
                "revisions.txt", "A suffix @{upstream} to a branch name names its remote. " + FILLER
            ),
            doc("project.txt", "Send your fixes upstream to the project we build on. " + FILLER),
            doc("mirror.txt", "The mirror follows upstream changes every night. " + FILLER),
            *[doc(f"noise{i}.txt", f"Noise note {i}. " + FILLER) for i in range(4)],
        ],
    )
    hits = await search(tenant, "@{upstream}", k=3)
    assert hits[0].document_id == "revisions.txt", [h.document_id for h in hits]


def test_literal_tokens_are_the_identifier_like_words_of_a_query() -> None:
    assert literal_tokens("--force-with-lease, help.autoCorrect") == [
        "--force-with-lease",
        "help.autocorrect",
    ]
    assert literal_tokens("what is @{upstream}?") == ["@{upstream}"]
    assert literal_tokens("take a colleague's fix (quickly).") == []


async def test_results_are_grouped_per_document_unless_chunks_are_asked_for(tenant: str) -> None:
    await index(tenant, CORPUS)
    query = "configure_retry_budget FrontierCursor pathfinder"
    grouped = await search(tenant, query, k=10)
    ids = [h.document_id for h in grouped]
    assert len(ids) == len(set(ids))
    chunks = await search(tenant, query, k=10, chunks=True)
    assert [h.document_id for h in chunks].count("spread.py") == 3
    assert len(await search_chunks(tenant, query, limit=10)) == len(chunks)


async def test_filters_by_connector_and_source(tenant: str) -> None:
    first = await index(tenant, [doc("a.md", "heron migration " + FILLER, source="wiki")], "a")
    second = await index(tenant, [doc("b.md", "heron nesting " + FILLER, source="mail")], "b")
    assert {h.document_id for h in await search(tenant, "heron")} == {"a.md", "b.md"}
    assert [h.document_id for h in await search(tenant, "heron", connector=first)] == ["a.md"]
    assert [h.document_id for h in await search(tenant, "heron", connector=second)] == ["b.md"]
    assert [h.document_id for h in await search(tenant, "heron", source="mail")] == ["b.md"]
    assert await search(tenant, "heron", source="mail", connector=first) == []


STRATEGIES = {
    # (EXACT_SMALL_INDEX, EXACT_VECTOR_CHUNKS): which vector side each search takes
    "small-index-exact": (5_000, 20_000),
    "narrow-filter-exact": (0, 20_000),
    "hnsw-and-bounded-iterative": (0, 0),
}


@pytest.mark.parametrize("strategy", list(STRATEGIES))
async def test_every_vector_strategy_honours_filters_and_hidden_documents(
    tenant: str, strategy: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tests index a few chunks, so search reads every vector exactly; the HNSW paths
    (unfiltered, and iterative under a filter) are forced here so their SQL runs too."""
    from sluice.index import store

    small, narrow = STRATEGIES[strategy]
    monkeypatch.setattr(store, "EXACT_SMALL_INDEX", small)
    monkeypatch.setattr(store, "EXACT_VECTOR_CHUNKS", narrow)
    wiki = await index(
        tenant,
        [doc(f"w{i}.md", f"heron migration note {i} " + FILLER, source="wiki") for i in range(3)],
        "a",
    )
    mail = await index(tenant, [doc("m.md", "heron nesting " + FILLER, source="mail")], "b")
    async with tenant_connection(tenant) as (_, raw):
        await raw.execute("UPDATE document SET hidden = true WHERE id = 'w2.md'")
        await raw.execute(
            "UPDATE chunk SET acl = ARRAY['group:birders'] WHERE document_id = 'w1.md'"
        )

    def ids(hits: list[SearchResult]) -> set[str]:
        return {h.document_id for h in hits}

    assert ids(await search(tenant, "heron")) == {"w0.md", "w1.md", "m.md"}
    assert ids(await search(tenant, "heron", connector=wiki)) == {"w0.md", "w1.md"}
    assert ids(await search(tenant, "heron", connector=mail)) == {"m.md"}
    assert ids(await search(tenant, "heron", source="mail")) == {"m.md"}
    assert ids(await search(tenant, "heron", acl=["group:birders"])) == {"w1.md"}
    # no lexeme matches: the vector side alone answers, within the filter
    vector_only = await search(tenant, "ornithology", source="wiki")
    assert ids(vector_only) == {"w0.md", "w1.md"}
    assert all(h.text_rank is None and h.vector_rank for h in vector_only)
    assert ids(await search(tenant, "ornithology")) == {"w0.md", "w1.md", "m.md"}


@pytest.mark.parametrize("query", ["", "   ", "\t\n"])
async def test_empty_query_is_refused(tenant: str, query: str) -> None:
    with pytest.raises(EmptyQueryError):
        await search(tenant, query)


async def cli(tenant: str, *args: str) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "DEFAULT_TENANT": tenant, "COLUMNS": "200"}
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "sluice.cli.main", *args],
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_search_command_json_filters_and_empty_query(tenant: str) -> None:
    pair = await index(tenant, CORPUS)
    done = await cli(tenant, "search", "FrontierCursor", "-k", "2", "--json")
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)
    assert results[0]["document_id"] == "spread.py" and results[0]["rank"] == 1
    assert len(results) == 2

    done = await cli(tenant, "search", "FrontierCursor", "--connector", str(pair + 1), "--json")
    assert done.returncode == 0 and json.loads(done.stdout) == []
    done = await cli(tenant, "search", "FrontierCursor", "--source", "test", "--chunks", "--json")
    assert {r["chunk_id"] for r in json.loads(done.stdout) if r["document_id"] == "spread.py"}

    text = await cli(tenant, "search", "FrontierCursor", "-k", "1")
    assert text.returncode == 0 and "spread.py" in text.stdout

    for query in ("", "   "):
        refused = await cli(tenant, "search", query)
        assert refused.returncode == 2
        assert only_line(refused.stderr) == "error: empty query: give some words to search for"


async def test_context_returns_the_neighbouring_chunks_of_each_result(tenant: str) -> None:
    await index(tenant, CORPUS)
    hits = await search(tenant, "FrontierCursor walks pages", k=1, context=1)
    assert hits[0].document_id == "spread.py" and hits[0].chunk_id == 1
    assert [n.chunk_id for n in hits[0].neighbours] == [0, 2]
    assert hits[0].neighbours[0].snippet.startswith("def configure_retry_budget")
    # Without context (the default) nothing extra is read or returned.
    assert (await search(tenant, "FrontierCursor walks pages", k=1))[0].neighbours == []
