"""Web connector: a breadth-first crawl of one host, or the pages listed in a sitemap.

The crawl frontier (queued URLs) and seen-set live in Postgres (``web_frontier.py``); the
checkpoint cursor only names the crawl pass and the position reached in it, so it stays
a few dozen bytes however large the site, and an activity that dies mid-crawl resumes
exactly where its checkpoint left it instead of re-crawling from the start URL. The
host's robots.txt is honoured (``robots.py``). The HTML-to-text parser here uses only the
stdlib ``html.parser`` (no new dependency) and is shared with the filesystem connector.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from html.parser import HTMLParser
from typing import ClassVar
from urllib.parse import quote, urljoin, urlsplit, urlunsplit
from xml.etree import ElementTree

import httpx
import structlog
from pydantic import Field, field_validator

from sluice.connectors.base import Connector, ConnectorConfig
from sluice.connectors.models import (
    Checkpoint,
    ConnectorOutput,
    Document,
    DocumentFailure,
    Section,
)
from sluice.connectors.robots import (
    ALLOW_ALL,
    MAX_ROBOTS_BYTES,
    RobotsRules,
    parse_robots,
    robots_url,
)
from sluice.connectors.web_frontier import (
    DbFrontier,
    Frontier,
    LegacyCursor,
    MemoryFrontier,
    PassCursor,
    parse_cursor,
)
from sluice.errors import ConnectorConfigError, SluiceError

log = structlog.get_logger(__name__)

USER_AGENT = "Sluice/0.1 (web connector)"
PRODUCT_TOKEN = USER_AGENT.split("/", 1)[0]
"""What robots.txt ``User-agent`` lines name to address this crawler: ``Sluice``."""
MAX_PAGE_BYTES = 10 * 1024 * 1024
"""Pages larger than this are reported as failures rather than held in memory."""

MAX_URL_LENGTH = 2000
"""Longer URLs are ignored: they could not be document IDs (``Document.id`` max length)."""
_HTML_TYPES = ("text/html", "application/xhtml+xml")
_DEFAULT_PORTS = {"http": 80, "https": 443}


class WebFetchError(SluiceError):
    """The crawl's root (robots.txt, start page or sitemap) could not be fetched; retryable.

    ``list_ids`` raises it rather than return an empty list (pruning would delete every
    page); ``load`` raises it only when robots.txt is unreachable.
    """


# --------------------------------------------------------------------------- HTML to text

_SKIP_TAGS = frozenset({"script", "style", "noscript", "template", "svg", "iframe", "object"})
_HEADING_TAGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
_BLOCK_TAGS = frozenset(
    {
        "address", "article", "aside", "blockquote", "br", "dd", "div", "dl", "dt",
        "fieldset", "figcaption", "figure", "footer", "form", "header", "hr", "li", "main",
        "nav", "ol", "p", "pre", "section", "table", "td", "th", "tr", "ul",
    }
)  # fmt: skip


@dataclass
class HtmlSection:
    """Text between two headings; ``anchor`` is the heading's ``id`` attribute, if any."""

    text: str
    anchor: str | None = None


@dataclass
class HtmlPage:
    """What a page contributes: its title, text split at headings, and raw link targets."""

    title: str | None
    sections: list[HtmlSection]
    links: list[str] = field(default_factory=list)
    base_href: str | None = None
    first_h1: str | None = None


class _HtmlTextParser(HTMLParser):
    """Collects visible text (minus scripts/styles), the title, headings and ``<a href>``."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.title_parts: list[str] = []
        self.h1_parts: list[str] = []
        self.links: list[str] = []
        self.base_href: str | None = None
        self.sections: list[tuple[str | None, list[str]]] = [(None, [])]
        self._skip = 0
        self._in_title = False
        self._in_first_h1 = False
        self._seen_h1 = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP_TAGS:
            self._skip += 1
            return
        if self._skip:
            return
        if tag == "title":
            self._in_title = True
        elif tag == "a":
            href = dict(attrs).get("href")
            if href:
                self.links.append(href)
        elif tag == "base" and self.base_href is None:
            self.base_href = dict(attrs).get("href") or None
        elif tag in _HEADING_TAGS:
            anchor = dict(attrs).get("id") or None
            _, parts = self.sections[-1]
            if "".join(parts).strip():
                self.sections.append((anchor, []))
            else:
                self.sections[-1] = (anchor, parts)
            if tag == "h1" and not self._seen_h1:
                self._in_first_h1 = True
            self.sections[-1][1].append("\n")
        elif tag in _BLOCK_TAGS:
            self.sections[-1][1].append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self._skip = max(0, self._skip - 1)
            return
        if self._skip:
            return
        if tag == "title":
            self._in_title = False
        elif tag in _HEADING_TAGS:
            if tag == "h1" and self._in_first_h1:
                self._in_first_h1 = False
                self._seen_h1 = True
            self.sections[-1][1].append("\n")
        elif tag in _BLOCK_TAGS:
            self.sections[-1][1].append("\n")

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        if self._in_title:
            self.title_parts.append(data)
            return
        if self._in_first_h1:
            self.h1_parts.append(data)
        self.sections[-1][1].append(data)


def _tidy(text: str) -> str:
    """Collapse whitespace inside lines and drop blank lines."""
    lines = (" ".join(line.split()) for line in text.split("\n"))
    return "\n".join(line for line in lines if line)


def parse_html(html: str) -> HtmlPage:
    """Strip HTML to text, split at headings; always returns at least one section."""
    parser = _HtmlTextParser()
    parser.feed(html)
    parser.close()
    sections = [
        HtmlSection(text=text, anchor=anchor)
        for anchor, parts in parser.sections
        if (text := _tidy("".join(parts)))
    ]
    return HtmlPage(
        title=_tidy(" ".join("".join(parser.title_parts).split())) or None,
        sections=sections or [HtmlSection(text="")],
        links=parser.links,
        base_href=parser.base_href,
        first_h1=_tidy(" ".join("".join(parser.h1_parts).split())) or None,
    )


# --------------------------------------------------------------------------- URLs


def normalize_url(url: str, base: str | None = None) -> str | None:
    """Canonical form used as document ID and for de-duplication; None if not usable.

    Lower-cases scheme and host, drops default ports, user info and the fragment, makes an
    empty path ``/`` and percent-encodes characters that are unsafe in a URL.
    """
    try:
        parts = urlsplit(urljoin(base, url.strip()) if base else url.strip())
        scheme = parts.scheme.lower()
        host = parts.hostname
        port = parts.port
    except ValueError:
        return None
    if scheme not in _DEFAULT_PORTS or not host:
        return None
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        netloc = f"{netloc}:{port}"
    path = quote(parts.path or "/", safe="/%:@!$&'()*+,;=-._~")
    query = quote(parts.query, safe="/?%:@!$&'()*+,;=-._~")
    normalised = urlunsplit((scheme, netloc, path, query, ""))
    return normalised if len(normalised) <= MAX_URL_LENGTH else None


def _netloc(url: str) -> str:
    return urlsplit(url).netloc


# --------------------------------------------------------------------------- config


class WebConfig(ConnectorConfig):
    """Where to crawl and how much; the start URL's host bounds the crawl."""

    start_url: str = Field(description="http(s) URL of the first page, or of sitemap.xml.")
    max_pages: int = Field(default=100, ge=1, le=100_000)
    sitemap: bool = Field(default=False, description="start_url is a sitemap; crawl its <loc>s.")
    timeout_seconds: float = Field(default=10.0, gt=0, le=600, allow_inf_nan=False)
    respect_robots_txt: bool = Field(
        default=True,
        description="Honour the host's robots.txt. Turn off only for a site you run "
        "(say, an intranet whose robots.txt keeps every crawler out).",
    )

    @field_validator("start_url")
    @classmethod
    def _check_start_url(cls, value: str) -> str:
        normalised = normalize_url(value)
        if normalised is None:
            raise ValueError("must be an http:// or https:// URL with a host")
        return normalised


# --------------------------------------------------------------------------- fetching


@dataclass
class _Fetched:
    """One fetch's outcome: exactly one of page/failure is set, or neither (skipped)."""

    url: str
    page: HtmlPage | None = None
    failure: str | None = None
    transient: bool = False
    status: int | None = None
    """The HTTP status of a response that failed (4xx/5xx)."""
    last_modified: datetime | None = None
    body: bytes | None = None
    """Raw body, only for non-page fetches (the sitemap, robots.txt)."""


class _OffHostRedirect(Exception):
    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.url = url


class _Disallowed(Exception):
    """A redirect within the host led to a URL robots.txt disallows."""


# --------------------------------------------------------------------------- connector


class WebConnector(Connector[WebConfig]):
    """Crawls one host breadth-first (or a sitemap's pages) with a resumable frontier.

    Checkpoint cursor: ``{"pass": crawl pass ID, "position": URLs consumed}``; the queue
    and seen-set are rows of that pass in Postgres (see ``web_frontier``). Every URL taken
    from the queue (documents, failures, skipped non-HTML responses, URLs robots.txt
    disallows) counts towards ``max_pages``, which bounds work, not just output.
    """

    source: ClassVar[str] = "web"
    config_model: ClassVar[type[ConnectorConfig]] = WebConfig

    @property
    def _start(self) -> str:
        return self.config.start_url

    def validate_source(self) -> None:
        if normalize_url(self._start) is None:
            raise ConnectorConfigError(
                f"connector config field 'start_url': {self._start!r} is not an http(s) URL "
                "with a host"
            )

    def _auth_headers(self) -> dict[str, str]:
        """From the cc-pair's credential: ``{"bearer_token": ...}`` or ``{"headers": {...}}``."""
        secret = self.context.credential or {}
        headers = {str(k): str(v) for k, v in (secret.get("headers") or {}).items()}
        if secret.get("bearer_token"):
            headers["Authorization"] = f"Bearer {secret['bearer_token']}"
        return headers

    def _client(
        self, robots: RobotsRules | None = None, *, any_host: bool = False
    ) -> httpx.AsyncClient:
        host = _netloc(self._start)

        async def guard(request: httpx.Request) -> None:
            if any_host:  # robots.txt: redirects may cross hosts (RFC 9309)
                return
            # Redirects are followed by httpx; refuse to leave the host, even for one hop,
            # and to follow one to a URL robots.txt disallows.
            target = normalize_url(str(request.url))
            if target is None or _netloc(target) != host:
                raise _OffHostRedirect(str(request.url))
            if robots is not None and not robots.allowed(target):
                raise _Disallowed(target)

        headers = {"User-Agent": USER_AGENT}
        if not any_host:  # the credential goes to the site's own host only
            headers.update(self._auth_headers())
        return httpx.AsyncClient(
            timeout=httpx.Timeout(self.config.timeout_seconds),
            follow_redirects=True,
            headers=headers,
            event_hooks={"request": [guard]},
        )

    async def _fetch(self, client: httpx.AsyncClient, url: str, *, html_only: bool) -> _Fetched:
        """GET ``url``; failures are values, not exceptions, so the crawl carries on."""
        timeout = self.config.timeout_seconds

        async def get() -> _Fetched:
            async with client.stream("GET", url) as response:
                return await self._read(response, url, html_only=html_only)

        try:
            async with asyncio.timeout(timeout * 3):  # total bound: slow-drip bodies too
                # Bounded by the timeout above, so staying alive cannot hide a hang.
                return await self.context.alive_while(get())
        except _OffHostRedirect as exc:
            return _Fetched(url, failure=f"redirected off-host to {exc.url}; not followed")
        except _Disallowed:
            return _Fetched(url)  # skipped, like the URL itself being disallowed
        except (httpx.TimeoutException, TimeoutError):
            return _Fetched(url, failure=f"timed out after {timeout:g}s", transient=True)
        except httpx.TooManyRedirects:
            return _Fetched(url, failure="too many redirects")
        except httpx.HTTPError as exc:
            return _Fetched(url, failure=f"{type(exc).__name__}: {exc}", transient=True)

    async def _read(self, response: httpx.Response, url: str, *, html_only: bool) -> _Fetched:
        if response.status_code >= 400:
            return _Fetched(
                url,
                failure=f"HTTP {response.status_code} {response.reason_phrase}".strip(),
                transient=response.status_code >= 500 or response.status_code == 429,
                status=response.status_code,
            )
        final = normalize_url(str(response.url)) or url
        content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if html_only and content_type and content_type not in _HTML_TYPES:
            return _Fetched(final)  # skipped: not a page we can index
        body = bytearray()
        async for chunk in response.aiter_bytes():
            body.extend(chunk)
            if len(body) > MAX_PAGE_BYTES:
                return _Fetched(final, failure=f"larger than {MAX_PAGE_BYTES} bytes")
        if not html_only:
            return _Fetched(final, body=bytes(body))
        try:
            text = bytes(body).decode(response.charset_encoding or "utf-8", errors="replace")
        except LookupError:  # unknown charset name in the Content-Type header
            text = bytes(body).decode("utf-8", errors="replace")
        try:
            page = parse_html(text.replace("\x00", ""))
        except Exception as exc:  # html.parser can still assert on pathological input
            return _Fetched(final, failure=f"could not parse HTML: {exc}")
        return _Fetched(final, page=page, last_modified=_last_modified(response))

    async def _robots(self) -> RobotsRules:
        """The host's robots.txt rules for this crawler, read once per load or listing.

        RFC 9309: a 4xx answer (no robots.txt) allows everything; an unreachable one (5xx,
        429, a timeout, a network error) means "disallow everything", so the run stops
        with the retryable ``WebFetchError`` and is retried later, fetching nothing.
        """
        if not self.config.respect_robots_txt:
            return ALLOW_ALL
        url = robots_url(self._start)
        async with self._client(any_host=True) as client:
            fetched = await self._fetch(client, url, html_only=False)
        if fetched.body is not None:
            text = fetched.body[:MAX_ROBOTS_BYTES].decode("utf-8-sig", errors="replace")
            return parse_robots(text, PRODUCT_TOKEN)
        status = fetched.status
        if status is not None and 400 <= status < 500 and status != 429:
            return ALLOW_ALL
        raise WebFetchError(
            f"robots.txt {url} is unreachable ({fetched.failure}); nothing is crawled until "
            "it can be read"
        )

    async def _sitemap_urls(
        self, client: httpx.AsyncClient, robots: RobotsRules
    ) -> list[str] | str:
        """Page URLs from the sitemap (one level of sitemap index), or an error message.

        URLs robots.txt disallows are left out, so they take no room under ``max_pages``.
        """
        host = _netloc(self._start)
        if not robots.allowed(self._start):
            return f"sitemap {self._start} is disallowed by robots.txt for {PRODUCT_TOKEN}"
        pending: list[str] = [self._start]
        pages: list[str] = []
        fetched = 0
        while pending and fetched < 50:
            sitemap_url = pending.pop(0)
            fetched += 1
            result = await self._fetch(client, sitemap_url, html_only=False)
            if result.body is None:
                if sitemap_url == self._start:
                    return f"sitemap: {result.failure or 'no content'}"
                continue
            try:
                root = ElementTree.fromstring(result.body)
            except ElementTree.ParseError as exc:
                if sitemap_url == self._start:
                    return f"sitemap is not valid XML: {exc}"
                continue
            is_index = root.tag.rsplit("}", 1)[-1] == "sitemapindex"
            for element in root.iter():
                if element.tag.rsplit("}", 1)[-1] != "loc" or not element.text:
                    continue
                url = normalize_url(element.text)
                if url is None or _netloc(url) != host or not robots.allowed(url):
                    continue
                if is_index and sitemap_url == self._start:
                    pending.append(url)
                elif url not in pages:
                    pages.append(url)
        return pages[: self.config.max_pages]

    async def _seeds(self, client: httpx.AsyncClient, robots: RobotsRules) -> list[str] | str:
        """Where a new pass starts: the start page or the sitemap's pages; or an error."""
        if self.config.sitemap:
            return await self._sitemap_urls(client, robots)
        if not robots.allowed(self._start):
            return f"start_url {self._start} is disallowed by robots.txt for {PRODUCT_TOKEN}"
        return [self._start]

    def _document(self, fetched: _Fetched) -> Document:
        assert fetched.page is not None
        page, url = fetched.page, fetched.url
        return Document(
            id=url,
            source=self.source,
            semantic_identifier=page.title or page.first_h1 or url,
            link=url,
            sections=[
                Section(text=s.text, link=f"{url}#{s.anchor}" if s.anchor else url)
                for s in page.sections
            ],
            metadata={"url": url, "host": _netloc(url)},
            acl=["public"],
            updated_at=fetched.last_modified,
        )

    def _links(self, fetched: _Fetched, robots: RobotsRules) -> list[str]:
        """Same-host links of a fetched page that robots.txt allows (crawl mode only)."""
        if fetched.page is None or self.config.sitemap:
            return []
        host = _netloc(self._start)
        base = fetched.url
        if fetched.page.base_href:
            base = normalize_url(fetched.page.base_href, fetched.url) or base
        links: list[str] = []
        for href in fetched.page.links:
            link = normalize_url(href, base)
            if link is not None and _netloc(link) == host and robots.allowed(link):
                links.append(link)
        return links

    async def _crawl(
        self, client: httpx.AsyncClient, frontier: Frontier, robots: RobotsRules
    ) -> AsyncIterator[_Fetched]:
        """Fetch the frontier in order, growing it with same-host links (crawl mode only).

        One step per queued URL: take it (``frontier.position`` moves past it), fetch it
        unless robots.txt disallows it, record what it found, then yield it. The frontier's
        writes for a step are committed before the step is yielded.
        """
        limit = self.config.max_pages
        while frontier.position < limit:
            item = await frontier.next()
            if item is None or item[0] >= limit:
                break
            seq, url = item
            frontier.position = seq + 1
            if not robots.allowed(url):
                continue  # skipped: never requested, not a failure
            fetched = await self._fetch(client, url, html_only=True)
            redirect = fetched.url if fetched.url != url else None
            if not await frontier.record(seq, redirect, self._links(fetched, robots), limit):
                continue  # redirected to a page that is (or will be) crawled under its URL
            yield fetched

    async def _open_frontier(
        self, client: httpx.AsyncClient, robots: RobotsRules, checkpoint: Checkpoint
    ) -> DbFrontier | str:
        """The pass the checkpoint is in, or a new one; an error message if it cannot start."""
        tenant_id, cc_pair_id = self.context.tenant_id, self.context.cc_pair_id
        cursor = parse_cursor(checkpoint.cursor)
        if isinstance(cursor, LegacyCursor):
            return await DbFrontier.from_legacy(tenant_id, cc_pair_id, cursor)
        if isinstance(cursor, PassCursor):
            frontier = await DbFrontier.resume(tenant_id, cc_pair_id, cursor)
            if frontier is not None:
                return frontier
            log.warning(
                "web crawl pass is gone; starting a new pass",
                cc_pair_id=cc_pair_id,
                crawl_pass=cursor.pass_id,
            )
        seeds = await self._seeds(client, robots)
        if isinstance(seeds, str):
            return seeds
        return await DbFrontier.start(tenant_id, cc_pair_id, seeds)

    async def load(self, checkpoint: Checkpoint) -> AsyncIterator[ConnectorOutput]:
        """Yield pages; each item is held back until the next is known so the last has done."""
        since = checkpoint.since
        robots = await self._robots()
        async with self._client(robots) as client:
            frontier = await self._open_frontier(client, robots, checkpoint)
            if isinstance(frontier, str):  # the sitemap or start page cannot be crawled
                failure = DocumentFailure(document_link=self._start, message=frontier)
                yield ConnectorOutput(
                    kind="failure",
                    failure=failure,
                    checkpoint=Checkpoint(cursor=None, since=since, done=True),
                )
                return
            pending: ConnectorOutput | None = None
            async for fetched in self._crawl(client, frontier, robots):
                if fetched.page is None and fetched.failure is None:
                    continue
                after = Checkpoint(cursor=frontier.cursor(), since=since)
                if fetched.failure is not None:
                    output = ConnectorOutput(
                        kind="failure",
                        failure=DocumentFailure(
                            document_id=fetched.url,
                            document_link=fetched.url,
                            message=fetched.failure,
                        ),
                        checkpoint=after,
                    )
                else:
                    output = ConnectorOutput(
                        kind="document", document=self._document(fetched), checkpoint=after
                    )
                if pending is not None:
                    yield pending
                pending = output
            if pending is not None:
                pending.checkpoint = Checkpoint(cursor=frontier.cursor(), since=since, done=True)
                yield pending

    async def list_ids(self) -> AsyncIterator[str]:
        """Sitemap: its URLs. Crawl: pages found, including transiently failing ones.

        Pages that fail transiently (timeouts, 5xx) are still listed, so a flaky server
        does not get its documents pruned; 4xx pages are gone and are not listed, nor are
        pages robots.txt disallows (they are never fetched). The frontier stays in memory:
        a listing is never resumed.
        """
        robots = await self._robots()
        async with self._client(robots) as client:
            seeds = await self._seeds(client, robots)
            if isinstance(seeds, str):
                raise WebFetchError(seeds)
            if self.config.sitemap:
                for url in seeds:
                    yield url
                return
            first = True
            async for fetched in self._crawl(client, MemoryFrontier(seeds), robots):
                if first and fetched.failure is not None:
                    raise WebFetchError(f"start page {self._start}: {fetched.failure}")
                first = False
                if fetched.page is not None or fetched.transient:
                    yield fetched.url


def _last_modified(response: httpx.Response) -> datetime | None:
    value = response.headers.get("last-modified")
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
