"""The web crawl frontier lives in Postgres, the checkpoint stays small, robots.txt rules.

A synthetic site is served from a thread on 127.0.0.1: page ``/p/N`` links to ``/p/2N``
and ``/p/2N+1`` (up to 100,000 pages), so a breadth-first crawl from ``/p/1`` visits the
pages in numeric order and its frontier grows by one URL per page; ``/hub`` links to all
of them at once. Crawls run the connector's ``load()`` directly (no Temporal) against the
test tenant's real Postgres, and simulate what the fetch activity does on a retry: stop
mid-crawl and resume from a checkpoint older than the frontier's latest state.
"""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from pydantic import JsonValue

from sluice.ccpairs import create_cc_pair, delete_cc_pair_rows
from sluice.connectors.base import ConnectorContext
from sluice.connectors.models import Checkpoint, ConnectorOutput
from sluice.connectors.robots import parse_robots, robots_url
from sluice.connectors.web import PRODUCT_TOKEN, WebConfig, WebConnector, WebFetchError
from sluice.errors import ConnectorConfigError
from tests.support import fetch, fetchval

PAGES = 100_000
CRAWLED = 2000
"""Pages the large crawl fetches before it stops (about 6 ms each here)."""
SMALL_CHECKPOINT = 200
"""Bytes a web checkpoint may take as JSON, whatever the crawl's size."""


# --------------------------------------------------------------------------- the site


@dataclass
class Site:
    base: str
    requests: list[str]
    robots: dict[str, object] = field(default_factory=lambda: {"status": 404, "body": ""})

    def requested(self, prefix: str) -> list[str]:
        return [path for path in self.requests if path.startswith(prefix)]


def _html(title: str, links: list[str]) -> bytes:
    anchors = "".join(f'<a href="{href}">x</a>' for href in links)
    return f"<html><head><title>{title}</title></head><body>{anchors}</body></html>".encode()


def _tree_links(n: int) -> list[str]:
    """Children in the tree, plus detours: a redirect to a page reachable no other way,
    a 404, a PDF (skipped) and a path robots.txt may disallow."""
    links = [f"/p/{child}" for child in (2 * n, 2 * n + 1) if child <= PAGES]
    if n % 5 == 0:
        links.append(f"/r/{n}")  # 302 -> /x/n
    if n % 13 == 0:
        links.append(f"/gone/{n}")
    if n % 17 == 0:
        links.append(f"/f/{n}.pdf")
    if n % 3 == 0:
        links.append(f"/private/{n}")
    links.append("/p/1")  # already seen: every page links home
    return links


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: thousands of requests stay cheap
    disable_nagle_algorithm = True  # headers and body go out as two writes
    site: Site

    def log_message(self, format: str, *args: object) -> None:
        pass

    def handle(self) -> None:
        try:
            super().handle()
        except ConnectionError:  # the crawler dropped a kept-alive connection: fine
            pass

    def _send(self, status: int, body: bytes, content_type: str = "text/html", **headers: str):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self.site.requests.append(self.path)
        path = self.path
        parts = path.strip("/").split("/")
        number = int(parts[1]) if len(parts) == 2 and parts[1].isdigit() else None
        if path == "/robots.txt":
            robots = self.site.robots
            self._send(int(str(robots["status"])), str(robots["body"]).encode(), "text/plain")
        elif path == "/hub":
            self._send(200, _html("Hub", [f"/p/{n}" for n in range(1, PAGES + 1)]))
        elif parts[0] == "p" and number is not None and 1 <= number <= PAGES:
            self._send(200, _html(f"Page {number}", _tree_links(number)))
        elif parts[0] == "t" and number is not None and 1 <= number <= PAGES:  # no detours
            children = [f"/t/{c}" for c in (2 * number, 2 * number + 1) if c <= PAGES]
            self._send(200, _html(f"Tree {number}", [*children, "/t/1"]))
        elif parts[0] == "r" and number is not None:
            self._send(302, b"", Location=f"/x/{number}")
        elif parts[0] == "x" and number is not None:
            self._send(200, _html(f"Redirected {number}", ["/p/1"]))
        elif parts[0] == "f":
            self._send(200, b"%PDF-1.4", "application/pdf")
        elif parts[0] == "private" or path in ("/", "/public", "/private-ish"):
            self._send(200, _html(path, []))
        elif path == "/robots-home":
            links = ["/private/a", "/private/open/b", "/f/x.pdf", "/f/x.pdf?download=1"]
            self._send(200, _html("Robots home", [*links, "/public", "/hop", "/private-ish"]))
        elif path == "/hop":
            self._send(301, b"", Location="/private/hop-target")
        else:
            self._send(404, b"not found")


@pytest.fixture
def site(monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    state = Site(base="", requests=[])
    server = ThreadingHTTPServer(("127.0.0.1", 0), type("H", (_Handler,), {"site": state}))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.base = f"http://127.0.0.1:{server.server_port}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


async def web(tenant_id: str, start_url: str, **overrides: object) -> WebConnector:
    config = {"start_url": start_url, **overrides}
    name = f"web-{uuid.uuid4().hex[:8]}"  # connector names are unique per tenant
    pair = await create_cc_pair(tenant_id, name=name, source="web", config=config)
    return WebConnector(WebConfig.model_validate(config), ConnectorContext(tenant_id, pair.id))


def key(output: ConnectorOutput) -> str:
    """What an item emits: the document ID, or the failing URL."""
    if output.document is not None:
        return output.document.id
    assert output.failure is not None and output.failure.document_link is not None
    return f"failed:{output.failure.document_link}"


def size(checkpoint: Checkpoint) -> int:
    """Bytes as JSON, as pydantic puts it into workflow history and heartbeats."""
    return len(checkpoint.model_dump_json().encode())


async def take(connector: WebConnector, checkpoint: Checkpoint, n: int) -> list[ConnectorOutput]:
    """The first ``n`` items from ``checkpoint``; the generator is then dropped, as the fetch
    activity drops it after its last batch (the frontier has already moved on)."""
    items: list[ConnectorOutput] = []
    stream = connector.load(checkpoint)
    assert isinstance(stream, AsyncIterator)
    async for output in stream:
        items.append(output)
        if len(items) == n:
            break
    await stream.aclose()  # type: ignore[attr-defined]
    return items


async def everything(connector: WebConnector, checkpoint: Checkpoint) -> list[ConnectorOutput]:
    return [output async for output in connector.load(checkpoint)]


def cursor(output: ConnectorOutput) -> dict[str, JsonValue]:
    value = output.checkpoint.cursor
    assert isinstance(value, dict)
    return value


def replayed(output: ConnectorOutput) -> Checkpoint:
    """The checkpoint as it comes back from workflow history."""
    return Checkpoint.model_validate_json(output.checkpoint.model_dump_json())


# --------------------------------------------------------------------------- size


async def test_large_crawl_checkpoint_stays_small_at_every_step(site: Site, tenant: str) -> None:
    """Thousands of pages into a 100,000-page crawl, the checkpoint has not grown."""
    connector = await web(tenant, f"{site.base}/t/1", max_pages=PAGES)
    sizes: list[int] = []
    async for output in connector.load(Checkpoint()):
        assert output.document is not None
        assert output.document.id == f"{site.base}/t/{len(sizes) + 1}"  # breadth-first
        sizes.append(size(output.checkpoint))
        if len(sizes) == CRAWLED:
            break
    assert max(sizes) <= SMALL_CHECKPOINT, max(sizes)
    assert sizes[-1] - sizes[0] <= 4  # only the position's digits grew
    # the frontier is in the table: every page fetched, and the next level queued behind
    queued = await fetchval(
        tenant,
        "SELECT count(*) FROM web_frontier WHERE cc_pair_id = $1 AND seq IS NOT NULL",
        connector.context.cc_pair_id,
    )
    assert queued >= 2 * CRAWLED


async def test_checkpoint_with_100k_unfetched_urls_is_under_64kb(site: Site, tenant: str) -> None:
    connector = await web(tenant, f"{site.base}/hub", max_pages=PAGES)
    [hub] = await take(connector, Checkpoint(), 1)
    assert hub.document is not None and hub.document.id == f"{site.base}/hub"
    cc_pair_id = connector.context.cc_pair_id
    rows = await fetch(
        tenant,
        "SELECT url FROM web_frontier WHERE cc_pair_id = $1 AND seq >= 1 ORDER BY seq",
        cc_pair_id,
    )
    assert len(rows) == PAGES - 1  # discovered, not fetched; max_pages caps the queue
    assert size(hub.checkpoint) < 64 * 1024
    assert size(hub.checkpoint) <= SMALL_CHECKPOINT
    # what the cursor used to carry for this frontier: over Temporal's 2 MB payload limit
    legacy = {"queue": [r["url"] for r in rows], "seen": [r["url"] for r in rows], "emitted": 1}
    assert len(json.dumps(legacy)) > 2 * 1024 * 1024


# --------------------------------------------------------------------------- resume


async def test_resume_from_older_checkpoints_gives_exactly_the_uninterrupted_crawl(
    site: Site, tenant: str
) -> None:
    config = {"max_pages": 400}
    full = await everything(await web(tenant, f"{site.base}/p/1", **config), Checkpoint())
    keys = [key(o) for o in full]
    assert len(keys) == len(set(keys)) > 300
    assert any("/x/" in k for k in keys) and any(k.startswith("failed:") for k in keys)
    assert [o.checkpoint.done for o in full].count(True) == 1 and full[-1].checkpoint.done

    # The same crawl, cut three times; each resume starts from a checkpoint OLDER than
    # what the frontier table already holds (a retry from the last heartbeat, or a new
    # attempt from the workflow's checkpoint, while the connector had got further).
    connector = await web(tenant, f"{site.base}/p/1", **config)
    first = await take(connector, Checkpoint(), 150)
    second = await take(connector, replayed(first[59]), 170)  # 90 items already seen again
    third = await take(connector, replayed(second[99]), 40)  # again, 70 items back
    last = await everything(connector, replayed(third[29]))
    resumed = [*first[:60], *second[:100], *third[:30], *last]
    assert [key(o) for o in resumed] == keys  # nothing lost, nothing twice, same order
    assert [o.checkpoint.done for o in resumed] == [o.checkpoint.done for o in full]
    assert max(size(o.checkpoint) for o in resumed) <= SMALL_CHECKPOINT
    # replaying added nothing: every URL is queued once, positions are dense
    cc_pair_id = connector.context.cc_pair_id
    seqs = await fetch(
        tenant,
        "SELECT seq FROM web_frontier WHERE cc_pair_id = $1 AND seq IS NOT NULL ORDER BY seq",
        cc_pair_id,
    )
    assert [r["seq"] for r in seqs] == list(range(400))


async def test_two_overlapping_tries_share_one_frontier(site: Site, tenant: str) -> None:
    """A zombie try still running next to its retry: neither corrupts the frontier."""
    connector = await web(tenant, f"{site.base}/p/1", max_pages=120)
    full = await everything(await web(tenant, f"{site.base}/p/1", max_pages=120), Checkpoint())
    start = replayed((await take(connector, Checkpoint(), 10))[4])
    a, b = await asyncio.gather(everything(connector, start), everything(connector, start))
    assert [key(o) for o in a] == [key(o) for o in b] == [key(o) for o in full[5:]]
    urls = await fetch(
        tenant,
        "SELECT count(*) AS n, count(DISTINCT seq) AS seqs, max(seq) AS top FROM web_frontier "
        "WHERE cc_pair_id = $1 AND seq IS NOT NULL",
        connector.context.cc_pair_id,
    )
    assert (urls[0]["n"], urls[0]["seqs"], urls[0]["top"]) == (120, 120, 119)


async def test_max_pages_and_since_survive_a_resume(site: Site, tenant: str) -> None:
    connector = await web(tenant, f"{site.base}/p/1", max_pages=30)
    first = await take(connector, Checkpoint(since=1234.5), 8)
    rest = await everything(connector, replayed(first[-1]))
    assert {o.checkpoint.since for o in [*first, *rest]} == {1234.5}
    assert rest[-1].checkpoint.done
    assert cursor(rest[-1]) == {"pass": cursor(first[0])["pass"], "position": 30}
    taken = {p for p in site.requests if p != "/robots.txt" and not p.startswith("/x/")}
    assert len(taken) == 30  # every URL taken from the queue counts (not redirect hops)


async def test_old_format_cursor_is_converted_on_first_load(site: Site, tenant: str) -> None:
    base = site.base
    full = await everything(await web(tenant, f"{base}/p/1", max_pages=25), Checkpoint())
    # What a running workflow may still hold: the old connector's cursor after /p/1,
    # /p/2 and /p/3 (which links /private/3), with the whole frontier in it.
    queue = [f"{base}{path}" for path in ("/p/4", "/p/5", "/p/6", "/p/7", "/private/3")]
    seen = [f"{base}/p/{n}" for n in (1, 2, 3)] + queue
    old: dict[str, JsonValue] = {"queue": [*queue], "seen": [*seen], "emitted": 3}
    legacy = Checkpoint(cursor=old, since=99.0)
    connector = await web(tenant, f"{base}/p/1", max_pages=25)
    converted = await everything(connector, legacy)
    assert [key(o) for o in converted] == [key(o) for o in full[3:]]
    assert all(set(cursor(o)) == {"pass", "position"} for o in converted)
    assert all(o.checkpoint.since == 99.0 for o in converted)
    # converting again (a retry that never heartbeated) finds the same pass
    again = await take(connector, legacy, 3)
    assert [o.checkpoint.cursor for o in again] == [o.checkpoint.cursor for o in converted[:3]]


async def test_pass_lifecycle_and_bad_cursors(site: Site, tenant: str) -> None:
    connector = await web(tenant, f"{site.base}/p/1", max_pages=10)
    cc_pair_id = connector.context.cc_pair_id
    one = await everything(connector, Checkpoint())
    two = await everything(connector, Checkpoint())  # the next pass starts fresh ...
    assert [key(o) for o in one] == [key(o) for o in two]
    passes = await fetch(
        tenant, "SELECT pass_id FROM web_crawl_pass WHERE cc_pair_id = $1", cc_pair_id
    )
    assert [r["pass_id"] for r in passes] == [cursor(two[0])["pass"]]
    # ... and a cursor naming a pass that is gone starts a new one rather than failing
    gone = await everything(connector, Checkpoint(cursor={"pass": "gone", "position": 5}))
    assert [key(o) for o in gone] == [key(o) for o in one]
    bad_cursors: list[JsonValue] = [{"pass": "x"}, {"pass": 3, "position": 1}, {"queue": "x"}]
    bad_cursors += [[1], "x", {"pass": "p", "position": -1}]
    for bad in bad_cursors:
        with pytest.raises(ConnectorConfigError, match="malformed web checkpoint cursor"):
            await everything(connector, Checkpoint(cursor=bad))
    # deleting the cc-pair deletes its frontier
    await delete_cc_pair_rows(tenant, cc_pair_id)
    left = await fetchval(
        tenant, "SELECT count(*) FROM web_frontier WHERE cc_pair_id = $1", cc_pair_id
    )
    assert left == 0


# --------------------------------------------------------------------------- robots.txt

ROBOTS = """
# everyone else: stay out
User-agent: *
Disallow: /

User-agent: OtherBot
User-agent: sluice/2.0
Disallow: /private/
Allow: /private/open
Disallow: /*.pdf$
"""


async def test_robots_txt_disallowed_pages_are_never_requested(site: Site, tenant: str) -> None:
    site.robots = {"status": 200, "body": ROBOTS}
    outputs = await everything(await web(tenant, f"{site.base}/robots-home"), Checkpoint())
    base = site.base
    assert [key(o) for o in outputs] == [
        f"{base}/robots-home",
        f"{base}/private/open/b",  # Allow is longer than Disallow: /private/
        f"{base}/public",
        f"{base}/private-ish",  # /private/ does not match /private-ish
    ]
    assert site.requests[0] == "/robots.txt"
    assert site.requested("/private/") == ["/private/open/b"]  # not /private/a, nor the hop
    assert "/f/x.pdf" not in site.requests  # "$": only URLs ending in .pdf
    assert "/f/x.pdf?download=1" in site.requests  # fetched (and skipped: not HTML)
    assert "/hop" in site.requests  # requested, but its redirect target was not followed
    assert all(o.kind == "document" for o in outputs)  # disallowed is not a failure

    # the big crawl honours it too: /private/N links are never requested
    site.requests.clear()
    crawl = await everything(await web(tenant, f"{base}/p/1", max_pages=200), Checkpoint())
    assert len(crawl) > 100 and not site.requested("/private/")


async def test_robots_txt_missing_allows_all_and_unreachable_stops(site: Site, tenant: str) -> None:
    site.robots = {"status": 404, "body": ""}
    outputs = await everything(await web(tenant, f"{site.base}/robots-home"), Checkpoint())
    assert f"{site.base}/private/a" in [key(o) for o in outputs]

    site.robots = {"status": 503, "body": ""}
    site.requests.clear()
    connector = await web(tenant, f"{site.base}/robots-home")
    with pytest.raises(WebFetchError, match=r"robots.txt .* unreachable"):
        await everything(connector, Checkpoint())
    with pytest.raises(WebFetchError, match="unreachable"):
        [url async for url in connector.list_ids()]
    assert set(site.requests) == {"/robots.txt"}  # RFC 9309: unreachable = disallow all

    # a site you run may opt out; robots.txt is then not even read
    site.requests.clear()
    ignoring = await web(tenant, f"{site.base}/robots-home", respect_robots_txt=False)
    assert f"{site.base}/private/a" in [key(o) for o in await everything(ignoring, Checkpoint())]
    assert "/robots.txt" not in site.requests


async def test_robots_txt_disallowing_the_start_is_one_failure(site: Site, tenant: str) -> None:
    site.robots = {"status": 200, "body": "User-agent: *\nDisallow: /private/"}
    connector = await web(tenant, f"{site.base}/private/start")
    [output] = await everything(connector, Checkpoint())
    assert output.failure is not None and "disallowed by robots.txt" in output.failure.message
    assert output.checkpoint.done and "/private/start" not in site.requests
    with pytest.raises(WebFetchError, match="disallowed"):
        [url async for url in connector.list_ids()]


def test_robots_rules() -> None:
    rules = parse_robots(ROBOTS, PRODUCT_TOKEN)  # "Sluice": its own group, not "*"
    assert rules.allowed("http://h/anything") and rules.allowed("http://h/")
    assert not rules.allowed("http://h/private/x")
    assert rules.allowed("http://h/private/open/x")
    assert not rules.allowed("http://h/a/b.pdf") and rules.allowed("http://h/a/b.pdf?x")
    everyone = parse_robots(ROBOTS, "SomeoneElse")
    assert not everyone.allowed("http://h/x") and everyone.allowed("http://h/robots.txt")

    text = """
    User-agent: *
    Disallow: /a
    Allow: /a          # a tie: Allow wins
    Disallow: /b/*/c   # wildcard in the middle
    Disallow: /q?*sort=
    Disallow:          # empty: allows everything
    Disallow: /caf\u00e9
    user-agent: other
    disallow: /
    """
    lines = parse_robots("\n".join(line.strip() for line in text.splitlines()), "Sluice")
    assert lines.allowed("http://h/a")
    assert not lines.allowed("http://h/b/x/y/c") and lines.allowed("http://h/b/c")
    assert not lines.allowed("http://h/q?page=2&sort=asc") and lines.allowed("http://h/q?p=1")
    assert not lines.allowed("http://h/caf%C3%A9/menu")  # percent-encoded on both sides
    assert parse_robots("", "Sluice").allowed("http://h/x")
    assert parse_robots("Disallow: /\n", "Sluice").allowed("http://h/x")  # no group
    assert parse_robots("<html>soft 404</html>", "Sluice").allowed("http://h/x")
    assert robots_url("https://h.example:8443/a/b?c") == "https://h.example:8443/robots.txt"
