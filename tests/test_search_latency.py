"""The document-frequency cache behind search's IDFs: it expires, is per tenant and cap,
stays bounded, and is never used for a small tenant (whose IDFs are exact every time)."""

from __future__ import annotations

import math

import pytest

from sluice.ccpairs import create_cc_pair
from sluice.connectors.models import Document, Section
from sluice.db.session import tenant_connection
from sluice.index import dfcache
from sluice.index.dfcache import DfCache
from sluice.index.embedding import WordLlamaProvider
from sluice.index.store import text_query
from sluice.indexing.pipeline import index_documents


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_counts_expire_after_the_ttl() -> None:
    clock = Clock()
    cache = DfCache(ttl=60, clock=clock)
    cache.put("t_a", 1000, {"'retri'": 7, "'budget'": 1000})
    clock.now += 59
    assert cache.get("t_a", 1000, ["'retri'", "'budget'", "'other'"]) == {
        "'retri'": 7,
        "'budget'": 1000,
    }
    clock.now += 1
    assert cache.get("t_a", 1000, ["'retri'", "'budget'"]) == {}
    assert len(cache) == 0  # expired entries are dropped when seen


def test_counts_are_per_tenant_and_per_cap() -> None:
    cache = DfCache(clock=Clock())
    cache.put("t_a", 1000, {"'retri'": 7})
    assert cache.get("t_b", 1000, ["'retri'"]) == {}
    assert cache.get("t_a", 5000, ["'retri'"]) == {}  # a capped count means "at least cap"
    cache.put("t_b", 1000, {"'retri'": 9})
    cache.invalidate("t_a")
    assert cache.get("t_a", 1000, ["'retri'"]) == {}
    assert cache.get("t_b", 1000, ["'retri'"]) == {"'retri'": 9}
    cache.invalidate()
    assert len(cache) == 0


def test_the_cache_stays_bounded() -> None:
    clock = Clock()
    cache = DfCache(ttl=60, max_entries=100, clock=clock)
    cache.put("t_a", 1000, {f"'w{i}'": i for i in range(80)})
    clock.now += 61  # all of those expired
    cache.put("t_a", 1000, {f"'x{i}'": i for i in range(90)})
    assert len(cache) == 90
    cache.put("t_a", 1000, {f"'y{i}'": i for i in range(30)})
    assert len(cache) <= 100
    assert cache.get("t_a", 1000, ["'y29'"]) == {"'y29'": 29}  # the newest stay


async def test_a_small_tenant_counts_exactly_on_every_query(
    tenant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = DfCache()
    monkeypatch.setattr("sluice.index.store.DF_CACHE", cache)
    pair = await create_cc_pair(tenant, name="t", source="synthetic", config={"count": 1})

    def doc(i: int) -> Document:
        return Document(
            id=f"d{i}", source="test", semantic_identifier=f"d{i}", sections=[Section(text="x")]
        )

    docs = [doc(i) for i in range(3)]
    for d, text in zip(docs, ["retry budget", "budget notes", "garden notes"], strict=True):
        d.sections = [Section(text=text)]
    async with tenant_connection(tenant) as (_, raw):
        await index_documents(raw, pair.id, docs, WordLlamaProvider())
    async with tenant_connection(tenant) as (_, raw):
        before = await text_query(raw, "retry budget")
    assert len(cache) == 0 and dfcache.MIN_CHUNKS > 3

    more = [doc(i) for i in range(3, 6)]
    for d in more:
        d.sections = [Section(text="another retry")]
    async with tenant_connection(tenant) as (_, raw):
        await index_documents(raw, pair.id, more, WordLlamaProvider())
    async with tenant_connection(tenant) as (_, raw):
        after = await text_query(raw, "retry budget")
    retry = before.terms.index("'retri'")
    assert after.idf[retry] < before.idf[retry]  # 'retri' got commoner: seen at once
    assert len(cache) == 0


async def test_a_large_tenant_reuses_counts_until_they_expire(
    tenant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock()
    cache = DfCache(ttl=60, clock=clock)
    monkeypatch.setattr("sluice.index.store.DF_CACHE", cache)
    monkeypatch.setattr("sluice.index.store.DF_CACHE_MIN_CHUNKS", 0)  # "large" from 0 chunks
    pair = await create_cc_pair(tenant, name="t", source="synthetic", config={"count": 1})

    def doc(i: int, text: str) -> Document:
        return Document(
            id=f"d{i}", source="test", semantic_identifier=f"d{i}", sections=[Section(text=text)]
        )

    async def index(docs: list[Document]) -> None:
        async with tenant_connection(tenant) as (_, raw):
            await index_documents(raw, pair.id, docs, WordLlamaProvider())

    async def idf_of_retry() -> float:
        async with tenant_connection(tenant) as (_, raw):
            tq = await text_query(raw, "retry budget")
        return tq.idf[tq.terms.index("'retri'")]

    def idf(df: int, n: int) -> float:
        return math.log(1 + (n - df + 0.5) / (df + 0.5))

    await index([doc(0, "retry budget"), doc(1, "budget notes"), doc(2, "garden notes")])
    assert await idf_of_retry() == pytest.approx(idf(1, 3))
    assert len(cache) == 2
    await index([doc(i, "another retry") for i in range(3, 9)])
    clock.now += 59
    assert await idf_of_retry() == pytest.approx(idf(1, 9))  # df reused, not counted again
    clock.now += 1
    assert await idf_of_retry() == pytest.approx(idf(7, 9))  # expired: counted again
