"""Document IDs are unique per source instance, on real servers and through migration 0003.

Two filesystem connectors whose folders hold the same relative paths used to share
``file:<relative path>`` rows: the second overwrote the first's content, and deleting
it left the wrong text attached to the first. Now the ID carries the resolved folder,
while two connectors over the *same* folder still share one row (two links).
"""

from __future__ import annotations

import importlib
import os
import uuid
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import Connection
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from sluice import connector_ops
from sluice.connectors.filesystem import (
    FilesystemConfig,
    FilesystemConnector,
    document_id_prefix,
)
from sluice.connectors.models import Checkpoint
from sluice.connectors.registry import validate_config
from sluice.connectors.synthetic import SyntheticConfig, SyntheticConnector
from sluice.db.engine import get_engine
from sluice.db.migrate import MIGRATIONS_DIR, migrate_tenant
from sluice.db.session import tenant_connection
from sluice.errors import ConnectorConfigError
from sluice.index.search import search_chunks
from sluice.indexing.staging import decode_documents
from sluice.tenancy import quoted_schema, schema_for
from tests.support import FAST, fetch, fetchval, running_workers

migration_0003 = importlib.import_module("sluice.db.migrations.versions.0003_document_identity")


def fid(root: Path | str, rel: str) -> str:
    return f"file://{os.path.realpath(root)}/{rel}"


def write(root: Path, rel: str, content: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content, encoding="utf-8")


def long_lessons(marker: str, sections: int) -> str:
    """A Markdown file of ``sections`` ~1 kB sections: one chunk each (max 1200 chars)."""
    body = " ".join(f"{marker} lesson sentence number {i}." for i in range(30))
    parts = [f"# {marker.title()} lessons\n"]
    parts += [f"## Part {n}\n\n{body}\n" for n in range(sections)]
    return "\n".join(parts)


def two_folders(tmp_path: Path) -> tuple[Path, Path]:
    """Two folders with the same relative paths and different content."""
    first, second = tmp_path / "alpha", tmp_path / "beta"
    write(first, "lessons.md", long_lessons("aardvark", 12))
    write(first, "sub/a.md", "# Alpha sub\n\naardvark notes in a subfolder\n")
    write(second, "lessons.md", "# Beta lessons\n\nzeppelin: one short lesson\n")
    write(second, "sub/a.md", "# Beta sub\n\nzeppelin notes in a subfolder\n")
    return first, second


async def outputs_of(connector: FilesystemConnector | SyntheticConnector) -> list[Any]:
    return [o async for o in connector.load(Checkpoint())]


async def listed(connector: FilesystemConnector | SyntheticConnector) -> list[str]:
    return [i async for i in connector.list_ids()]


def fs(path: Path | str) -> FilesystemConnector:
    return FilesystemConnector(FilesystemConfig(path=str(path)))


# --------------------------------------------------------------------------- connectors


async def test_filesystem_ids_carry_the_resolved_folder(tmp_path: Path) -> None:
    first, second = two_folders(tmp_path)
    ids_first = [o.document.id for o in await outputs_of(fs(first))]
    ids_second = [o.document.id for o in await outputs_of(fs(second))]
    assert ids_first == [fid(first, "lessons.md"), fid(first, "sub/a.md")]
    assert ids_second == [fid(second, "lessons.md"), fid(second, "sub/a.md")]
    assert not set(ids_first) & set(ids_second)
    # pruning compares list_ids with what load emitted: they must agree exactly
    assert await listed(fs(first)) == ids_first

    # the same folder spelled differently (a symlink, "..", a trailing slash) is one source
    (tmp_path / "link").symlink_to(first)
    for spelling in (tmp_path / "link", f"{tmp_path}/beta/../alpha/", f"{first}/"):
        assert await listed(fs(spelling)) == ids_first


async def test_filesystem_failures_use_the_same_ids(tmp_path: Path) -> None:
    (tmp_path / "bad.txt").write_bytes(b"\xff\xfe not utf-8")
    [output] = await outputs_of(fs(tmp_path))
    assert output.failure is not None
    assert output.failure.document_id == fid(tmp_path, "bad.txt")
    assert await listed(fs(tmp_path)) == [fid(tmp_path, "bad.txt")]


def test_filesystem_root_folder_prefix() -> None:
    assert document_id_prefix("/") == "file:///"
    assert document_id_prefix("/srv/docs/") == f"file://{os.path.realpath('/srv/docs')}/"
    # migration 0003 carries its own copy of the rule: the two must agree
    for path in ("/", "/srv/docs", "~/notes", "relative/dir", "/tmp/../tmp/x/"):
        assert migration_0003.filesystem_prefix(path) == document_id_prefix(path)


async def test_synthetic_name_separates_instances_and_unnamed_ids_are_unchanged() -> None:
    def syn(**config: object) -> SyntheticConnector:
        return SyntheticConnector(SyntheticConfig.model_validate({"count": 4, **config}))

    assert await listed(syn()) == [f"syn:0:{i}" for i in range(4)]  # existing configs
    assert await listed(syn(seed=3)) == [f"syn:3:{i}" for i in range(4)]
    named = await outputs_of(syn(name="load-a", fail_every=2))
    assert [o.document.id if o.document else o.failure.document_id for o in named] == [
        f"syn:load-a:0:{i}" for i in range(4)
    ]
    assert await listed(syn(name="load-a", fail_every=2)) == [f"syn:load-a:0:{i}" for i in range(4)]
    assert named[0].document.semantic_identifier == "Synthetic document load-a:0:0"
    assert named[0].document.metadata["name"] == "load-a"
    assert set(await listed(syn(name="load-b"))).isdisjoint(await listed(syn(name="load-a")))
    # an unnamed document is exactly what it was before names existed (same content hash)
    [plain] = await outputs_of(syn(count=1))
    assert plain.document.semantic_identifier == "Synthetic document 0:0"
    assert "name" not in plain.document.metadata
    # stored configs without the field stay valid; a bad name is a one-line config error
    assert validate_config("synthetic", {"count": 2})["name"] is None
    with pytest.raises(ConnectorConfigError, match="field 'name'"):
        validate_config("synthetic", {"name": "has space"})


# --------------------------------------------------------------------------- real servers


async def add_filesystem(client: Client, tenant: str, name: str, path: Path | str) -> int:
    pair = await connector_ops.add_connector(
        client, tenant, name=name, source="filesystem", config={"path": str(path)}, tuning=FAST
    )
    final = await connector_ops.wait_for_attempts(client, tenant, pair.id, 1, timeout=60)
    assert final.last_attempt_status == "success", final
    return pair.id


LIVE_VECTORS = "chunk_vector_1"
"""Generation 1's vectors (migration 0007): no model swap happens in these tests."""


async def snapshot(tenant: str, document_id: str) -> tuple[Any, list[Any]]:
    """(document row, its chunks as (chunk_id, content, embedding)) for comparisons."""
    row = (
        await fetch(
            tenant,
            "SELECT id, link, content_hash, chunk_count, semantic_identifier "
            "FROM document WHERE id = $1",
            document_id,
        )
    )[0]
    chunks = await fetch(
        tenant,
        "SELECT c.chunk_id, c.content, v.embedding::text AS embedding FROM chunk c "
        f"JOIN {LIVE_VECTORS} v USING (document_id, chunk_id) "
        "WHERE c.document_id = $1 ORDER BY c.chunk_id",
        document_id,
    )
    return dict(row), [tuple(c) for c in chunks]


async def test_two_folders_with_the_same_paths_keep_their_own_documents(
    dev_env: WorkflowEnvironment, tenant: str, tmp_path: Path
) -> None:
    first, second = two_folders(tmp_path)
    client = dev_env.client
    async with running_workers(client):
        cc_first = await add_filesystem(client, tenant, "alpha", first)
        before = {
            rel: await snapshot(tenant, fid(first, rel)) for rel in ("lessons.md", "sub/a.md")
        }
        cc_second = await add_filesystem(client, tenant, "beta", second)

        ids = {r["id"] for r in await fetch(tenant, "SELECT id FROM document")}
        assert ids == {
            fid(root, rel) for root in (first, second) for rel in ("lessons.md", "sub/a.md")
        }
        # the first folder's documents are untouched by the second's run
        for rel, (row, chunks) in before.items():
            assert await snapshot(tenant, fid(first, rel)) == (row, chunks)
        lessons_row, lessons_chunks = before["lessons.md"]
        assert lessons_row["chunk_count"] == len(lessons_chunks) >= 12
        assert lessons_row["link"] == (first / "lessons.md").as_uri()
        assert all("aardvark" in content for _, content, _ in lessons_chunks)
        beta_row, beta_chunks = await snapshot(tenant, fid(second, "lessons.md"))
        assert beta_row["chunk_count"] == len(beta_chunks) == 1
        assert beta_row["link"] == (second / "lessons.md").as_uri()
        assert "zeppelin" in beta_chunks[0][1] and "aardvark" not in beta_chunks[0][1]
        # every chunk holds its own document's text, whichever folder it came from
        mixed = await fetchval(
            tenant,
            "SELECT count(*) FROM chunk WHERE (document_id LIKE $1 AND content LIKE '%zeppelin%')"
            " OR (document_id LIKE $2 AND content LIKE '%aardvark%')",
            fid(first, "%"),
            fid(second, "%"),
        )
        assert mixed == 0
        links = await fetch(
            tenant,
            "SELECT document_id, cc_pair_id FROM document_by_connector_credential_pair",
        )
        assert {(r["document_id"], r["cc_pair_id"]) for r in links} == {
            (fid(first, "lessons.md"), cc_first),
            (fid(first, "sub/a.md"), cc_first),
            (fid(second, "lessons.md"), cc_second),
            (fid(second, "sub/a.md"), cc_second),
        }
        hits = await search_chunks(tenant, "zeppelin short lesson", limit=3)
        assert hits[0].document_id == fid(second, "lessons.md")
        hits = await search_chunks(tenant, "aardvark notes subfolder", limit=3)
        assert hits[0].document_id == fid(first, "sub/a.md")

        # deleting the second connector leaves the first's documents and chunks intact
        deleted = await connector_ops.delete_connector(client, tenant, cc_second)
        assert deleted is not None and deleted.documents_deleted == 2
    for rel, (row, chunks) in before.items():
        assert await snapshot(tenant, fid(first, rel)) == (row, chunks)
    remaining = await fetch(tenant, "SELECT DISTINCT document_id FROM chunk ORDER BY 1")
    assert [r[0] for r in remaining] == [fid(first, "lessons.md"), fid(first, "sub/a.md")]
    hits = await search_chunks(tenant, "aardvark lesson sentence", limit=3)
    assert hits and all(h.document_id == fid(first, "lessons.md") for h in hits)


async def test_two_connectors_over_the_same_folder_share_rows(
    dev_env: WorkflowEnvironment, tenant: str, tmp_path: Path
) -> None:
    folder, _ = two_folders(tmp_path)
    (tmp_path / "same").symlink_to(folder)  # the same folder under another name
    client = dev_env.client
    async with running_workers(client):
        cc_one = await add_filesystem(client, tenant, "one", folder)
        cc_two = await add_filesystem(client, tenant, "two", tmp_path / "same")
        rows = await fetch(
            tenant,
            "SELECT d.id, array_agg(l.cc_pair_id ORDER BY l.cc_pair_id) AS pairs "
            "FROM document d JOIN document_by_connector_credential_pair l "
            "ON l.document_id = d.id GROUP BY d.id ORDER BY d.id",
        )
        assert [(r["id"], list(r["pairs"])) for r in rows] == [
            (fid(folder, "lessons.md"), [cc_one, cc_two]),
            (fid(folder, "sub/a.md"), [cc_one, cc_two]),
        ]
        chunks = await fetchval(tenant, "SELECT count(*) FROM chunk")
        # deleting one keeps the shared rows for the other
        deleted = await connector_ops.delete_connector(client, tenant, cc_one)
        assert deleted is not None and deleted.documents_deleted == 0
    assert await fetchval(tenant, "SELECT count(*) FROM chunk") == chunks
    links = await fetch(
        tenant, "SELECT document_id, cc_pair_id FROM document_by_connector_credential_pair"
    )
    assert sorted((r[0], r[1]) for r in links) == [
        (fid(folder, "lessons.md"), cc_two),
        (fid(folder, "sub/a.md"), cc_two),
    ]


# --------------------------------------------------------------------------- migration 0003


def _upgrade(connection: Connection, schema: str, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    config.attributes["tenant_schema"] = schema
    command.upgrade(config, revision)


async def migrate_to(tenant_id: str, revision: str) -> None:
    """Like ``migrate_tenant``, but stops at ``revision``."""
    engine = get_engine()
    async with engine.begin() as conn:
        await conn.execute(text("CREATE EXTENSION IF NOT EXISTS vector"))
        await conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {quoted_schema(tenant_id)}"))
        await conn.run_sync(partial(_upgrade, schema=schema_for(tenant_id), revision=revision))
    await engine.dispose()


def vector(seed: int) -> str:
    return "[" + ",".join(str((seed * 7 + i) % 11) for i in range(256)) + "]"


async def test_migration_0003_rewrites_legacy_ids(services: dict[str, str], tmp_path: Path) -> None:
    tenant = "t_" + uuid.uuid4().hex[:10]
    await migrate_to(tenant, "0002")
    alpha, beta = tmp_path / "alpha", tmp_path / "beta"
    alpha.mkdir()
    beta.mkdir()
    (tmp_path / "alpha-link").symlink_to(alpha)

    async with tenant_connection(tenant) as (_, raw):

        async def connector(source: str, config: str) -> int:
            connector_id = await raw.fetchval(
                "INSERT INTO connector (name, source, config) VALUES ($1, $1, $2::jsonb) "
                "RETURNING id",
                source,
                config,
            )
            return int(
                await raw.fetchval(
                    "INSERT INTO connector_credential_pair (name, connector_id) "
                    "VALUES ('legacy', $1) RETURNING id",
                    connector_id,
                )
            )

        cc_alpha = await connector("filesystem", f'{{"path": "{alpha}"}}')
        cc_beta = await connector("filesystem", f'{{"path": "{beta}/"}}')
        cc_alpha_too = await connector("filesystem", f'{{"path": "{tmp_path}/alpha-link"}}')
        cc_syn = await connector("synthetic", '{"count": 3, "seed": 0}')
        cc_named = await connector("synthetic", '{"count": 3, "seed": 5, "name": "load"}')
        cc_web = await connector("web", '{"start_url": "https://example.com/"}')

        async def document(doc_id: str, chunks: int, *pairs: int) -> None:
            await raw.execute(
                "INSERT INTO document (id, source, semantic_identifier, link, content_hash, "
                "chunk_count, metadata, acl) VALUES ($1, 'legacy', $1, $2, $3, $4, "
                """'{"path": "x"}'::jsonb, ARRAY['public'])""",
                doc_id,
                f"link-of-{doc_id}",
                "h" * 64,
                chunks,
            )
            for n in range(chunks):
                await raw.execute(
                    "INSERT INTO chunk (document_id, chunk_id, title, content, link, embedding, "
                    "acl) VALUES ($1, $2, $1, $3, NULL, $4::text::vector, ARRAY['public'])",
                    doc_id,
                    n,
                    f"content {n} of {doc_id}",
                    vector(n),
                )
            for pair in pairs:
                await raw.execute(
                    "INSERT INTO document_by_connector_credential_pair VALUES ($1, $2)",
                    doc_id,
                    pair,
                )

        await document("file:lessons.md", 3, cc_alpha, cc_beta)  # the corrupted, shared row
        await document("file:docs/only-alpha.md", 2, cc_alpha)
        await document("file:sub/a.md", 1, cc_alpha, cc_alpha_too)  # same folder, two pairs
        await document("syn:0:1", 2, cc_syn)
        await document("syn:5:2", 1, cc_named)
        await document("https://example.com/", 1, cc_web)

        attempt = await raw.fetchval(
            "INSERT INTO index_attempt (cc_pair_id, status) VALUES ($1, 'in_progress') "
            "RETURNING id",
            cc_alpha,
        )
        await raw.execute(
            "INSERT INTO index_attempt_error (index_attempt_id, cc_pair_id, stage, "
            "document_key, document_id, document_link, failure_message) VALUES "
            "($1, $2, 'fetching', 'file:broken.md', 'file:broken.md', 'file:///x', 'bad'), "
            "($1, $2, 'fetching', 'https://x/sitemap.xml', NULL, 'https://x/sitemap.xml', 'x')",
            attempt,
            cc_alpha,
        )
        staged = (
            b'[{"id":"file:docs/only-alpha.md","source":"filesystem","semantic_identifier":"t",'
            b'"link":null,"sections":[{"text":"caf\xc3\xa9","link":null}],"metadata":{},'
            b'"acl":[],"updated_at":null}]'
        )
        await raw.execute(
            "INSERT INTO staged_batch (index_attempt_id, cc_pair_id, seq, doc_count, documents)"
            " VALUES ($1, $2, 0, 1, $3), ($1, $2, 1, 0, ''::bytea)",
            attempt,
            cc_alpha,
            staged,
        )
        before = {
            (r["document_id"], r["chunk_id"]): (r["content"], r["e"])
            for r in await raw.fetch("SELECT *, embedding::text AS e FROM chunk")
        }

    await migrate_tenant(tenant)  # 0003 and whatever follows it

    a, b = f"file://{os.path.realpath(alpha)}/", f"file://{os.path.realpath(beta)}/"
    docs = await fetch(tenant, "SELECT id, chunk_count, link, content_hash FROM document")
    assert {r["id"]: r["chunk_count"] for r in docs} == {
        f"{a}lessons.md": 3,
        f"{b}lessons.md": 3,
        f"{a}docs/only-alpha.md": 2,
        f"{a}sub/a.md": 1,
        "syn:0:1": 2,
        "syn:load:5:2": 1,
        "https://example.com/": 1,
    }
    assert {r["id"]: r["link"] for r in docs}[f"{b}lessons.md"] == "link-of-file:lessons.md"

    links = await fetch(
        tenant, "SELECT document_id, cc_pair_id FROM document_by_connector_credential_pair"
    )
    assert sorted((r[0], r[1]) for r in links) == sorted(
        [
            (f"{a}lessons.md", cc_alpha),
            (f"{b}lessons.md", cc_beta),
            (f"{a}docs/only-alpha.md", cc_alpha),
            (f"{a}sub/a.md", cc_alpha),
            (f"{a}sub/a.md", cc_alpha_too),
            ("syn:0:1", cc_syn),
            ("syn:load:5:2", cc_named),
            ("https://example.com/", cc_web),
        ]
    )

    # chunks moved with their documents: same ids, contents and vectors, nothing orphaned
    renamed = {
        "file:lessons.md": [f"{a}lessons.md", f"{b}lessons.md"],
        "file:docs/only-alpha.md": [f"{a}docs/only-alpha.md"],
        "file:sub/a.md": [f"{a}sub/a.md"],
        "syn:0:1": ["syn:0:1"],
        "syn:5:2": ["syn:load:5:2"],
        "https://example.com/": ["https://example.com/"],
    }
    chunks = await fetch(
        tenant,
        "SELECT c.document_id, c.chunk_id, c.content, v.embedding::text AS e FROM chunk c "
        f"JOIN {LIVE_VECTORS} v USING (document_id, chunk_id)",
    )
    expected = {
        (new, chunk_id): value for (old, chunk_id), value in before.items() for new in renamed[old]
    }
    assert {(c["document_id"], c["chunk_id"]): (c["content"], c["e"]) for c in chunks} == expected
    # the generated full-text column is rebuilt for the copies
    found = await fetchval(
        tenant, "SELECT count(*) FROM chunk WHERE search_tsv @@ to_tsquery('english', 'content')"
    )
    assert found == len(chunks)

    errors = await fetch(
        tenant,
        "SELECT document_key, document_id, document_link FROM index_attempt_error ORDER BY id",
    )
    assert [tuple(r) for r in errors] == [
        (f"{a}broken.md", f"{a}broken.md", "file:///x"),
        ("https://x/sitemap.xml", None, "https://x/sitemap.xml"),
    ]
    batches = await fetch(tenant, "SELECT seq, documents FROM staged_batch ORDER BY seq")
    [staged_doc] = decode_documents(batches[0]["documents"])
    assert staged_doc.id == f"{a}docs/only-alpha.md" and staged_doc.text == "café"
    assert batches[1]["documents"] == b""
    version = await fetchval(tenant, "SELECT version_num FROM alembic_version")
    assert version >= "0003"

    # running the migrations again changes nothing (0003 is recorded, rows are new-style)
    await migrate_tenant(tenant)
    assert len(await fetch(tenant, "SELECT id FROM document")) == len(docs)
