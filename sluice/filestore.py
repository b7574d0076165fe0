"""Sluice's file store: a directory per tenant under ``SLUICE_DATA_DIR/files/``.

Why a directory and not a Postgres ``bytea`` table: CSV exports of millions of rows are
written page by page and, after a worker crash, truncated back to the last heartbeated
byte offset; a file does both natively (append, ``truncate``) and streams without ever
holding the whole result in memory, where a bytea value is read and written whole. Every
Sluice process already shares this directory (``sluice dev`` runs them in one folder; the
compose stack mounts one ``sluice-data`` volume at ``/var/lib/sluice`` in every Sluice
container), so the CLI, the workers and the sweep see the same files. Postgres keeps the
metadata (``user_file``: owner, project, status), the store only bytes.

Layout (``<tenant>`` is a validated tenant ID, so it is a safe path component)::

    files/<tenant>/blobs/<sha256[:2]>/<sha256>   uploads, content-addressed
    files/<tenant>/exports/<export id>.csv       CSV exports
    files/<tenant>/sandbox/<run id>.json         sandbox results

Blobs are written to a temporary name and renamed, so a reader never sees half a file.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import BinaryIO

from sluice.config import get_settings
from sluice.errors import ConfigurationError
from sluice.tenancy import validate_tenant_id

_REF = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
COPY_CHUNK = 1024 * 1024


def tenant_root(tenant_id: str) -> Path:
    return get_settings().sluice_data_dir.resolve() / "files" / validate_tenant_id(tenant_id)


def _ref(value: str) -> str:
    """An export or run ID as a path component: letters, digits, ``_`` and ``-`` only."""
    if not _REF.match(value):
        raise ConfigurationError(f"invalid file store reference {value!r}")
    return value


def blob_path(tenant_id: str, sha256: str) -> Path:
    if not re.fullmatch(r"[0-9a-f]{64}", sha256):
        raise ConfigurationError(f"invalid blob digest {sha256!r}")
    return tenant_root(tenant_id) / "blobs" / sha256[:2] / sha256


def export_path(tenant_id: str, export_id: str) -> Path:
    return tenant_root(tenant_id) / "exports" / f"{_ref(export_id)}.csv"


def sandbox_result_path(tenant_id: str, run_id: str) -> Path:
    return tenant_root(tenant_id) / "sandbox" / f"{_ref(run_id)}.json"


def put_blob(tenant_id: str, source: BinaryIO, limit: int) -> tuple[str, int] | None:
    """Copy ``source`` into the store by content; (sha256, size), or None past ``limit``
    bytes (nothing is kept then). Blocking: run it in a thread."""
    root = tenant_root(tenant_id) / "blobs"
    root.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    fd, tmp = tempfile.mkstemp(dir=root, prefix=".upload-")
    try:
        with os.fdopen(fd, "wb") as out:
            while chunk := source.read(COPY_CHUNK):
                size += len(chunk)
                if size > limit:
                    return None
                digest.update(chunk)
                out.write(chunk)
        final = blob_path(tenant_id, digest.hexdigest())
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, final)
        return digest.hexdigest(), size
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def read_blob(tenant_id: str, sha256: str, limit: int) -> bytes | None:
    """The blob's bytes, or None if it is missing (deleted meanwhile). Reads at most
    ``limit + 1`` bytes, so a blob that grew past the limit is noticed, not loaded."""
    try:
        with open(blob_path(tenant_id, sha256), "rb") as handle:
            return handle.read(limit + 1)
    except FileNotFoundError:
        return None


def delete_blob(tenant_id: str, sha256: str) -> bool:
    try:
        blob_path(tenant_id, sha256).unlink()
    except FileNotFoundError:
        return False
    return True
