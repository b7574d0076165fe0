"""Chunking and embedding behaviour, against the real bundled model and a real HTTP server.

The OpenAI-compatible provider talks to a stdlib ``http.server`` on 127.0.0.1 that
serves ``/v1/embeddings`` deterministically; the model name picks its behaviour
(plain, throttled once, failing, wrong size, refused), so every path goes over a
real socket through the real client.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sluice.errors import BadCredentialsError, ConfigurationError
from sluice.index import embedding as embedding_module
from sluice.index.chunking import Chunk, chunk_document
from sluice.index.embedding import (
    EmbeddingProvider,
    EmbeddingServiceError,
    OpenAIEmbeddingProvider,
    WordLlamaProvider,
    make_embedding_provider,
)

# ------------------------------------------------------------------------------ chunking


def _prose(n_sentences: int, seed: int) -> str:
    words = ["index", "tenant", "vector", "query", "worker", "schedule", "chunk", "postgres"]
    rng = np.random.default_rng(seed)
    sentences = []
    for _ in range(n_sentences):
        count = int(rng.integers(4, 10))
        sentence = " ".join(words[int(i)] for i in rng.integers(0, len(words), count))
        sentences.append(sentence.capitalize() + ".")
    return " ".join(sentences)


def _assert_spans_cover(text: str, chunks: list[Chunk]) -> None:
    """Chunks are spans of ``text`` in order, each starting no later than the last ended."""
    prev_start, prev_end = -1, 0
    for chunk in chunks:
        start = text.find(chunk.text, prev_start + 1)
        assert start != -1, f"chunk is not a span of the section: {chunk.text[:40]!r}"
        assert text[prev_end:start].strip() == "", "text between chunks was lost"
        prev_start, prev_end = start, start + len(chunk.text)
    assert text[prev_end:].strip() == ""


def test_chunks_respect_bounds_ids_and_links() -> None:
    sections = [
        ("\n\n".join(_prose(8, seed) for seed in range(6)), "https://wiki/a"),
        ("Short section.", "https://wiki/b"),
        ("", "https://wiki/empty"),
        (_prose(40, 99), None),
    ]
    chunks = chunk_document("Title", sections, max_chars=300, overlap_chars=60)

    assert [c.chunk_id for c in chunks] == list(range(len(chunks)))
    assert all(0 < len(c.text) <= 300 for c in chunks)
    assert all(c.text == c.text.strip() for c in chunks)
    assert all("Title" not in c.text for c in chunks)
    assert {c.link for c in chunks} == {"https://wiki/a", "https://wiki/b", None}
    for text, link in sections:
        _assert_spans_cover(text, [c for c in chunks if c.link == link])


def test_consecutive_chunks_of_a_section_overlap_but_sections_do_not() -> None:
    first, second = _prose(60, 1), _prose(60, 2)
    chunks = chunk_document("T", [(first, "a"), (second, "b")], max_chars=400, overlap_chars=100)
    a = [c.text for c in chunks if c.link == "a"]
    b = [c.text for c in chunks if c.link == "b"]
    assert len(a) > 2 and len(b) > 2

    for prev, nxt in itertools.pairwise(a):
        shared = max(k for k in range(101) if k == 0 or prev.endswith(nxt[:k]))
        assert 0 < shared <= 100, "consecutive chunks should share a small overlap"
        assert nxt[0].isupper(), "the overlap should start on a sentence"
    assert b[0] == second[: len(b[0])], "a section's first chunk must not carry the previous one"


def test_cuts_prefer_paragraphs_then_sentences() -> None:
    para1, para2 = (_prose(40, seed)[:700].rsplit(". ", 1)[0] + "." for seed in (3, 4))
    assert 600 < len(para1) <= 700 and 600 < len(para2) <= 700
    chunks = chunk_document("T", [(f"{para1}\n\n{para2}", None)], max_chars=1200)
    assert chunks[0].text == para1, "two paragraphs that do not fit together are cut between"

    prose = _prose(80, 5)
    for chunk in chunk_document("T", [(prose, None)], max_chars=500, overlap_chars=0)[:-1]:
        assert chunk.text.endswith("."), "a long paragraph is cut at sentence ends"


def test_giant_tokens_are_hard_cut_without_overlap() -> None:
    blob = "x" * 2500
    chunks = chunk_document("T", [(blob, None)], max_chars=1000, overlap_chars=150)
    assert [len(c.text) for c in chunks] == [1000, 1000, 500]
    assert "".join(c.text for c in chunks) == blob


def test_document_without_text_yields_one_title_chunk() -> None:
    assert chunk_document("Quarterly plan", []) == [Chunk(0, "Quarterly plan", None)]
    assert chunk_document("Plan", [("  \n\t\n ", "https://x"), ("", None)]) == [
        Chunk(0, "Plan", "https://x")
    ]


def test_text_is_cleaned_for_postgres() -> None:
    chunks = chunk_document("T", [("line one\r\nline\x00 two\r\n \r\nnext para", None)])
    assert chunks == [Chunk(0, "line one\nline two\n\nnext para", None)]


def test_bad_chunking_arguments_are_rejected() -> None:
    with pytest.raises(ValueError, match="overlap_chars"):
        chunk_document("T", [("text", None)], max_chars=100, overlap_chars=50)
    with pytest.raises(ValueError, match="max_chars"):
        chunk_document("T", [("text", None)], max_chars=1, overlap_chars=0)


# ------------------------------------------------------------------------------ WordLlama


@pytest.fixture(scope="module")
def local() -> WordLlamaProvider:
    provider = WordLlamaProvider()
    provider.warm_up()
    return provider


async def test_wordllama_gives_256_dim_unit_vectors_that_rank_by_meaning(
    local: WordLlamaProvider,
) -> None:
    assert isinstance(local, EmbeddingProvider)
    texts = ["postgres database index", "database indexing in postgresql", "banana bread recipe"]
    vectors = await local.embed(texts)

    assert vectors.shape == (3, 256) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    similar, unrelated = float(vectors[0] @ vectors[1]), float(vectors[0] @ vectors[2])
    assert similar > unrelated + 0.3


async def test_wordllama_keeps_input_order_and_handles_edge_texts(
    local: WordLlamaProvider,
) -> None:
    texts = [_prose(n, n) for n in (30, 1, 12, 3, 50)] + ["", "   ", "y" * 30_000]
    together = await local.embed(texts)
    alone = np.vstack([local.embed_sync([t]) for t in texts])
    np.testing.assert_allclose(together, alone, atol=1e-6)
    assert np.isfinite(together).all()
    np.testing.assert_allclose(np.linalg.norm(together, axis=1), 1.0, rtol=1e-5)
    assert (await local.embed([])).shape == (0, 256)


def test_wordllama_pooling_matches_the_library() -> None:
    """Sluice pools tokens itself (faster); it must agree with wordllama's own embed."""
    import wordllama

    reference = wordllama.WordLlama.load(
        cache_dir=Path(wordllama.__file__).parent, disable_download=True, trunc_dim=128
    )
    texts = [_prose(n, n) for n in range(1, 40)]
    ours = WordLlamaProvider(dim=128, threads=2).embed_sync(texts)
    np.testing.assert_allclose(ours, reference.embed(texts, norm=True), atol=1e-5)


async def test_wordllama_runs_off_the_event_loop(
    local: WordLlamaProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: set[str] = set()
    real_pool = embedding_module._pool

    def spy(texts: Any, dim: int) -> np.ndarray:
        threads.add(threading.current_thread().name)
        return real_pool(texts, dim)

    monkeypatch.setattr(embedding_module, "_pool", spy)
    await local.embed([_prose(5, i) for i in range(300)])
    assert threads and all(name.startswith("sluice-embed") for name in threads)


def test_wordllama_rejects_unsupported_dimensions() -> None:
    with pytest.raises(ConfigurationError, match="64, 128, 256"):
        WordLlamaProvider(dim=384)


# ------------------------------------------------------------------- OpenAI-compatible API

GOOD_KEY = "sk-test-good-key-123"


def _fake_vector(text: str, dim: int) -> list[float]:
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
    return [float(x) for x in np.random.default_rng(seed).normal(size=dim)]


class _EmbeddingsHandler(BaseHTTPRequestHandler):
    """``/v1/embeddings`` whose behaviour is chosen by the requested model name."""

    requests: list[dict[str, Any]] = []
    calls: dict[str, int] = {}
    lock = threading.Lock()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _reply(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(raw)

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        model, inputs, dim = body["model"], body["input"], body["dimensions"]
        with self.lock:
            self.requests.append({"path": self.path, **body})
            call = self.calls[model] = self.calls.get(model, 0) + 1
        if self.path != "/v1/embeddings":
            return self._reply(404, {"error": {"message": f"no route {self.path}"}})
        key = self.headers.get("Authorization", "").removeprefix("Bearer ")
        if key != GOOD_KEY:
            message = f"Incorrect API key provided: {key}"  # echoes it, like some servers
            return self._reply(401, {"error": {"message": message}})
        if model == "throttled-once" and call == 1:
            return self._reply(429, {"error": {"message": "slow down"}}, {"Retry-After": "0"})
        if model == "unavailable":
            return self._reply(503, {"error": {"message": "overloaded"}})
        if model == "unknown-model":
            return self._reply(400, {"error": {"message": "model 'unknown-model' not found"}})
        size = dim + 8 if model == "wrong-dim" else dim
        data = [
            {"object": "embedding", "index": i, "embedding": _fake_vector(text, size)}
            for i, text in enumerate(inputs)
        ]
        data.reverse()  # the index field, not the position, gives the order
        self._reply(200, {"object": "list", "data": data, "model": model})


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _EmbeddingsHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def _reset_server() -> None:
    _EmbeddingsHandler.requests.clear()
    _EmbeddingsHandler.calls.clear()


def _openai(url: str, model: str = "det", key: str | None = GOOD_KEY, **kw: Any) -> Any:
    return OpenAIEmbeddingProvider(url, model, key, 32, backoff_base=0.01, **kw)


def _expected(texts: list[str], dim: int = 32) -> np.ndarray:
    rows = np.array([_fake_vector(t, dim) for t in texts], dtype=np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


async def test_openai_batches_orders_by_index_and_normalises(server_url: str) -> None:
    provider = _openai(server_url, batch_size=4)
    texts = [f"text {i}" for i in range(10)]
    try:
        vectors = await provider.embed(texts)
        assert (await provider.embed([])).shape == (0, 32)
    finally:
        await provider.aclose()

    np.testing.assert_allclose(vectors, _expected(texts), rtol=1e-5, atol=1e-6)
    sent = _EmbeddingsHandler.requests
    assert sorted(len(r["input"]) for r in sent) == [2, 4, 4]
    assert all(r["dimensions"] == 32 and r["model"] == "det" for r in sent)


def test_openai_base_url_with_v1_is_not_doubled_and_sync_path_works(server_url: str) -> None:
    provider = _openai(server_url + "/v1/")
    assert provider.url == server_url + "/v1/embeddings"
    np.testing.assert_allclose(provider.embed_sync(["a", "b"]), _expected(["a", "b"]), atol=1e-6)
    assert _EmbeddingsHandler.requests[0]["path"] == "/v1/embeddings"


async def test_openai_wrong_key_is_bad_credentials_without_leaking_it(server_url: str) -> None:
    secret = "sk-wrong-secret-987"
    provider = _openai(server_url, key=secret)
    with pytest.raises(BadCredentialsError, match="HTTP 401") as caught:
        await provider.embed(["hello"])
    await provider.aclose()
    assert secret not in str(caught.value) and secret not in repr(provider)
    assert len(_EmbeddingsHandler.requests) == 1, "a refused key is not retried"


async def test_openai_retries_429_then_succeeds(server_url: str) -> None:
    provider = _openai(server_url, model="throttled-once")
    vectors = await provider.embed(["retry me"])
    await provider.aclose()
    np.testing.assert_allclose(vectors, _expected(["retry me"]), atol=1e-6)
    assert _EmbeddingsHandler.calls["throttled-once"] == 2


async def test_openai_gives_up_on_persistent_5xx_with_a_retryable_error(server_url: str) -> None:
    provider = _openai(server_url, model="unavailable", max_retries=2)
    with pytest.raises(EmbeddingServiceError, match="503"):
        await provider.embed(["x"])
    await provider.aclose()
    assert _EmbeddingsHandler.calls["unavailable"] == 3


async def test_openai_other_4xx_is_configuration_error_with_server_message(
    server_url: str,
) -> None:
    provider = _openai(server_url, model="unknown-model")
    with pytest.raises(ConfigurationError, match="model 'unknown-model' not found"):
        await provider.embed(["x"])
    await provider.aclose()


async def test_openai_checks_vector_size(server_url: str) -> None:
    provider = _openai(server_url, model="wrong-dim")
    with pytest.raises(ConfigurationError, match=r"'wrong-dim' returned 40-dimensional.*32"):
        await provider.embed(["x"])
    await provider.aclose()


async def test_openai_unreachable_server_is_retryable(server_url: str) -> None:
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    provider = _openai(f"http://127.0.0.1:{port}", max_retries=1)
    with pytest.raises(EmbeddingServiceError, match="unreachable"):
        await provider.embed(["x"])
    await provider.aclose()


# -------------------------------------------------------------------------------- factory


def test_factory_builds_both_providers() -> None:
    local = make_embedding_provider("local")
    assert isinstance(local, WordLlamaProvider) and local.dim == 256
    remote = make_embedding_provider(
        "openai", dim=64, base_url="http://embed:8000", model="m", api_key="k"
    )
    assert isinstance(remote, OpenAIEmbeddingProvider)
    assert (remote.dim, remote.url, remote.name) == (
        64,
        "http://embed:8000/v1/embeddings",
        "openai:m:64",
    )


@pytest.mark.parametrize(
    ("kwargs", "setting"),
    [
        ({"kind": "pinecone"}, "EMBEDDING_PROVIDER"),
        ({"kind": "openai", "model": "m"}, "EMBEDDING_BASE_URL"),
        ({"kind": "openai", "base_url": "http://e"}, "EMBEDDING_MODEL"),
        ({"kind": "openai", "base_url": "embed:8000", "model": "m"}, "EMBEDDING_BASE_URL"),
    ],
)
def test_factory_errors_name_the_setting(kwargs: dict[str, Any], setting: str) -> None:
    with pytest.raises(ConfigurationError, match=setting):
        make_embedding_provider(**kwargs)


def test_short_sections_are_packed_into_shared_chunks() -> None:
    sections: list[tuple[str, str | None]] = [
        (f"Paragraph {i} is short but it says something.", f"#p{i}") for i in range(30)
    ]
    chunks = chunk_document("Many paragraphs", sections, max_chars=400, overlap_chars=50)
    assert len(chunks) < len(sections) / 4
    assert all(len(c.text) <= 400 for c in chunks)
    joined = "\n\n".join(c.text for c in chunks)
    assert all(text in joined for text, _ in sections)  # nothing lost
    assert chunks[0].link == "#p0"  # a packed chunk links to its first section
