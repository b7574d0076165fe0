"""Embedding providers: turn chunk texts into unit-length float32 vectors.

Two implementations of one small protocol:

* :class:`WordLlamaProvider`, the default, runs the WordLlama model bundled in the
  ``wordllama`` wheel. It needs no network and no GPU, so ``sluice dev`` and CI
  work offline. Its CPU work runs in a small shared thread pool, never on the
  event loop, so a worker keeps heart-beating while it embeds.
* :class:`OpenAIEmbeddingProvider` calls any OpenAI-compatible ``/v1/embeddings``
  endpoint (OpenAI, vLLM, Ollama, TEI...), batching, retrying overload and
  mapping refusals to Sluice's non-retryable errors so Temporal stops retrying
  what cannot succeed.

Every provider returns rows of L2 norm 1, so cosine similarity is a dot product
and vectors from either provider can go to the same pgvector cosine index.
"""

from __future__ import annotations

import asyncio
import functools
import importlib.util
import os
import random
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from sluice.config import Settings
from sluice.errors import BadCredentialsError, ConfigurationError, SluiceError
from sluice.logging import get_logger

if TYPE_CHECKING:
    import httpx
    from tokenizers import Tokenizer

log = get_logger(__name__)

Vectors = np.ndarray
"""float32 array of shape ``(n, dim)`` whose rows have L2 norm 1."""


class EmbeddingServiceError(SluiceError):
    """The embedding service stayed overloaded or unreachable: retryable (not in the
    non-retryable list), so the activity's retry policy tries again later."""


@runtime_checkable
class EmbeddingProvider(Protocol):
    """What indexing and search need from an embedding model.

    ``name`` identifies the vector space (model and dimension): vectors with different
    names must not be compared, so the index can detect a provider switch.
    """

    dim: int
    name: str

    async def embed(self, texts: list[str]) -> Vectors:
        """Embed ``texts`` without blocking the event loop; row ``i`` is ``texts[i]``."""
        ...

    def embed_sync(self, texts: list[str]) -> Vectors:
        """Blocking :meth:`embed` for in-process callers without an event loop (benchmarks)."""
        ...


def _empty(dim: int) -> Vectors:
    return np.empty((0, dim), dtype=np.float32)


def _normalise(rows: np.ndarray) -> Vectors:
    """Scale rows to unit length; an all-zero row (no known token) becomes a fixed unit
    vector so cosine maths downstream never sees 0/0 (pgvector returns NaN for it)."""
    rows = np.asarray(rows, dtype=np.float32)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    zero = norms[:, 0] == 0
    if zero.any():
        rows = rows.copy()
        rows[zero] = 1.0
        norms[zero] = np.sqrt(np.float32(rows.shape[1]))
    return np.ascontiguousarray(rows / norms, dtype=np.float32)


# --------------------------------------------------------------------------- local model

WORDLLAMA_CONFIG = "l2_supercat"
WORDLLAMA_DIMS: tuple[int, ...] = (64, 128, 256)
"""Dimensions the bundled 256-d weights can serve: WordLlama is Matryoshka-trained,
so a prefix of the vector is itself an embedding."""
_WORDLLAMA_FILE_DIM = 256
_WORDLLAMA_TENSOR = "embedding.weight"
_LONG_TEXT_CHARS = 20_000
"""Above this, pool by token counts instead of gathering one row per token, so a
pathological multi-megabyte text costs O(vocabulary) memory, not O(tokens x dim)."""


@dataclass(frozen=True)
class _LocalModel:
    tokenizer: Tokenizer  # padding enabled: ids form a rectangle
    matrix: np.ndarray  # (vocabulary, 256) float32 token embeddings


_model: _LocalModel | None = None
_model_lock = threading.Lock()


def _load_local_model() -> _LocalModel:
    """The process-wide model, loaded on first use (~0.3 s, 16 MB) from the wheel itself."""
    global _model
    if _model is not None:
        return _model
    with _model_lock:
        if _model is None:
            _model = _read_bundled_model()
        return _model


def _read_bundled_model() -> _LocalModel:
    """The weights and tokenizer shipped in the ``wordllama`` wheel, read without importing
    ``wordllama``: its package import costs about a second (requests, its training and
    config modules) and calls ``logging.basicConfig(INFO)``. What it would do is repeated
    here: safetensors weights, a tokenizer padding every batch to a rectangle, no
    truncation (``WordLlama.load``; a test checks the vectors are the library's)."""
    from safetensors import safe_open
    from tokenizers import Tokenizer

    package_dir = _wordllama_dir()
    weights = package_dir / "weights" / f"{WORDLLAMA_CONFIG}_{_WORDLLAMA_FILE_DIM}.safetensors"
    tokenizer_file = package_dir / "tokenizers" / f"{WORDLLAMA_CONFIG}_tokenizer_config.json"
    for path in (weights, tokenizer_file):
        if not path.is_file():
            from importlib.metadata import version

            raise ConfigurationError(
                f"the WordLlama model bundled with wordllama {version('wordllama')} was not "
                f"found ({path}); reinstall wordllama or set EMBEDDING_PROVIDER=openai"
            )
    tokenizer = Tokenizer.from_file(str(tokenizer_file))
    tokenizer.enable_padding()
    tokenizer.no_truncation()
    with safe_open(str(weights), framework="np", device="cpu") as f:
        matrix = np.ascontiguousarray(f.get_tensor(_WORDLLAMA_TENSOR), dtype=np.float32)
    return _LocalModel(tokenizer=tokenizer, matrix=matrix)


def _wordllama_dir() -> Path:
    """Where the ``wordllama`` package is installed, found without executing it."""
    spec = importlib.util.find_spec("wordllama")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise ConfigurationError(
            "the wordllama package (the local embedding model) is not installed; "
            "install it or set EMBEDDING_PROVIDER=openai"
        )
    return Path(locations[0])


@functools.cache
def _matrix(dim: int) -> np.ndarray:
    """Token embeddings cut to ``dim`` columns, contiguous so gathers stay fast."""
    full = _load_local_model().matrix
    return full if dim == full.shape[1] else np.ascontiguousarray(full[:, :dim])


def _pool(texts: Sequence[str], dim: int) -> Vectors:
    """Mean-pool token embeddings of ``texts`` (one padded batch) and normalise.

    Equivalent to ``WordLlamaInference.embed(texts, norm=True)`` (a test checks it),
    but sums with ``einsum`` instead of materialising ``x * mask``: about 30 % faster.
    """
    tokenizer = _load_local_model().tokenizer
    matrix = _matrix(dim)
    encodings = tokenizer.encode_batch(list(texts), add_special_tokens=False)
    ids = np.array([e.ids for e in encodings], dtype=np.int32)
    mask = np.array([e.attention_mask for e in encodings], dtype=np.float32)
    np.clip(ids, 0, matrix.shape[0] - 1, out=ids)
    # The mean's denominator is irrelevant once rows are normalised.
    sums = np.einsum("bld,bl->bd", matrix[ids], mask)
    return _normalise(sums)


def _pool_long(text: str, dim: int) -> Vectors:
    """Mean-pool one very long text through token counts: memory O(vocabulary)."""
    tokenizer = _load_local_model().tokenizer
    matrix = _matrix(dim)
    ids = np.asarray(tokenizer.encode(text, add_special_tokens=False).ids, dtype=np.int64)
    np.clip(ids, 0, matrix.shape[0] - 1, out=ids)
    counts = np.bincount(ids, minlength=matrix.shape[0]).astype(np.float32)
    return _normalise((counts @ matrix)[np.newaxis, :])


_executors: dict[int, ThreadPoolExecutor] = {}
_executors_lock = threading.Lock()
_THREAD_PREFIX = "sluice-embed"


def _executor(threads: int) -> ThreadPoolExecutor:
    """The shared pool of ``threads`` workers (one per size, created once per process).

    With more than one worker Sluice parallelises across batches itself, so the
    tokenizer's own Rust thread pool is turned off (unless TOKENIZERS_PARALLELISM is
    set explicitly): both at once oversubscribe the cores (measured on 2 cores:
    ~4,300 chunks/s with both vs ~5,900 with ours alone). It also silences the
    tokenizers fork warning in forking worker processes.
    """
    with _executors_lock:
        pool = _executors.get(threads)
        if pool is None:
            if threads > 1:
                os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
            pool = ThreadPoolExecutor(threads, thread_name_prefix=_THREAD_PREFIX)
            _executors[threads] = pool
        return pool


def default_embed_threads() -> int:
    """Two threads at most: embedding shares the machine with the worker's other work."""
    return min(2, os.cpu_count() or 1)


class WordLlamaProvider:
    """Local embeddings from the WordLlama model shipped inside the ``wordllama`` wheel.

    Construction is cheap; the model loads on first use (or :meth:`warm_up`). Texts are
    sorted by length and cut into batches of at most ``batch_size`` texts and about
    ``batch_size * 1500`` padded characters, and batches run on ``threads`` pool threads
    (the tokenizer and numpy release the GIL, so 2 threads use 2 cores).
    """

    def __init__(self, dim: int = 256, *, threads: int | None = None, batch_size: int = 64):
        if dim not in WORDLLAMA_DIMS:
            raise ConfigurationError(
                f"the local WordLlama embedding supports dimensions {WORDLLAMA_DIMS}, not {dim}"
            )
        if threads is not None and threads < 1:
            raise ConfigurationError(f"embedding threads must be >= 1, got {threads}")
        if batch_size < 1:
            raise ConfigurationError(f"embedding batch_size must be >= 1, got {batch_size}")
        self.dim = dim
        self.name = f"wordllama:{WORDLLAMA_CONFIG}:{dim}"
        self.threads = threads or default_embed_threads()
        self.batch_size = batch_size
        self._char_budget = batch_size * 1500

    def __repr__(self) -> str:
        return f"WordLlamaProvider(dim={self.dim}, threads={self.threads})"

    def warm_up(self) -> None:
        """Load the model now (e.g. at worker start) instead of in the first activity."""
        _matrix(self.dim)

    def _plan(self, texts: Sequence[str]) -> list[list[int]]:
        """Group indices of similar-length texts so padding wastes little work."""
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        batches: list[list[int]] = []
        current: list[int] = []
        for i in order:
            size = len(texts[i])
            if size > _LONG_TEXT_CHARS:
                batches.append([i])  # sorted: every later text is long too
                continue
            # Ascending order: this text is the longest, so it sets the padded width.
            if current and (
                len(current) >= self.batch_size or (len(current) + 1) * size > self._char_budget
            ):
                batches.append(current)
                current = []
            current.append(i)
        if current:
            batches.append(current)
        return batches

    def _embed_batch(self, texts: Sequence[str]) -> Vectors:
        if len(texts) == 1 and len(texts[0]) > _LONG_TEXT_CHARS:
            return _pool_long(texts[0], self.dim)
        return _pool(texts, self.dim)

    @staticmethod
    def _assemble(n: int, dim: int, plan: list[list[int]], parts: list[Vectors]) -> Vectors:
        out = np.empty((n, dim), dtype=np.float32)
        for indices, rows in zip(plan, parts, strict=True):
            out[indices] = rows
        return out

    async def embed(self, texts: list[str]) -> Vectors:
        """Embed on the shared pool; the event loop only waits."""
        if not texts:
            return _empty(self.dim)
        loop = asyncio.get_running_loop()
        pool = _executor(self.threads)
        plan = self._plan(texts)
        futures = [
            loop.run_in_executor(pool, self._embed_batch, [texts[i] for i in indices])
            for indices in plan
        ]
        parts = await asyncio.gather(*futures)
        return self._assemble(len(texts), self.dim, plan, list(parts))

    def embed_sync(self, texts: list[str]) -> Vectors:
        """Embed in the calling thread plus the shared pool (benchmarks, scripts)."""
        if not texts:
            return _empty(self.dim)
        plan = self._plan(texts)
        batches = [[texts[i] for i in indices] for indices in plan]
        if len(batches) == 1 or threading.current_thread().name.startswith(_THREAD_PREFIX):
            # Submitting from inside the pool could wait on itself: stay in this thread.
            parts = [self._embed_batch(batch) for batch in batches]
        else:
            parts = list(_executor(self.threads).map(self._embed_batch, batches))
        return self._assemble(len(texts), self.dim, plan, parts)


# ------------------------------------------------------------------ OpenAI-compatible API

_RETRYABLE_STATUS = frozenset({408, 429})
_MAX_BACKOFF = 30.0


def _embeddings_url(base_url: str) -> str:
    base = base_url.rstrip("/")
    return f"{base}/embeddings" if base.endswith("/v1") else f"{base}/v1/embeddings"


class OpenAIEmbeddingProvider:
    """An OpenAI-compatible ``POST /v1/embeddings`` endpoint.

    Inputs go in batches of ``batch_size``, at most ``max_concurrency`` requests at a
    time. 408/429/5xx and transport errors are retried ``max_retries`` times with
    jittered exponential backoff (honouring a numeric ``Retry-After``), then raise the
    retryable :class:`EmbeddingServiceError`. 401/403 raise
    :class:`~sluice.errors.BadCredentialsError` and other 4xx, a wrong vector size or a
    malformed reply raise :class:`~sluice.errors.ConfigurationError`: retrying those
    cannot help. The API key only ever goes into the Authorization header; it is kept
    out of ``repr`` and redacted from any server message that echoes it.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None,
        dim: int,
        batch_size: int = 256,
        timeout: float = 60,
        *,
        max_retries: int = 4,
        backoff_base: float = 0.5,
        max_concurrency: int = 4,
    ):
        if not base_url.startswith(("http://", "https://")):
            raise ConfigurationError(
                f"EMBEDDING_BASE_URL must be an http:// or https:// URL, got {base_url!r}"
            )
        if dim < 1 or batch_size < 1 or max_concurrency < 1 or max_retries < 0:
            raise ConfigurationError(
                "embedding dim, batch_size and max_concurrency must be >= 1 and max_retries >= 0"
            )
        self.dim = dim
        self.model = model
        self.name = f"openai:{model}:{dim}"
        self.url = _embeddings_url(base_url)
        self.batch_size = batch_size
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.max_concurrency = max_concurrency
        self._api_key = api_key or None
        self._client: httpx.AsyncClient | None = None
        self._client_loop: asyncio.AbstractEventLoop | None = None

    def __repr__(self) -> str:
        return f"OpenAIEmbeddingProvider(url={self.url!r}, model={self.model!r}, dim={self.dim})"

    def _new_client(self) -> httpx.AsyncClient:
        import httpx  # only this provider needs it: search with the local model does not

        headers = {"Content-Type": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        return httpx.AsyncClient(headers=headers, timeout=httpx.Timeout(self.timeout))

    def _get_client(self) -> httpx.AsyncClient:
        """The provider's client; a new one if the loop changed (connections are per loop)."""
        loop = asyncio.get_running_loop()
        if self._client is None or self._client_loop is not loop or self._client.is_closed:
            self._client = self._new_client()
            self._client_loop = loop
        return self._client

    async def aclose(self) -> None:
        """Close the pooled connections (call at worker shutdown)."""
        client, self._client, self._client_loop = self._client, None, None
        if client is not None:
            await client.aclose()

    async def embed(self, texts: list[str]) -> Vectors:
        """Embed through the reused client; batches run concurrently, rows keep input order."""
        if not texts:
            return _empty(self.dim)
        return await self._embed_all(self._get_client(), texts)

    def embed_sync(self, texts: list[str]) -> Vectors:
        """Blocking :meth:`embed` on a private event loop; not callable from async code."""
        if not texts:
            return _empty(self.dim)

        async def run() -> Vectors:
            async with self._new_client() as client:
                return await self._embed_all(client, texts)

        return asyncio.run(run())

    async def _embed_all(self, client: httpx.AsyncClient, texts: list[str]) -> Vectors:
        starts = range(0, len(texts), self.batch_size)
        limit = asyncio.Semaphore(self.max_concurrency)

        async def one(start: int) -> Vectors:
            async with limit:
                return await self._embed_batch(client, texts[start : start + self.batch_size])

        try:
            # A TaskGroup cancels the other batches as soon as one fails for good.
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(one(start)) for start in starts]
        except ExceptionGroup as failed:
            # Callers and Temporal's retry policy match on the error's own type.
            raise failed.exceptions[0]  # noqa: B904 -- keeps the error's own __cause__
        return np.concatenate([task.result() for task in tasks], axis=0)

    async def _embed_batch(self, client: httpx.AsyncClient, batch: list[str]) -> Vectors:
        import httpx

        payload = {"model": self.model, "input": batch, "dimensions": self.dim}
        attempt = 0
        while True:
            try:
                response = await client.post(self.url, json=payload)
            except httpx.TransportError as exc:
                if attempt >= self.max_retries:
                    raise EmbeddingServiceError(
                        f"embedding endpoint {self.url} unreachable after "
                        f"{attempt + 1} attempts: {type(exc).__name__}: {exc}"
                    ) from exc
                delay = self._backoff(attempt, None)
                log.warning(
                    "embedding request failed, retrying",
                    url=self.url,
                    error=type(exc).__name__,
                    attempt=attempt + 1,
                    delay_s=round(delay, 2),
                )
            else:
                status = response.status_code
                if status < 300:
                    return self._parse(response, len(batch))
                if status in (401, 403):
                    raise BadCredentialsError(
                        f"embedding endpoint {self.url} refused the API key "
                        f"(HTTP {status}): {self._message(response)}"
                    )
                if status not in _RETRYABLE_STATUS and status < 500:
                    raise ConfigurationError(
                        f"embedding endpoint {self.url} rejected the request for model "
                        f"{self.model!r} (HTTP {status}): {self._message(response)}"
                    )
                if attempt >= self.max_retries:
                    raise EmbeddingServiceError(
                        f"embedding endpoint {self.url} still failing after {attempt + 1} "
                        f"attempts (HTTP {status}): {self._message(response)}"
                    )
                delay = self._backoff(attempt, response.headers.get("retry-after"))
                log.warning(
                    "embedding request throttled or failed, retrying",
                    url=self.url,
                    status=status,
                    attempt=attempt + 1,
                    delay_s=round(delay, 2),
                )
            attempt += 1
            await asyncio.sleep(delay)

    def _backoff(self, attempt: int, retry_after: str | None) -> float:
        """Seconds to wait: the server's numeric Retry-After, else jittered 2^attempt."""
        if retry_after is not None:
            try:
                return min(max(float(retry_after), 0.0), _MAX_BACKOFF)
            except ValueError:
                pass  # an HTTP date: fall back to our own schedule
        base = min(self.backoff_base * 2**attempt, _MAX_BACKOFF)
        return base * random.uniform(0.5, 1.0)

    def _message(self, response: httpx.Response) -> str:
        """The server's error message (OpenAI's ``{"error": {"message"}}`` or the body)."""
        message: Any = None
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict):
            error = body.get("error")
            message = error.get("message") if isinstance(error, dict) else error
            message = message or body.get("message") or body.get("detail")
        text = str(message) if message else response.text.strip()
        text = text[:500] or response.reason_phrase
        if self._api_key:
            text = text.replace(self._api_key, "***")
        return text

    def _parse(self, response: httpx.Response, expected: int) -> Vectors:
        """Rows ordered by ``index``, checked for count and size, then normalised."""
        try:
            data = response.json()["data"]
            by_index = {int(item["index"]): item["embedding"] for item in data}
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigurationError(
                f"embedding endpoint {self.url} did not return an OpenAI embeddings "
                f"response ({type(exc).__name__}: {exc}); check EMBEDDING_BASE_URL"
            ) from exc
        if sorted(by_index) != list(range(expected)):
            raise ConfigurationError(
                f"embedding endpoint {self.url} returned {len(by_index)} vectors "
                f"for {expected} inputs (model {self.model!r})"
            )
        rows = [by_index[i] for i in range(expected)]
        sizes = sorted({len(row) for row in rows})
        if sizes != [self.dim]:
            raise ConfigurationError(
                f"embedding model {self.model!r} returned {'/'.join(map(str, sizes))}-"
                f"dimensional vectors but {self.dim} were requested; use a model that "
                f"supports the 'dimensions' parameter or change the embedding dimension"
            )
        return _normalise(np.asarray(rows, dtype=np.float32))


# ------------------------------------------------------------------------------ factory


def make_embedding_provider(
    kind: str,
    *,
    dim: int = 256,
    base_url: str | None = None,
    model: str | None = None,
    api_key: str | None = None,
) -> EmbeddingProvider:
    """Build the provider the settings ask for (``EMBEDDING_PROVIDER`` = local | openai)."""
    normalised = (kind or "").strip().lower()
    if normalised == "local":
        return WordLlamaProvider(dim=dim)
    if normalised == "openai":
        if not base_url:
            raise ConfigurationError(
                "EMBEDDING_BASE_URL is required when EMBEDDING_PROVIDER=openai"
            )
        if not model:
            raise ConfigurationError("EMBEDDING_MODEL is required when EMBEDDING_PROVIDER=openai")
        return OpenAIEmbeddingProvider(base_url, model, api_key, dim)
    raise ConfigurationError(f"EMBEDDING_PROVIDER must be 'local' or 'openai', got {kind!r}")


def embedder_from_settings(settings: Settings) -> EmbeddingProvider:
    """The provider the ``EMBEDDING_*`` settings ask for (workers and search use this)."""
    return make_embedding_provider(
        settings.embedding_provider,
        base_url=settings.embedding_base_url,
        model=settings.embedding_model,
        api_key=settings.embedding_api_key,
    )
