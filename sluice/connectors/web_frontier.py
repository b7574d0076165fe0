"""The web crawl's frontier and seen-set, kept in Postgres so the checkpoint stays small.

A crawl *pass* (from ``start_url`` or the sitemap to the end) has a random ID and a row in
``web_crawl_pass``. Every URL the pass has seen is a row of ``web_frontier`` (migration
0005) with:

- ``seq``: its position in the crawl order, handed out densely from 0 and never reused;
  NULL for a URL only reached as a redirect target (emitted under it, never queued);
- ``found_at``: the position of the page whose fetch found it (-1 for seeds).

The checkpoint cursor is ``{"pass": <id>, "position": N}``: every position below N has
been consumed (fetched and its outputs yielded). Fifty-odd bytes, whatever the crawl's
size.

**Replay is idempotent.** The table is append-only while a pass runs, and one crawl step
(fetch the URL at ``seq``, record what it found, yield) is a function of the page and
of the URLs seen before it. A step that finds a URL already in the table adds nothing:
URLs with a ``seq`` are seen for good, redirect-only URLs are seen by every step from
their ``found_at`` on. So a fetch activity retried from an *older* checkpoint than the
table's latest state (the heartbeat lags the connector by up to a batch, and a new
attempt starts from the workflow's checkpoint, older still) re-fetches the pages from
its position, finds every link already queued, and walks exactly the same sequence as
the first try: no page lost, none duplicated. Nothing is ever truncated, so even a
stale try replaying a long-gone position cannot destroy state a newer one relies on.
If the site changed in between, links that are new are appended (found, not lost),
links that went away stay queued (this pass did find them), and a URL is still queued
at most once.

**Writes are consistent with the cursor.** Each step's rows are committed before the
item whose checkpoint passes that step is yielded, and no transaction is held across
a yield. A writer locks the pass row (``FOR UPDATE``) before reading the seen-set and
taking new ``seq`` values, so two overlapping tries of a fetch (a "zombie" still running
after its heartbeat timed out) never queue a URL twice or give two URLs one position.

**Lifecycle.** Starting a pass deletes the cc-pair's older passes; a finished pass keeps
its rows until then, so a retry of the pass's last fetch can still resume. Deleting the
cc-pair deletes its passes (foreign keys, ``ON DELETE CASCADE``). A cursor naming a pass
that no longer exists (a newer pass replaced it) starts a new pass: pages are emitted
again, which content hashes make cheap, rather than nothing.

Cursors written before the frontier moved here (``{"queue": [...], "seen": [...],
"emitted": n}``) may still be in running workflows; the first load converts one into a
pass (its ID derived from the cursor, so a retried conversion finds the same pass).

``MemoryFrontier`` has the same interface for crawls that are never resumed
(``list_ids``).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import JsonValue

from sluice.db.session import tenant_connection
from sluice.errors import ConnectorConfigError, SluiceError

READ_AHEAD = 256
"""Queued URLs read per query."""

KNOWN_LIMIT = 50_000
"""URLs remembered as queued (saves sending them again); forgotten beyond this."""

MAX_URL_BYTES = 2000
"""Longer URLs (in UTF-8) are not recorded: they would not fit a B-tree index entry."""

_MAX_PASS_ID = 100


class FrontierGone(SluiceError):
    """The crawl pass was deleted while this load ran (a newer pass replaced it); retryable."""


# --------------------------------------------------------------------------- cursors


@dataclass(frozen=True)
class PassCursor:
    """``{"pass": id, "position": n}``: positions below ``n`` of pass ``id`` are consumed."""

    pass_id: str
    position: int


@dataclass(frozen=True)
class LegacyCursor:
    """The old cursor, with the whole frontier in it (converted on first load)."""

    queue: list[str]
    seen: list[str]
    emitted: int
    raw: dict[str, Any]


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def parse_cursor(cursor: JsonValue) -> PassCursor | LegacyCursor | None:
    """Read a checkpoint cursor; ``ConnectorConfigError`` if it is neither format."""
    if cursor is None:
        return None
    if not isinstance(cursor, dict):
        raise ConnectorConfigError("malformed web checkpoint cursor: expected an object")
    if "queue" in cursor or "seen" in cursor:
        queue, seen, emitted = cursor.get("queue"), cursor.get("seen"), cursor.get("emitted")
        if (
            not isinstance(queue, list)
            or not isinstance(seen, list)
            or not all(isinstance(u, str) for u in [*queue, *seen])
            or not _is_count(emitted)
        ):
            raise ConnectorConfigError(
                "malformed web checkpoint cursor: "
                "expected {queue: [str], seen: [str], emitted: int}"
            )
        assert isinstance(emitted, int)
        return LegacyCursor([str(u) for u in queue], [str(u) for u in seen], emitted, dict(cursor))
    pass_id, position = cursor.get("pass"), cursor.get("position")
    if (
        not isinstance(pass_id, str)
        or not 0 < len(pass_id) <= _MAX_PASS_ID
        or not _is_count(position)
    ):
        raise ConnectorConfigError(
            "malformed web checkpoint cursor: expected {pass: str, position: int}"
        )
    assert isinstance(position, int)
    return PassCursor(pass_id, position)


# --------------------------------------------------------------------------- frontiers


class Frontier:
    """Queued URLs in crawl order, and what each crawl step found.

    ``position`` is the next position to consume; the crawl sets it past each URL it takes.
    """

    position: int = 0

    async def next(self) -> tuple[int, str] | None:
        """The first queued ``(seq, url)`` at or after ``position``; None when exhausted."""
        raise NotImplementedError

    async def record(
        self, step: int, redirect: str | None, links: Sequence[str], limit: int
    ) -> bool:
        """Record what the page at ``step`` found: the URL it redirected to (if it did) and
        its links, queued in order while fewer than ``limit`` URLs are queued.

        False when the redirect target was seen before this step: that page is (or will
        be) crawled under its own URL, so this one is skipped and its links are not queued.
        """
        raise NotImplementedError


class MemoryFrontier(Frontier):
    """The whole frontier in memory: for one-shot crawls that are never resumed."""

    def __init__(self, seeds: Sequence[str]) -> None:
        self.position = 0
        self._queue = list(dict.fromkeys(seeds))
        self._seen = set(self._queue)

    async def next(self) -> tuple[int, str] | None:
        if self.position < len(self._queue):
            return self.position, self._queue[self.position]
        return None

    async def record(
        self, step: int, redirect: str | None, links: Sequence[str], limit: int
    ) -> bool:
        if redirect is not None:
            if redirect in self._seen:
                return False
            self._seen.add(redirect)
        for link in links:
            if len(self._queue) >= limit:
                break
            if link not in self._seen:
                self._seen.add(link)
                self._queue.append(link)
        return True


_QUEUE_LINKS = """
WITH links AS (
    SELECT l.url, min(l.ord) AS ord
    FROM unnest($3::text[]) WITH ORDINALITY AS l(url, ord)
    GROUP BY l.url
), fresh AS (
    SELECT links.url, links.ord
    FROM links
    WHERE NOT EXISTS (
        SELECT 1 FROM web_frontier f
        WHERE f.cc_pair_id = $1 AND f.pass_id = $2 AND f.url = links.url
          AND (f.seq IS NOT NULL OR f.found_at <= $4)
    )
    ORDER BY links.ord
    LIMIT $6
), added AS (
    INSERT INTO web_frontier AS f (cc_pair_id, pass_id, url, seq, found_at)
    SELECT $1, $2, fresh.url, $5 + row_number() OVER (ORDER BY fresh.ord) - 1, $4
    FROM fresh
    ON CONFLICT (cc_pair_id, pass_id, url)
        DO UPDATE SET seq = EXCLUDED.seq, found_at = EXCLUDED.found_at
    RETURNING f.url
)
UPDATE web_crawl_pass
SET next_seq = next_seq + (SELECT count(*) FROM added), updated_at = now()
WHERE cc_pair_id = $1 AND pass_id = $2
RETURNING ARRAY(SELECT url FROM added)
"""
"""Queue a step's new links at ``next_seq`` ($5) onwards, at most $6 of them. Run with
the pass row locked. A link is new unless it is queued or was a redirect target at or
before this step ($4); a redirect-only row from a *later* step (only after the site
changed under a replay) is promoted to a queued one, so that step skips it instead."""


class DbFrontier(Frontier):
    """A pass's frontier in ``web_frontier``; see the module docstring for the protocol."""

    def __init__(self, tenant_id: str, cc_pair_id: int, pass_id: str, position: int) -> None:
        self.tenant_id = tenant_id
        self.cc_pair_id = cc_pair_id
        self.pass_id = pass_id
        self.position = position
        self._ahead: deque[tuple[int, str]] = deque()
        self._known: set[str] = set()
        """URLs known to be queued in this pass (queued is forever): never sent again."""

    def cursor(self) -> dict[str, JsonValue]:
        return {"pass": self.pass_id, "position": self.position}

    # --- opening a pass ------------------------------------------------------------

    @classmethod
    async def start(cls, tenant_id: str, cc_pair_id: int, seeds: Sequence[str]) -> DbFrontier:
        """A new pass queueing ``seeds``; the cc-pair's older passes are deleted."""
        pass_id = uuid.uuid4().hex
        urls = _recordable(dict.fromkeys(seeds))
        async with tenant_connection(tenant_id) as (_, raw):
            await raw.execute("DELETE FROM web_crawl_pass WHERE cc_pair_id = $1", cc_pair_id)
            await raw.execute(
                "INSERT INTO web_crawl_pass (cc_pair_id, pass_id, next_seq) VALUES ($1, $2, $3)",
                cc_pair_id,
                pass_id,
                len(urls),
            )
            await _insert(raw, cc_pair_id, pass_id, urls, first_seq=0)
        return cls(tenant_id, cc_pair_id, pass_id, 0)

    @classmethod
    async def resume(cls, tenant_id: str, cc_pair_id: int, cursor: PassCursor) -> DbFrontier | None:
        """The pass the cursor names, at its position; None if the pass no longer exists."""
        async with tenant_connection(tenant_id) as (_, raw):
            exists = await raw.fetchval(
                "SELECT true FROM web_crawl_pass WHERE cc_pair_id = $1 AND pass_id = $2",
                cc_pair_id,
                cursor.pass_id,
            )
        if not exists:
            return None
        return cls(tenant_id, cc_pair_id, cursor.pass_id, cursor.position)

    @classmethod
    async def from_legacy(cls, tenant_id: str, cc_pair_id: int, cursor: LegacyCursor) -> DbFrontier:
        """Convert an old cursor: its queue at positions ``emitted`` onwards, the rest of
        its seen-set as seen. Idempotent: the pass ID is a hash of the cursor."""
        digest = hashlib.sha256(
            json.dumps(cursor.raw, sort_keys=True, separators=(",", ":")).encode()
        ).hexdigest()
        pass_id = f"legacy-{digest[:32]}"
        queue = _recordable(dict.fromkeys(cursor.queue))
        queued = set(queue)
        seen_only = _recordable(u for u in dict.fromkeys(cursor.seen) if u not in queued)
        async with tenant_connection(tenant_id) as (_, raw):
            created = await raw.fetchval(
                """
                INSERT INTO web_crawl_pass (cc_pair_id, pass_id, next_seq) VALUES ($1, $2, $3)
                ON CONFLICT (cc_pair_id, pass_id) DO NOTHING
                RETURNING true
                """,
                cc_pair_id,
                pass_id,
                cursor.emitted + len(queue),
            )
            if created:
                await raw.execute(
                    "DELETE FROM web_crawl_pass WHERE cc_pair_id = $1 AND pass_id <> $2",
                    cc_pair_id,
                    pass_id,
                )
                await _insert(raw, cc_pair_id, pass_id, queue, first_seq=cursor.emitted)
                await _insert(raw, cc_pair_id, pass_id, seen_only, first_seq=None)
        return cls(tenant_id, cc_pair_id, pass_id, cursor.emitted)

    # --- crawling ------------------------------------------------------------------

    async def next(self) -> tuple[int, str] | None:
        while self._ahead and self._ahead[0][0] < self.position:
            self._ahead.popleft()
        if not self._ahead:
            async with tenant_connection(self.tenant_id) as (_, raw):
                rows = await raw.fetch(
                    """
                    SELECT seq, url FROM web_frontier
                    WHERE cc_pair_id = $1 AND pass_id = $2 AND seq >= $3
                    ORDER BY seq LIMIT $4
                    """,
                    self.cc_pair_id,
                    self.pass_id,
                    self.position,
                    READ_AHEAD,
                )
                if not rows and not await self._exists(raw):
                    raise FrontierGone(f"web crawl pass {self.pass_id} was deleted")
            self._ahead.extend((row["seq"], row["url"]) for row in rows)
            self._remember(url for _, url in self._ahead)
        return self._ahead[0] if self._ahead else None

    async def record(
        self, step: int, redirect: str | None, links: Sequence[str], limit: int
    ) -> bool:
        new_links = _recordable(u for u in dict.fromkeys(links) if u not in self._known)
        if redirect is None and not new_links:
            return True
        async with tenant_connection(self.tenant_id) as (_, raw):
            next_seq = await raw.fetchval(
                "SELECT next_seq FROM web_crawl_pass "
                "WHERE cc_pair_id = $1 AND pass_id = $2 FOR UPDATE",
                self.cc_pair_id,
                self.pass_id,
            )
            if next_seq is None:
                raise FrontierGone(f"web crawl pass {self.pass_id} was deleted")
            if redirect is not None and not await self._claim_redirect(raw, step, redirect):
                return False
            room = limit - next_seq
            if new_links and room > 0:
                added = await raw.fetchval(
                    _QUEUE_LINKS,
                    self.cc_pair_id,
                    self.pass_id,
                    new_links,
                    step,
                    next_seq,
                    room,
                )
                self._remember(added)
        return True

    async def _claim_redirect(self, raw: Any, step: int, url: str) -> bool:
        """True if ``url`` (a redirect target) was not seen before ``step``; records it."""
        if len(url.encode()) > MAX_URL_BYTES:
            return True
        row = await raw.fetchrow(
            "SELECT seq, found_at FROM web_frontier "
            "WHERE cc_pair_id = $1 AND pass_id = $2 AND url = $3",
            self.cc_pair_id,
            self.pass_id,
            url,
        )
        if row is None:
            await raw.execute(
                "INSERT INTO web_frontier (cc_pair_id, pass_id, url, seq, found_at) "
                "VALUES ($1, $2, $3, NULL, $4)",
                self.cc_pair_id,
                self.pass_id,
                url,
                step,
            )
            return True
        if row["seq"] is not None or row["found_at"] < step:
            return False  # queued under its own URL, or an earlier page redirected to it
        if row["found_at"] > step:  # a later page's, from before the site changed
            await raw.execute(
                "UPDATE web_frontier SET found_at = $4 "
                "WHERE cc_pair_id = $1 AND pass_id = $2 AND url = $3",
                self.cc_pair_id,
                self.pass_id,
                url,
                step,
            )
        return True  # found_at == step: this very step, replayed

    async def _exists(self, raw: Any) -> bool:
        found = await raw.fetchval(
            "SELECT true FROM web_crawl_pass WHERE cc_pair_id = $1 AND pass_id = $2",
            self.cc_pair_id,
            self.pass_id,
        )
        return bool(found)

    def _remember(self, urls: Any) -> None:
        if len(self._known) > KNOWN_LIMIT:
            self._known.clear()
        self._known.update(urls)


def _recordable(urls: Any) -> list[str]:
    return [url for url in urls if len(url.encode()) <= MAX_URL_BYTES]


async def _insert(
    raw: Any, cc_pair_id: int, pass_id: str, urls: list[str], *, first_seq: int | None
) -> None:
    """Insert ``urls`` found before the crawl (``found_at`` -1): queued from ``first_seq``
    on, or seen but not queued when it is None."""
    if not urls:
        return
    await raw.execute(
        """
        INSERT INTO web_frontier (cc_pair_id, pass_id, url, seq, found_at)
        SELECT $1, $2, u.url, CASE WHEN $4::integer IS NULL THEN NULL
                                   ELSE $4::integer + u.ord::integer - 1 END, -1
        FROM unnest($3::text[]) WITH ORDINALITY AS u(url, ord)
        """,
        cc_pair_id,
        pass_id,
        urls,
        first_seq,
    )
