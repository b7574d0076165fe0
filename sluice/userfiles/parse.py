"""An upload's bytes → a :class:`Document`, with the filesystem connector's text extraction.

Everything that makes a file unindexable raises :class:`UnreadableFile` with a sentence a
person can act on; the workflow records it as the file's ``failed`` reason and indexes
nothing.
"""

from __future__ import annotations

import os

from sluice.connectors.filesystem import DEFAULT_EXTENSIONS, UnreadableFile, extract_text
from sluice.connectors.models import Document, Section
from sluice.userfiles.models import UserFileInfo, acl_for, document_id

SOURCE = "user_file"
SUPPORTED = list(DEFAULT_EXTENSIONS)


def check_name(name: str) -> str | None:
    """Why a file of this name cannot be indexed (its type), or None."""
    lowered = name.lower()
    if not any(lowered.endswith(ext) for ext in SUPPORTED):
        ext = os.path.splitext(lowered)[1] or "(no extension)"
        return f"unsupported file type {ext}: supported are {', '.join(SUPPORTED)}"
    return None


def to_document(info: UserFileInfo, raw: bytes, max_bytes: int) -> Document:
    """The file as a document readable by its owner (and project). Raises UnreadableFile."""
    unsupported = check_name(info.name)
    if unsupported:
        raise UnreadableFile(unsupported)
    if len(raw) > max_bytes:
        raise UnreadableFile(f"file is larger than {max_bytes} bytes; not indexed")
    if not raw.strip():
        raise UnreadableFile("file is empty")
    title, sections, ext = extract_text(raw, info.name, SUPPORTED)
    kept = [s for s in sections if s.strip()]
    if not kept:
        raise UnreadableFile("file has no text to index")
    return Document(
        id=document_id(info.id),
        source=SOURCE,
        semantic_identifier=title or info.name,
        link=None,
        sections=[Section(text=s) for s in kept],
        metadata={"file_name": info.name, "extension": ext, "owner": info.owner},
        acl=acl_for(info.owner, info.project),
        updated_at=info.created_at,
    )
