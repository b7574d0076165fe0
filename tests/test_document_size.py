"""fetch_documents' size limit (``max_document_bytes``) measures UTF-8 bytes."""

from __future__ import annotations

from activities.docfetching import document_bytes
from sluice.connectors.models import Document, Section


def test_document_size_is_counted_in_utf8_bytes() -> None:
    """The size limit counts bytes, not characters, for ASCII and other texts alike."""
    doc = Document(
        id="d",
        sections=[Section(text="abc"), Section(text="café"), Section(text="日本")],
        source="filesystem",
        semantic_identifier="d",
    )
    assert document_bytes(doc) == 3 + 5 + 6
