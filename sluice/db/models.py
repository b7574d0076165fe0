"""The product's tables, one set per tenant schema.

Tables are declared with the placeholder schema ``tenant``; every session maps it
to the real tenant schema with SQLAlchemy's ``schema_translate_map`` (see
:mod:`sluice.db.session`), so no query can forget which tenant it is for.
Execution state (progress, checkpoints, retries) is *not* here: it lives in
Temporal workflow history.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Computed,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TSVECTOR
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Defined without SQLAlchemy (light read paths use them); re-exported here.
from sluice.db.statuses import AttemptStatus as AttemptStatus
from sluice.db.statuses import CcPairStatus as CcPairStatus

TENANT_SCHEMA = "tenant"
"""Placeholder schema name, translated per session to the tenant's schema."""


class Base(DeclarativeBase):
    metadata = MetaData(schema=TENANT_SCHEMA)


class Connector(Base):
    __tablename__ = "connector"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(50))
    config: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Credential(Base):
    """Secrets for a source. ``secret`` is never logged nor sent through workflow history."""

    __tablename__ = "credential"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(String(50))
    secret: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    def __repr__(self) -> str:  # never show the secret
        return f"Credential(id={self.id!r}, source={self.source!r}, secret=***)"


class ConnectorCredentialPair(Base):
    __tablename__ = "connector_credential_pair"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    connector_id: Mapped[int] = mapped_column(ForeignKey("connector.id", ondelete="CASCADE"))
    credential_id: Mapped[int | None] = mapped_column(
        ForeignKey("credential.id", ondelete="SET NULL"), nullable=True
    )
    status: Mapped[str] = mapped_column(String(20), default=CcPairStatus.ACTIVE.value)
    refresh_interval_seconds: Mapped[int | None] = mapped_column(Integer, nullable=True)
    prune_interval_seconds: Mapped[int | None] = mapped_column(Integer, nullable=True)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    flag_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    last_successful_index_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), nullable=True
    )
    last_pruned_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    permission_sync_interval_seconds: Mapped[int | None] = mapped_column(
        Integer, nullable=True, doc="NULL: the PERMISSION_SYNC_INTERVAL_SECONDS default (0009)."
    )
    last_permission_sync_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )

    __table_args__ = (UniqueConstraint("connector_id", "credential_id", name="uq_cc_pair"),)


class Document(Base):
    __tablename__ = "document"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    source: Mapped[str] = mapped_column(String(50))
    semantic_identifier: Mapped[str] = mapped_column(Text)
    link: Mapped[str | None] = mapped_column(Text, nullable=True)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONB, default=dict)
    acl: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list)
    document_sets: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list)
    boost: Mapped[float] = mapped_column(Float, default=0.0)
    hidden: Mapped[bool] = mapped_column(Boolean, default=False)
    content_hash: Mapped[str] = mapped_column(String(64))
    doc_updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    chunk_count: Mapped[int] = mapped_column(Integer, default=0)
    last_modified: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    last_synced: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    metadata_version: Mapped[int] = mapped_column(
        BigInteger, default=0, doc="Goes up with every ACL, set, boost or hidden change."
    )
    synced_version: Mapped[int] = mapped_column(
        BigInteger, default=0, doc="The metadata version the index last took (migration 0008)."
    )


class DocumentSet(Base):
    """A named set of connectors (the seed's document sets; ``--collection`` in search)."""

    __tablename__ = "document_set"

    name: Mapped[str] = mapped_column(Text, primary_key=True)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class DocumentSetCcPair(Base):
    __tablename__ = "document_set_cc_pair"

    set_name: Mapped[str] = mapped_column(
        ForeignKey("document_set.name", ondelete="CASCADE"), primary_key=True
    )
    cc_pair_id: Mapped[int] = mapped_column(
        ForeignKey("connector_credential_pair.id", ondelete="CASCADE"), primary_key=True
    )


class DocumentByCcPair(Base):
    """Which cc-pairs hold a document: deletion and pruning only remove the last reference."""

    __tablename__ = "document_by_connector_credential_pair"

    document_id: Mapped[str] = mapped_column(
        ForeignKey("document.id", ondelete="CASCADE"), primary_key=True
    )
    cc_pair_id: Mapped[int] = mapped_column(
        ForeignKey("connector_credential_pair.id", ondelete="CASCADE"), primary_key=True
    )

    __table_args__ = (Index("ix_doc_by_cc_pair_cc", "cc_pair_id"),)


class DocumentPermissionStaged(Base):
    """A changed ACL found by a permission sync, waiting for its upsert batch (0009)."""

    __tablename__ = "document_permission_staged"

    cc_pair_id: Mapped[int] = mapped_column(
        ForeignKey("connector_credential_pair.id", ondelete="CASCADE"), primary_key=True
    )
    document_id: Mapped[str] = mapped_column(Text, primary_key=True)
    acl: Mapped[list[str]] = mapped_column(ARRAY(Text))


class ExternalGroup(Base):
    """A group at the source and its members, as the pair's last group sync saw it (0009)."""

    __tablename__ = "external_group"

    cc_pair_id: Mapped[int] = mapped_column(
        ForeignKey("connector_credential_pair.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(Text, primary_key=True)
    members: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list)
    synced_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (Index("ix_external_group_members", "members", postgresql_using="gin"),)


class Chunk(Base):
    """The document index: one row per chunk, full text (GIN).

    Vectors are per embedding model: ``chunk_vector_<generation>`` tables (created at run
    time, see :class:`IndexGeneration` and ``sluice/index/generations.py``).
    """

    __tablename__ = "chunk"

    document_id: Mapped[str] = mapped_column(
        ForeignKey("document.id", ondelete="CASCADE"), primary_key=True
    )
    chunk_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(Text)
    content: Mapped[str] = mapped_column(Text)
    link: Mapped[str | None] = mapped_column(Text, nullable=True)
    search_tsv: Mapped[Any] = mapped_column(
        TSVECTOR,
        Computed(
            (
                "to_tsvector('english', regexp_replace((coalesce(title, '') || ' ' || c"
                "ontent), '[_./-]+', ' ', 'g')) || to_tsvector('simple', regexp_replace"
                "(regexp_replace(lower((coalesce(title, '') || ' ' || content)), '(^|\\s"
                ")[^\\s_./-]+(?=\\s|$)', ' ', 'g'), '([[:alnum:]])[_./-]+(?=[[:alnum:]])'"
                ", '\\1', 'g')) || to_tsvector('simple', regexp_replace(regexp_replace(t"
                "ranslate(lower((coalesce(title, '') || ' ' || content)), '/', ' '), '("
                "^|\\s)[^\\s_./-]+(?=\\s|$)', ' ', 'g'), '([[:alnum:]])[_./-]+(?=[[:alnum:"
                "]])', '\\1', 'g'))"
            ),
            persisted=True,
        ),
        doc="Words and identifier parts (english) plus whole identifiers (migration 0006).",
    )
    acl: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list)

    __table_args__ = (Index("ix_chunk_search_tsv", "search_tsv", postgresql_using="gin"),)


class IndexGeneration(Base):
    """An embedding model the index has used; its vectors are in ``chunk_vector_<id>``.

    At most one ``live`` (search reads it) and one ``building`` (a model swap).
    """

    __tablename__ = "index_generation"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    provider: Mapped[str] = mapped_column(Text)
    model: Mapped[str | None] = mapped_column(Text, nullable=True)
    base_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    dim: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(Text)
    workflow_id: Mapped[str | None] = mapped_column(Text, nullable=True, unique=True)
    chunks_total: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    chunks_done: Mapped[int] = mapped_column(BigInteger, default=0)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    live_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    retired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class IndexAttempt(Base):
    """The product's view of one indexing run; counts are updated as batches land."""

    __tablename__ = "index_attempt"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    cc_pair_id: Mapped[int] = mapped_column(
        ForeignKey("connector_credential_pair.id", ondelete="CASCADE")
    )
    status: Mapped[str] = mapped_column(String(30), default=AttemptStatus.NOT_STARTED.value)
    from_beginning: Mapped[bool] = mapped_column(Boolean, default=False)
    workflow_id: Mapped[str | None] = mapped_column(Text, nullable=True)
    run_id: Mapped[str | None] = mapped_column(Text, nullable=True)
    docs_fetched: Mapped[int] = mapped_column(Integer, default=0)
    docs_indexed: Mapped[int] = mapped_column(Integer, default=0)
    docs_skipped: Mapped[int] = mapped_column(Integer, default=0)
    docs_failed: Mapped[int] = mapped_column(Integer, default=0)
    chunks_written: Mapped[int] = mapped_column(Integer, default=0)
    batches: Mapped[int] = mapped_column(Integer, default=0)
    error_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )

    __table_args__ = (
        Index("ix_index_attempt_cc_pair", "cc_pair_id", "id"),
        Index(
            "uq_index_attempt_run",
            "run_id",
            unique=True,
            postgresql_where="run_id IS NOT NULL",
        ),
    )


class IndexAttemptError(Base):
    """A per-document failure: recorded, and the run goes on."""

    __tablename__ = "index_attempt_error"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    index_attempt_id: Mapped[int] = mapped_column(
        ForeignKey("index_attempt.id", ondelete="CASCADE")
    )
    cc_pair_id: Mapped[int] = mapped_column(Integer)
    stage: Mapped[str] = mapped_column(String(20))
    document_key: Mapped[str] = mapped_column(
        Text, doc="Document ID, or link, or message digest: what makes the error unique."
    )
    document_id: Mapped[str | None] = mapped_column(Text, nullable=True)
    document_link: Mapped[str | None] = mapped_column(Text, nullable=True)
    failure_message: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        UniqueConstraint("index_attempt_id", "stage", "document_key", name="uq_attempt_error"),
    )


class StagedBatch(Base):
    """Claim check: a batch of fetched documents, passed through history by ``id`` only.

    ``(index_attempt_id, seq)`` is unique so a retried fetch overwrites rather than
    duplicates; ``result`` is written in the same transaction as the batch's
    documents, so a retried processing activity returns it and changes nothing.
    Once processed, a batch's ``documents`` are released at once (the row keeps only its
    few-byte ``result``); rows go when their attempt ends, except batches that could not
    be processed, which the next attempt adopts.
    """

    __tablename__ = "staged_batch"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    index_attempt_id: Mapped[int] = mapped_column(
        ForeignKey("index_attempt.id", ondelete="CASCADE")
    )
    cc_pair_id: Mapped[int] = mapped_column(Integer)
    seq: Mapped[int] = mapped_column(Integer)
    doc_count: Mapped[int] = mapped_column(Integer)
    documents: Mapped[bytes] = mapped_column(LargeBinary, doc="JSON array of Document.")
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONB, nullable=True)
    processed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        UniqueConstraint("index_attempt_id", "seq", name="uq_staged_batch_seq"),
        Index("ix_staged_batch_cc_pair", "cc_pair_id"),
    )


class UserFile(Base):
    """An uploaded file (migration 0009); its bytes are a blob in the file store
    (``sluice/filestore.py``, by ``sha256``), its index form document ``user_file:<id>``."""

    __tablename__ = "user_file"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    owner: Mapped[str] = mapped_column(Text)
    project: Mapped[str | None] = mapped_column(Text, nullable=True)
    name: Mapped[str] = mapped_column(Text)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(Text, nullable=True)
    status: Mapped[str] = mapped_column(Text, default="processing")
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    chunk_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    processed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class ProjectMember(Base):
    """Who may read a project's files (search passes ``project:<P>`` for each)."""

    __tablename__ = "project_member"

    project: Mapped[str] = mapped_column(Text, primary_key=True)
    user_name: Mapped[str] = mapped_column(Text, primary_key=True)
    added_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
