"""A short-lived cache of document frequencies for the text side of search.

Counting how many chunks hold a lexeme is the costly part of a query's IDFs on a large
index: a common word means a GIN scan of up to ``cap`` rows, on every query that has
it. The counts change slowly (one indexing batch moves them by a fraction of a percent),
so :func:`sluice.index.store.text_query` keeps them here for a short while, per tenant
schema and per ``cap`` (a count of ``cap`` means "at least ``cap``": it is only
comparable under the same cap).

Only tenants with at least ``MIN_CHUNKS`` chunks use it: there the counts are expensive
and a batch written within the TTL changes an IDF immaterially, while a small tenant
(tests, a first sync) counts exactly on every query, as before.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

TTL_SECONDS = 60.0
"""How long a count is reused. Indexing in between shifts IDFs by a fraction at most."""

MIN_CHUNKS = 10_000
"""Below this many chunks, counting is cheap: no caching, exact IDFs every time."""

MAX_ENTRIES = 200_000
"""Bound on memory (~40 MB at most); beyond it expired entries go, then the oldest."""


class DfCache:
    """``(schema, cap, lexeme) -> df`` with a time-to-live; safe within one event loop."""

    def __init__(
        self,
        ttl: float = TTL_SECONDS,
        max_entries: int = MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self.clock = clock
        self._entries: dict[tuple[str, int, str], tuple[float, int]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, schema: str, cap: int, terms: Iterable[str]) -> dict[str, int]:
        """The unexpired counts among ``terms`` (terms not cached are absent)."""
        now = self.clock()
        found: dict[str, int] = {}
        for term in terms:
            key = (schema, cap, term)
            entry = self._entries.get(key)
            if entry is None:
                continue
            expires, df = entry
            if expires <= now:
                del self._entries[key]
                continue
            found[term] = df
        return found

    def put(self, schema: str, cap: int, counts: dict[str, int]) -> None:
        expires = self.clock() + self.ttl
        for term, df in counts.items():
            self._entries[(schema, cap, term)] = (expires, df)
        if len(self._entries) > self.max_entries:
            self._shrink()

    def invalidate(self, schema: str | None = None) -> None:
        """Forget one schema's counts (or all): e.g. after a bulk load or a reset."""
        if schema is None:
            self._entries.clear()
        else:
            for key in [k for k in self._entries if k[0] == schema]:
                del self._entries[key]

    def _shrink(self) -> None:
        now = self.clock()
        for key in [k for k, (expires, _) in self._entries.items() if expires <= now]:
            del self._entries[key]
        excess = len(self._entries) - self.max_entries // 2
        if excess > 0 and len(self._entries) > self.max_entries:
            for key in list(self._entries)[:excess]:  # insertion order: the oldest first
                del self._entries[key]


DF_CACHE = DfCache()
"""The process's cache (the search API's, and the workers')."""

FILTER_CHUNKS = DfCache()
"""How many chunks a search filter keeps, per tenant (``sluice.index.store``): keyed by
the filter, the cap being the count it was compared with."""
