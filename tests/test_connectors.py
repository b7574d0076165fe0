"""Behaviour of the filesystem, web and synthetic connectors and the registry.

The web tests crawl a real stdlib HTTP server on 127.0.0.1; nothing leaves the machine
(off-host links point at ``example.invalid``, which the crawler must never request).
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from sluice.ccpairs import create_cc_pair
from sluice.connectors.base import Connector, ConnectorContext
from sluice.connectors.filesystem import FilesystemConfig, FilesystemConnector
from sluice.connectors.models import Checkpoint, ConnectorOutput
from sluice.connectors.registry import CONNECTORS, build_connector, validate_config
from sluice.connectors.synthetic import SyntheticConfig, SyntheticConnector
from sluice.connectors.web import (
    WebConfig,
    WebConnector,
    WebFetchError,
    normalize_url,
    parse_html,
)
from sluice.errors import ConnectorConfigError


async def collect(
    connector: Connector, checkpoint: Checkpoint | None = None
) -> list[ConnectorOutput]:
    return [item async for item in connector.load(checkpoint or Checkpoint())]


async def ids_of(iterator: AsyncIterator[str]) -> list[str]:
    return [item async for item in iterator]


def fid(root: Path, rel: str) -> str:
    """A filesystem document's ID: the resolved root folder, then the relative path."""
    return f"file://{os.path.realpath(root)}/{rel}"


def emitted_ids(outputs: list[ConnectorOutput]) -> list[str | None]:
    return [
        o.document.id if o.document is not None else o.failure.document_id if o.failure else None
        for o in outputs
    ]


def assert_done_only_at_end(outputs: list[ConnectorOutput]) -> None:
    assert outputs, "expected at least one item"
    assert [o.checkpoint.done for o in outputs] == [False] * (len(outputs) - 1) + [True]
    for output in outputs:  # checkpoints travel through workflow history as JSON
        restored = Checkpoint.model_validate_json(output.checkpoint.model_dump_json())
        assert restored == output.checkpoint


# --------------------------------------------------------------------------- filesystem


def write(root: Path, rel: str, content: str | bytes) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    write(tmp_path, "a.md", "# Alpha Title\n\nintro\n\n## Part two\n\nmore text\n")
    write(tmp_path, "b.txt", "plain text file\n")
    write(tmp_path, "b/c.txt", "nested file\n")
    write(
        tmp_path,
        "z.html",
        "<html><head><title>Zed Page</title><style>body{color:red}</style></head>"
        "<body><h1>Heading</h1><p>Hello &amp; welcome</p><script>var secret=1;</script>"
        "<h2 id='more'>More</h2><p>second part</p></body></html>",
    )
    write(tmp_path, "ignored.py", "print('not indexed')\n")
    write(tmp_path, ".git/config.txt", "excluded directory\n")
    write(tmp_path, "node_modules/pkg/readme.md", "# excluded\n")
    return tmp_path


def fs(path: Path, **overrides: object) -> FilesystemConnector:
    return FilesystemConnector(FilesystemConfig.model_validate({"path": str(path), **overrides}))


async def test_filesystem_sorted_order_and_done_flag(tree: Path) -> None:
    outputs = await collect(fs(tree))
    # plain string order of POSIX paths: "b.txt" < "b/c.txt" because "." < "/"
    assert emitted_ids(outputs) == [
        fid(tree, "a.md"),
        fid(tree, "b.txt"),
        fid(tree, "b/c.txt"),
        fid(tree, "z.html"),
    ]
    assert [o.checkpoint.cursor for o in outputs] == ["a.md", "b.txt", "b/c.txt", "z.html"]
    assert all(o.kind == "document" for o in outputs)
    assert_done_only_at_end(outputs)
    assert await ids_of(fs(tree).list_ids()) == emitted_ids(outputs)


async def test_filesystem_resume_from_cursor_yields_exactly_the_rest(tree: Path) -> None:
    full = await collect(fs(tree))
    rest = await collect(fs(tree), full[1].checkpoint)
    assert emitted_ids(rest) == emitted_ids(full[2:])
    assert rest[-1].checkpoint.done
    assert await collect(fs(tree), full[-1].checkpoint) == []


async def test_filesystem_incremental_since_uses_mtime_with_overlap(tree: Path) -> None:
    now = time.time()
    since = now + 3600  # every file was last changed (mtime and ctime) before this
    assert await collect(fs(tree), Checkpoint(since=since)) == []
    future = now + 7200
    os.utime(tree / "b.txt", (future, future))
    outputs = await collect(fs(tree), Checkpoint(since=since))
    assert emitted_ids(outputs) == [fid(tree, "b.txt")]
    assert outputs[0].checkpoint.since == since and outputs[0].checkpoint.done
    # the 60 s overlap: changed 30 s before `since` still counts
    os.utime(tree / "b.txt", (future - 30, future - 30))
    assert len(await collect(fs(tree), Checkpoint(since=future))) == 1


async def test_filesystem_titles_sections_and_metadata(tree: Path) -> None:
    write(tree, "doc.rst", "=====\nRST Doc\n=====\n\nintro\n\nUsage\n-----\n\nrun it\n")
    write(tree, "notitle.md", "no heading here\n\n```\n# not a heading (code)\n```\n")
    write(tree, "front.md", "---\ntitle: From Front Matter\n---\nbody only\n")
    docs = {o.document.id: o.document for o in await collect(fs(tree)) if o.document}

    md = docs[fid(tree, "a.md")]
    assert md.semantic_identifier == "Alpha Title"
    assert [s.text.splitlines()[0] for s in md.sections] == ["# Alpha Title", "## Part two"]
    assert md.metadata == {"path": "a.md", "extension": ".md"}
    assert md.link is not None and md.link.startswith("file://")
    assert md.updated_at is not None and md.updated_at.tzinfo is not None

    html = docs[fid(tree, "z.html")]
    assert html.semantic_identifier == "Zed Page"
    assert "Hello & welcome" in html.text
    assert "secret" not in html.text and "color" not in html.text
    assert [s.text for s in html.sections] == ["Heading\nHello & welcome", "More\nsecond part"]

    rst = docs[fid(tree, "doc.rst")]
    assert rst.semantic_identifier == "RST Doc"
    assert len(rst.sections) == 2 and rst.sections[1].text.startswith("Usage")

    assert docs[fid(tree, "notitle.md")].semantic_identifier == "notitle.md"
    assert len(docs[fid(tree, "notitle.md")].sections) == 1  # heading inside a code fence
    assert docs[fid(tree, "front.md")].semantic_identifier == "From Front Matter"
    assert docs[fid(tree, "b.txt")].semantic_identifier == "b.txt"
    assert docs[fid(tree, "b.txt")].sections[0].text == "plain text file"


async def test_filesystem_undecodable_file_is_a_failure_and_run_continues(tree: Path) -> None:
    write(tree, "bad.txt", b"caf\xe9 latin-1 bytes \xff\xfe")
    write(tree, "binary.md", "nul\x00byte")
    outputs = await collect(fs(tree))
    failures = {o.failure.document_id: o.failure for o in outputs if o.failure}
    assert set(failures) == {fid(tree, "bad.txt"), fid(tree, "binary.md")}
    assert "UTF-8" in failures[fid(tree, "bad.txt")].message
    assert failures[fid(tree, "bad.txt")].document_link is not None
    assert "NUL" in failures[fid(tree, "binary.md")].message
    assert sum(o.kind == "document" for o in outputs) == 4
    assert_done_only_at_end(outputs)


async def test_filesystem_utf8_bom_is_accepted(tmp_path: Path) -> None:
    write(tmp_path, "bom.md", "\ufeff# With BOM\n")
    [output] = await collect(fs(tmp_path))
    assert output.document is not None and output.document.semantic_identifier == "With BOM"


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read mode-000 files")
async def test_filesystem_unreadable_file_is_a_failure(tree: Path) -> None:
    locked = write(tree, "locked.txt", "secret")
    locked.chmod(0)
    try:
        outputs = await collect(fs(tree))
    finally:
        locked.chmod(0o644)
    [failure] = [o.failure for o in outputs if o.failure]
    assert failure.document_id == fid(tree, "locked.txt") and "cannot read" in failure.message


async def test_filesystem_acl_from_owner_group_and_world_bit(tmp_path: Path) -> None:
    import grp
    import pwd

    write(tmp_path, "open.txt", "x").chmod(0o644)
    write(tmp_path, "private.txt", "y").chmod(0o640)
    docs = {o.document.id: o.document for o in await collect(fs(tmp_path)) if o.document}
    owner = f"user:{pwd.getpwuid(os.getuid()).pw_name}"
    group = f"group:{grp.getgrgid(os.getgid()).gr_name}"
    assert docs[fid(tmp_path, "open.txt")].acl == [owner, group, "public"]
    assert docs[fid(tmp_path, "private.txt")].acl == [owner, group]


async def test_filesystem_extensions_and_exclude_config(tree: Path) -> None:
    connector = fs(tree, extensions=["TXT"], exclude=["b"])
    assert connector.config.extensions == [".txt"]
    # exclude replaces the defaults, so .git is walked again; "b" prunes the folder only
    assert await ids_of(connector.list_ids()) == [fid(tree, ".git/config.txt"), fid(tree, "b.txt")]
    connector = fs(tree, extensions=["md"], exclude=[])
    assert await ids_of(connector.list_ids()) == [
        fid(tree, "a.md"),
        fid(tree, "node_modules/pkg/readme.md"),
    ]


async def test_filesystem_empty_folder_yields_nothing(tmp_path: Path) -> None:
    assert await collect(fs(tmp_path)) == []


def test_filesystem_validate_source_names_path(tmp_path: Path) -> None:
    with pytest.raises(ConnectorConfigError, match=r"field 'path'.*does not exist"):
        fs(tmp_path / "missing").validate_source()
    write(tmp_path, "file.txt", "x")
    with pytest.raises(ConnectorConfigError, match=r"field 'path'.*not a directory"):
        fs(tmp_path / "file.txt").validate_source()
    fs(tmp_path).validate_source()


async def test_filesystem_rejects_malformed_cursor(tree: Path) -> None:
    with pytest.raises(ConnectorConfigError, match="cursor"):
        await collect(fs(tree), Checkpoint(cursor={"not": "a path"}))


# --------------------------------------------------------------------------- web


def _page(title: str, body: str, links: list[str]) -> bytes:
    anchors = "".join(f'<a href="{href}">{href}</a> ' for href in links)
    return (
        f"<html><head><title>{title}</title><script>var tracking = 1;</script></head>"
        f"<body>{body}<p>{anchors}</p></body></html>"
    ).encode()


class _Site(BaseHTTPRequestHandler):
    """A tiny site: linked pages, a 404, a PDF, redirects, a slow page and a sitemap."""

    requests: list[str]

    def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
        pass

    def _send(self, status: int, content_type: str, body: bytes, **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self.requests.append(self.path)
        base = f"http://{self.headers['Host']}"
        html = "text/html; charset=utf-8"
        path = self.path
        if path == "/":
            links = ["/a", "/b#frag", "/missing", "http://example.invalid/off", "/file.pdf"]
            links.append("mailto:someone@example.invalid")
            body = "<h1 id='top'>Welcome</h1><p>home text</p>"
            self._send(200, html, _page("Home", body, links))
        elif path == "/a":
            self._send(
                200,
                html,
                _page("Page A", "<p>alpha</p>", ["/", "/c"]),
                Last_Modified="Wed, 01 Jan 2025 00:00:00 GMT",
            )
        elif path == "/b":
            self._send(200, html, _page("Page B", "<p>beta</p>", ["/a", "/b"]))
        elif path == "/c":
            self._send(200, html, _page("Page C", "<p>gamma</p>", ["/redirect"]))
        elif path == "/redirect":
            self._send(301, html, b"", Location="/a")
        elif path == "/off-redirect":
            self._send(302, html, b"", Location="http://example.invalid/")
        elif path == "/latin1":
            self._send(200, "text/html; charset=iso-8859-1", b"<p>caf\xe9</p>")
        elif path == "/bogus-charset":
            self._send(200, "text/html; charset=no-such-codec", "<p>naïve</p>".encode())
        elif path == "/file.pdf":
            self._send(200, "application/pdf", b"%PDF-1.4")
        elif path == "/slowhome":
            self._send(200, html, _page("Slow home", "<p>s</p>", ["/slow", "/a"]))
        elif path == "/slow":
            time.sleep(1.5)
            self._send(200, html, _page("Slow", "<p>late</p>", []))
        elif path == "/sitemap.xml":
            locs = [f"{base}/a", f"{base}/c", "http://example.invalid/x", f"{base}/missing"]
            entries = "".join(f"<url><loc>{loc}</loc></url>" for loc in locs)
            xml = (
                '<?xml version="1.0" encoding="UTF-8"?>'
                f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{entries}</urlset>'
            )
            self._send(200, "application/xml", xml.encode())
        elif path == "/sitemap-index.xml":
            xml = (
                '<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
                f"<sitemap><loc>{base}/sitemap.xml</loc></sitemap></sitemapindex>"
            )
            self._send(200, "application/xml", xml.encode())
        else:
            self._send(404, html, b"<html><body>not found</body></html>")


@pytest.fixture
def site(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, list[str]]]:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    requests: list[str] = []
    handler = type("Site", (_Site,), {"requests": requests})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", requests
    finally:
        server.shutdown()
        server.server_close()


async def web(tenant_id: str, start_url: str, **overrides: object) -> WebConnector:
    """A web connector with its own cc-pair: its crawl frontier lives in the tenant's DB."""
    config = {"start_url": start_url, **overrides}
    name = f"web-{uuid.uuid4().hex[:8]}"  # connector names are unique per tenant
    pair = await create_cc_pair(tenant_id, name=name, source="web", config=config)
    return WebConnector(WebConfig.model_validate(config), ConnectorContext(tenant_id, pair.id))


async def test_web_crawl_breadth_first_same_host(site: tuple[str, list[str]], tenant: str) -> None:
    base, requests = site
    outputs = await collect(await web(tenant, base))
    assert emitted_ids(outputs) == [
        f"{base}/",
        f"{base}/a",
        f"{base}/b",
        f"{base}/missing",
        f"{base}/c",
    ]
    assert [o.kind for o in outputs] == ["document"] * 3 + ["failure", "document"]
    assert_done_only_at_end(outputs)
    # the PDF was fetched but skipped; /redirect -> /a was followed but not emitted twice;
    # robots.txt comes first (404 here: everything is allowed)
    assert requests == [
        "/robots.txt", "/", "/a", "/b", "/missing", "/file.pdf", "/c", "/redirect", "/a"
    ]  # fmt: skip
    final = outputs[-1].checkpoint.cursor
    assert isinstance(final, dict) and set(final) == {"pass", "position"}
    assert final["position"] == 7

    home = outputs[0].document
    assert home is not None
    assert home.semantic_identifier == "Home"
    assert "tracking" not in home.text and "home text" in home.text
    assert home.sections[0].link == f"{base}/#top"
    assert home.acl == ["public"]
    page_a = outputs[1].document
    assert page_a is not None and page_a.updated_at is not None
    assert page_a.updated_at.year == 2025

    failure = outputs[3].failure
    assert failure is not None
    assert failure.document_link == f"{base}/missing" and "404" in failure.message


async def test_web_max_pages_limits_fetches(site: tuple[str, list[str]], tenant: str) -> None:
    base, requests = site
    outputs = await collect(await web(tenant, base, max_pages=2))
    assert emitted_ids(outputs) == [f"{base}/", f"{base}/a"]
    assert_done_only_at_end(outputs)
    assert requests == ["/robots.txt", "/", "/a"]
    cursor = outputs[-1].checkpoint.cursor
    assert isinstance(cursor, dict) and cursor["position"] == 2


async def test_web_resume_from_mid_checkpoint(site: tuple[str, list[str]], tenant: str) -> None:
    base, requests = site
    connector = await web(tenant, base)
    full = await collect(connector)
    mid = Checkpoint.model_validate_json(full[1].checkpoint.model_dump_json())
    assert isinstance(mid.cursor, dict) and mid.cursor["position"] == 2
    requests.clear()
    rest = await collect(connector, mid)
    assert emitted_ids(rest) == emitted_ids(full[2:])
    assert rest[-1].checkpoint == full[-1].checkpoint
    assert requests[:2] == ["/robots.txt", "/b"]  # nothing before the checkpoint again


async def test_web_sitemap_mode(site: tuple[str, list[str]], tenant: str) -> None:
    base, requests = site
    connector = await web(tenant, f"{base}/sitemap.xml", sitemap=True)
    outputs = await collect(connector)
    assert emitted_ids(outputs) == [f"{base}/a", f"{base}/c", f"{base}/missing"]
    assert [o.kind for o in outputs] == ["document", "document", "failure"]
    assert_done_only_at_end(outputs)
    assert "/redirect" not in requests  # links are not followed in sitemap mode
    assert await ids_of(connector.list_ids()) == emitted_ids(outputs)
    nested = await collect(
        await web(tenant, f"{base}/sitemap-index.xml", sitemap=True, max_pages=1)
    )
    assert emitted_ids(nested) == [f"{base}/a"]


async def test_web_missing_sitemap_is_one_final_failure(
    site: tuple[str, list[str]], tenant: str
) -> None:
    base, _ = site
    [output] = await collect(await web(tenant, f"{base}/nope.xml", sitemap=True))
    assert output.kind == "failure" and output.checkpoint.done
    assert output.failure is not None and "404" in output.failure.message


async def test_web_timeout_and_off_host_redirect_are_failures(
    site: tuple[str, list[str]], tenant: str
) -> None:
    base, _ = site
    slow = await web(tenant, f"{base}/slowhome", timeout_seconds=0.3, max_pages=3)
    outputs = await collect(slow)
    assert emitted_ids(outputs) == [f"{base}/slowhome", f"{base}/slow", f"{base}/a"]
    assert outputs[1].failure is not None and "timed out" in outputs[1].failure.message
    [redirected] = await collect(await web(tenant, f"{base}/off-redirect"))
    assert redirected.failure is not None and "off-host" in redirected.failure.message


async def test_web_list_ids(site: tuple[str, list[str]], tenant: str) -> None:
    base, _ = site
    ids = await ids_of((await web(tenant, base)).list_ids())
    assert ids == [f"{base}/", f"{base}/a", f"{base}/b", f"{base}/c"]  # the 404 is gone
    with pytest.raises(WebFetchError):
        await ids_of((await web(tenant, f"{base}/missing")).list_ids())


def test_web_config_and_url_normalisation() -> None:
    assert WebConfig(start_url="HTTP://Example.COM:80").start_url == "http://example.com/"
    assert (
        normalize_url("../x y?q=1#frag", "https://h.example/a/b/")
        == "https://h.example/a/x%20y?q=1"
    )
    assert normalize_url("mailto:a@b.c") is None
    assert normalize_url("javascript:void(0)") is None
    with pytest.raises(ConnectorConfigError, match="field 'start_url'"):
        build_connector("web", {"start_url": "ftp://example.com/"})
    with pytest.raises(ConnectorConfigError, match="field 'start_url'"):
        build_connector("web", {"start_url": "http://"})
    with pytest.raises(ConnectorConfigError, match="field 'max_pages'"):
        build_connector("web", {"start_url": "http://example.com", "max_pages": 0})
    unchecked = WebConnector(WebConfig.model_construct(start_url="file:///etc/passwd"))
    with pytest.raises(ConnectorConfigError, match="field 'start_url'"):
        unchecked.validate_source()


# --------------------------------------------------------------------------- synthetic


def syn(attempt: int = 1, **config: object) -> SyntheticConnector:
    return SyntheticConnector(
        SyntheticConfig.model_validate(config), ConnectorContext(attempt=attempt)
    )


async def test_synthetic_is_deterministic_and_resumable() -> None:
    first = await collect(syn(count=10, size_bytes=500, seed=7))
    second = await collect(syn(count=10, size_bytes=500, seed=7))
    assert first == second
    assert emitted_ids(first) == [f"syn:7:{i}" for i in range(10)]
    assert [o.checkpoint.cursor for o in first] == list(range(1, 11))
    assert_done_only_at_end(first)
    rest = await collect(syn(count=10, size_bytes=500, seed=7), first[3].checkpoint)
    assert rest == first[4:]
    other_seed = await collect(syn(count=10, size_bytes=500, seed=8))
    assert first[0].document is not None and other_seed[0].document is not None
    assert first[0].document.text != other_seed[0].document.text


async def test_synthetic_document_shape() -> None:
    [output] = await collect(syn(count=1, size_bytes=2000))
    doc = output.document
    assert doc is not None
    assert 1500 <= len(doc.text) <= 2500
    assert len(doc.sections) >= 3
    assert doc.sections[0].text[0].isupper() and doc.sections[0].text.endswith(".")
    assert doc.updated_at is not None and doc.updated_at.isoformat() == "2026-01-01T00:00:00+00:00"
    [tiny] = await collect(syn(count=1, size_bytes=1))
    assert tiny.document is not None and tiny.document.text


async def test_synthetic_fail_every() -> None:
    outputs = await collect(syn(count=7, fail_every=3))
    assert [o.kind for o in outputs] == ["document", "document", "failure"] * 2 + ["document"]
    assert outputs[2].failure is not None and outputs[2].failure.document_id == "syn:0:2"
    assert_done_only_at_end(outputs)
    # failing documents still exist at the source: pruning must not delete them
    assert await ids_of(syn(count=7, fail_every=3).list_ids()) == [f"syn:0:{i}" for i in range(7)]


async def test_synthetic_duplicate_every() -> None:
    outputs = await collect(syn(count=7, duplicate_every=3))
    ids = emitted_ids(outputs)
    assert ids == ["syn:0:0", "syn:0:1", "syn:0:1", "syn:0:3", "syn:0:4", "syn:0:4", "syn:0:6"]
    assert outputs[1].document is not None and outputs[2].document is not None
    assert outputs[1].document.text != outputs[2].document.text
    assert await ids_of(syn(count=7, duplicate_every=3).list_ids()) == list(dict.fromkeys(ids))


async def test_synthetic_hang_only_on_early_attempts() -> None:
    got: list[ConnectorOutput] = []

    async def consume(connector: SyntheticConnector, checkpoint: Checkpoint) -> None:
        async for output in connector.load(checkpoint):
            got.append(output)

    with pytest.raises(TimeoutError):
        await asyncio.wait_for(consume(syn(count=5, hang_at=2), Checkpoint()), timeout=0.5)
    assert [o.checkpoint.cursor for o in got] == [1, 2]  # stuck before position 2

    resume_from = got[-1].checkpoint
    got.clear()
    await asyncio.wait_for(consume(syn(attempt=2, count=5, hang_at=2), resume_from), timeout=5)
    assert [o.checkpoint.cursor for o in got] == [3, 4, 5]
    assert got[-1].checkpoint.done

    got.clear()
    connector = syn(attempt=2, count=3, hang_at=1, hang_attempts=2)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(consume(connector, Checkpoint()), timeout=0.3)


async def test_synthetic_version_bump_changes_hash_and_updated_at() -> None:
    [v0] = await collect(syn(count=1))
    [v0_again] = await collect(syn(count=1))
    [v1] = await collect(syn(count=1, version=1))
    assert v0.document is not None and v0_again.document is not None and v1.document is not None
    assert v0.document.content_hash() == v0_again.document.content_hash()
    assert v0.document.content_hash() != v1.document.content_hash()
    assert v0.document.id == v1.document.id
    assert v1.document.updated_at is not None and v0.document.updated_at is not None
    assert (v1.document.updated_at - v0.document.updated_at).days == 1


async def test_synthetic_many_documents_with_delay_and_volume() -> None:
    outputs = await collect(syn(count=2000))
    assert len(outputs) == 2000 and len(set(emitted_ids(outputs))) == 2000
    assert outputs[-1].checkpoint.done
    delayed = await collect(syn(count=3, delay_ms=1))
    assert len(delayed) == 3
    assert await collect(syn(count=0)) == []


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"count": -1}, "count"),
        ({"size_bytes": 0}, "size_bytes"),
        ({"fail_every": 0}, "fail_every"),
        ({"duplicate_every": 0}, "duplicate_every"),
        ({"hang_at": -1}, "hang_at"),
        ({"delay_ms": -5}, "delay_ms"),
        ({"bogus": 1}, "bogus"),
    ],
)
def test_synthetic_config_errors_name_the_field(config: dict[str, object], field: str) -> None:
    with pytest.raises(ConnectorConfigError, match=f"^connector config field '{field}': "):
        build_connector("synthetic", config)


# --------------------------------------------------------------------------- registry


def test_registry_sources_and_messages(tmp_path: Path) -> None:
    assert set(CONNECTORS) == {"filesystem", "synthetic", "web"}
    with pytest.raises(ConnectorConfigError) as unknown:
        build_connector("foo", {})
    assert str(unknown.value) == "unknown source 'foo'; expected one of: filesystem, synthetic, web"
    with pytest.raises(ConnectorConfigError) as negative:
        build_connector("synthetic", {"count": -1})
    assert str(negative.value) == (
        "connector config field 'count': Input should be greater than or equal to 0"
    )
    with pytest.raises(ConnectorConfigError, match="field 'path'"):
        build_connector("filesystem", {})
    with pytest.raises(ConnectorConfigError, match="field 'extensions': extensions must not"):
        build_connector("filesystem", {"path": str(tmp_path), "extensions": [""]})

    context = ConnectorContext(tenant_id="acme", attempt=3)
    connector = build_connector("synthetic", {"count": 2}, context)
    assert isinstance(connector, SyntheticConnector) and connector.context is context


def test_validate_config_normalises_and_checks_source(tmp_path: Path) -> None:
    normalised = validate_config("synthetic", {"count": 5})
    assert normalised["count"] == 5
    assert normalised == SyntheticConfig(count=5).model_dump(mode="json")
    normalised = validate_config("filesystem", {"path": str(tmp_path), "extensions": ["MD"]})
    assert normalised["extensions"] == [".md"] and normalised["exclude"]
    with pytest.raises(ConnectorConfigError, match="field 'path'"):
        validate_config("filesystem", {"path": str(tmp_path / "nope")})
    assert validate_config("web", {"start_url": "https://Example.com"})["start_url"] == (
        "https://example.com/"
    )


async def test_filesystem_skips_symlinks_leading_out_of_the_tree(tmp_path: Path) -> None:
    outside = write(tmp_path, "outside/secret.txt", "do not index")
    root = tmp_path / "root"
    write(root, "real.txt", "inside")
    (root / "inner-link.txt").symlink_to(root / "real.txt")
    (root / "escape.txt").symlink_to(outside)
    assert await ids_of(fs(root).list_ids()) == [fid(root, "inner-link.txt"), fid(root, "real.txt")]


async def test_web_declared_and_unknown_charsets(site: tuple[str, list[str]], tenant: str) -> None:
    base, _ = site
    [latin1] = await collect(await web(tenant, f"{base}/latin1", max_pages=1))
    assert latin1.document is not None and "café" in latin1.document.text
    [bogus] = await collect(await web(tenant, f"{base}/bogus-charset", max_pages=1))
    assert bogus.document is not None and "naïve" in bogus.document.text


def test_parse_html_and_url_limits() -> None:
    page = parse_html("<title> A  <b>b</b> </title><p>x<br>y</p><svg><text>no</text></svg>")
    assert page.title == "A b"
    assert [s.text for s in page.sections] == ["x\ny"]
    assert normalize_url("http://h.example/" + "x" * 3000) is None
