"""One embedding provider per vector space, built on first use.

Indexing writes every writable index generation and search embeds the query in the
live generation's space, so a process may need more than the one provider its
settings name (during a model swap, two). :class:`Embedders` builds each from the
generation's :class:`~sluice.index.generations.EmbeddingSpec`; the endpoint and API key
of an OpenAI-compatible provider come from the settings unless the spec names one.
"""

from __future__ import annotations

import threading

from sluice.config import Settings, get_settings
from sluice.index.embedding import EmbeddingProvider, make_embedding_provider
from sluice.index.generations import EmbeddingSpec


class Embedders:
    """A cache of providers keyed by vector space name; ``default`` is used where it fits."""

    def __init__(
        self, default: EmbeddingProvider | None = None, settings: Settings | None = None
    ) -> None:
        self._settings = settings
        self._by_name: dict[str, EmbeddingProvider] = {}
        self._lock = threading.Lock()
        if default is not None:
            self._by_name[default.name] = default

    def for_spec(self, spec: EmbeddingSpec) -> EmbeddingProvider:
        found = self._by_name.get(spec.name)
        if found is not None:
            return found
        with self._lock:
            found = self._by_name.get(spec.name)
            if found is None:
                settings = self._settings or get_settings()
                found = make_embedding_provider(
                    spec.provider,
                    dim=spec.dim,
                    base_url=spec.base_url or settings.embedding_base_url,
                    model=spec.model,
                    api_key=settings.embedding_api_key,
                )
                self._by_name[spec.name] = found
            return found


def as_embedders(embedder: EmbeddingProvider | Embedders) -> Embedders:
    """Callers holding one provider (tests, benchmarks) pass it as the default."""
    return embedder if isinstance(embedder, Embedders) else Embedders(embedder)
