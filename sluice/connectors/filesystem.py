"""Filesystem connector: text, Markdown, HTML and reStructuredText files under one folder.

Files are visited in sorted order of their relative POSIX path, so the checkpoint cursor is
just the last path emitted and resuming means "skip every path <= cursor": no frontier to
store, and new files that sort before the cursor are picked up by the next pass.

Document IDs are ``file://<resolved root>/<relative path>``: the root makes them unique per
folder, so two connectors whose folders hold the same relative path never share a row, and
two connectors over the same folder (however it is spelled) do.
"""

from __future__ import annotations

import asyncio
import fnmatch
import os
import re
import stat
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import ClassVar

from pydantic import Field, field_validator

from sluice.connectors.base import Connector, ConnectorConfig
from sluice.connectors.models import (
    Checkpoint,
    ConnectorOutput,
    Document,
    DocumentFailure,
    Section,
)
from sluice.connectors.posix import PosixDirectory
from sluice.connectors.web import parse_html
from sluice.errors import ConnectorConfigError

DEFAULT_EXTENSIONS = [".txt", ".md", ".markdown", ".html", ".htm", ".rst"]
DEFAULT_EXCLUDE = [".git", "__pycache__", ".venv", "node_modules"]
MAX_FILE_BYTES = 20 * 1024 * 1024
"""Larger files are reported as failures instead of being read whole into memory."""
MTIME_OVERLAP_SECONDS = 60.0
"""Incremental runs re-read files changed shortly before ``since``: clocks and mtimes skew."""

_MARKDOWN = frozenset({".md", ".markdown"})
_HTML = frozenset({".html", ".htm"})
_RST = frozenset({".rst"})


class FilesystemConfig(ConnectorConfig):
    """Which folder to index and which files in it count as documents."""

    path: str = Field(min_length=1, description="Folder to index (recursively).")
    extensions: list[str] = Field(
        default_factory=lambda: list(DEFAULT_EXTENSIONS),
        min_length=1,
        description="File name endings to index, case-insensitive ('.md' or 'md').",
    )
    exclude: list[str] = Field(
        default_factory=lambda: list(DEFAULT_EXCLUDE),
        description="Glob patterns matched against each file/folder name and relative path.",
    )
    passwd_file: str | None = Field(
        default=None,
        description="A passwd-format file naming the files' owners and users' primary groups "
        "(default: this machine's users). For a folder from another machine, and tests.",
    )
    group_file: str | None = Field(
        default=None,
        description="A group-format file naming the files' groups and their members "
        "(default: this machine's groups).",
    )

    @field_validator("extensions")
    @classmethod
    def _normalise_extensions(cls, value: list[str]) -> list[str]:
        out: list[str] = []
        for raw in value:
            ext = raw.strip().lower()
            if ext in ("", "."):
                raise ValueError("extensions must not be empty strings; use e.g. '.md'")
            ext = ext if ext.startswith(".") else f".{ext}"
            if ext not in out:
                out.append(ext)
        return out


@dataclass(frozen=True)
class _Entry:
    """A matching file found by the walk; ``error`` if it could not even be stat'ed."""

    rel: str
    abs_path: str
    doc_id: str
    changed: float | None = None
    error: str | None = None
    acl: tuple[str, ...] = ()


class FilesystemConnector(Connector[FilesystemConfig]):
    """Indexes a folder tree; checkpoint cursor = relative path of the last file emitted."""

    source: ClassVar[str] = "filesystem"
    config_model: ClassVar[type[ConnectorConfig]] = FilesystemConfig

    @property
    def root(self) -> str:
        return os.path.abspath(os.path.expanduser(self.config.path))

    @property
    def id_prefix(self) -> str:
        """``file://<root>/`` with symlinks resolved: what every document ID starts with."""
        return document_id_prefix(self.config.path)

    def document_id(self, rel: str) -> str:
        """The ID of the file at ``rel`` (relative POSIX path): used by load and list_ids."""
        return self.id_prefix + rel

    @cached_property
    def directory(self) -> PosixDirectory:
        """Whose names go into ACLs and group memberships (read once per connector)."""
        try:
            return PosixDirectory.load(self.config.passwd_file, self.config.group_file)
        except OSError as exc:
            raise ConnectorConfigError(
                f"connector config field 'passwd_file'/'group_file': cannot read: {exc}"
            ) from None

    def validate_source(self) -> None:
        root = self.root
        if not os.path.exists(root):
            raise ConnectorConfigError(f"connector config field 'path': {root} does not exist")
        if not os.path.isdir(root):
            raise ConnectorConfigError(f"connector config field 'path': {root} is not a directory")
        if not os.access(root, os.R_OK | os.X_OK):
            raise ConnectorConfigError(f"connector config field 'path': {root} is not readable")
        for name in ("passwd_file", "group_file"):
            named = getattr(self.config, name)
            if named is not None and not os.path.isfile(named):
                raise ConnectorConfigError(f"connector config field {name!r}: no file {named}")

    def _excluded(self, name: str, rel: str) -> bool:
        return any(
            fnmatch.fnmatchcase(name, pattern) or fnmatch.fnmatchcase(rel, pattern)
            for pattern in self.config.exclude
        )

    def _scan(self) -> list[_Entry]:
        """Walk the tree (blocking; run in a thread) and return matching files, sorted."""
        root = self.root
        if not os.path.isdir(root):
            raise ConnectorConfigError(f"connector config field 'path': {root} is not a directory")
        extensions = tuple(self.config.extensions)
        real_root = os.path.realpath(root)
        id_prefix = self.id_prefix
        entries: list[_Entry] = []
        for dirpath, dirnames, filenames in os.walk(root):
            rel_dir = os.path.relpath(dirpath, root).replace(os.sep, "/")
            prefix = "" if rel_dir == "." else f"{rel_dir}/"
            dirnames[:] = [d for d in dirnames if not self._excluded(d, prefix + d)]
            for name in filenames:
                rel = prefix + name
                if not name.lower().endswith(extensions) or self._excluded(name, rel):
                    continue
                if not _is_utf8(rel):
                    continue  # cannot be carried in a JSON checkpoint or an ID
                full = os.path.join(dirpath, name)
                if os.path.islink(full) and not _inside(os.path.realpath(full), real_root):
                    continue  # a link out of the tree must not expose files outside it
                try:
                    st = os.stat(full)
                except OSError as exc:
                    error = f"cannot stat file: {exc.strerror}"
                    entries.append(_Entry(rel, full, id_prefix + rel, error=error))
                    continue
                if stat.S_ISREG(st.st_mode):  # never open FIFOs, sockets or devices
                    # ctime too: a chmod (ACL change) or a move must be re-indexed.
                    changed = max(st.st_mtime, st.st_ctime)
                    acl = tuple(self.directory.acl(st))
                    entries.append(_Entry(rel, full, id_prefix + rel, changed, acl=acl))
        entries.sort(key=lambda e: e.rel)
        return entries

    async def load(self, checkpoint: Checkpoint) -> AsyncIterator[ConnectorOutput]:
        """Yield files after ``checkpoint.cursor``; the last one's checkpoint has done=True."""
        cursor = checkpoint.cursor
        if cursor is not None and not isinstance(cursor, str):
            raise ConnectorConfigError(
                "malformed filesystem checkpoint cursor: expected a relative path string"
            )
        since = checkpoint.since
        entries = await asyncio.to_thread(self._scan)
        todo = [
            entry
            for entry in entries
            if (cursor is None or entry.rel > cursor)
            and (
                since is None
                or entry.changed is None
                or entry.changed >= since - MTIME_OVERLAP_SECONDS
            )
        ]
        for index, entry in enumerate(todo):
            result = await asyncio.to_thread(self._read, entry)
            after = Checkpoint(cursor=entry.rel, since=since, done=index == len(todo) - 1)
            if isinstance(result, Document):
                yield ConnectorOutput(kind="document", document=result, checkpoint=after)
            else:
                yield ConnectorOutput(kind="failure", failure=result, checkpoint=after)

    async def list_ids(self) -> AsyncIterator[str]:
        for entry in await asyncio.to_thread(self._scan):
            yield entry.doc_id

    async def list_permissions(self) -> AsyncIterator[tuple[str, list[str]]]:
        """Owner, group and mode of every file, from one ``stat`` each (no file is read).
        A file that could not be stat'ed is left out: its stored ACL stays."""
        for entry in await asyncio.to_thread(self._scan):
            if entry.error is None:
                yield entry.doc_id, list(entry.acl)

    def list_groups(self) -> dict[str, list[str]]:
        """POSIX groups and members (listed ones and users whose primary group it is)."""
        return self.directory.memberships()

    async def fetch_document(self, doc_id: str) -> Document | DocumentFailure:
        """Read the file the ID names again (it must still be inside the folder)."""
        return await asyncio.to_thread(self._read_by_id, doc_id)

    def _read_by_id(self, doc_id: str) -> Document | DocumentFailure:
        rel = doc_id.removeprefix(self.id_prefix)
        full = os.path.join(self.root, *rel.split("/"))
        inside = _inside(os.path.realpath(full), os.path.realpath(self.root))
        if rel == doc_id or not inside:
            return DocumentFailure(document_id=doc_id, message="not a file of this folder")
        try:
            st = os.stat(full)
        except OSError as exc:
            return DocumentFailure(document_id=doc_id, message=f"cannot stat file: {exc.strerror}")
        if not stat.S_ISREG(st.st_mode):
            return DocumentFailure(document_id=doc_id, message="not a regular file")
        changed = max(st.st_mtime, st.st_ctime)
        return self._read(_Entry(rel, full, doc_id, changed=changed))

    def _read(self, entry: _Entry) -> Document | DocumentFailure:
        """Read and parse one file (blocking; run in a thread). Problems become failures."""
        doc_id = entry.doc_id
        link = Path(entry.abs_path).as_uri()

        def fail(message: str) -> DocumentFailure:
            return DocumentFailure(document_id=doc_id, document_link=link, message=message)

        if entry.error is not None:
            return fail(entry.error)
        try:
            with open(entry.abs_path, "rb") as handle:
                st = os.fstat(handle.fileno())
                if st.st_size > MAX_FILE_BYTES:
                    return fail(f"file is larger than {MAX_FILE_BYTES} bytes; not indexed")
                raw = handle.read()
        except OSError as exc:
            return fail(f"cannot read file: {exc.strerror or exc}")
        name = entry.rel.rsplit("/", 1)[-1]
        try:
            title, sections, ext = extract_text(raw, name, self.config.extensions)
        except UnreadableFile as exc:
            return fail(str(exc))
        try:
            return Document(
                id=doc_id,
                source=self.source,
                semantic_identifier=title or name,
                link=link,
                sections=[Section(text=s) for s in sections],
                metadata={"path": entry.rel, "extension": ext},
                acl=self.directory.acl(st),
                updated_at=datetime.fromtimestamp(st.st_mtime, tz=UTC),
            )
        except ValueError as exc:  # pydantic: e.g. a path too long for a document ID
            return fail(f"not a valid document: {exc}".splitlines()[0])


# --------------------------------------------------------------------------- helpers


class UnreadableFile(ValueError):
    """A file's bytes are not a text document Sluice can index (the message says why)."""


def extract_text(raw: bytes, name: str, extensions: list[str]) -> tuple[str | None, list[str], str]:
    """(title or None, sections, extension) of a file's bytes, parsed by its extension.

    Shared by this connector and user uploads (``sluice/userfiles``), so both accept the
    same files and refuse the others with the same words. Raises :class:`UnreadableFile`.
    """
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UnreadableFile(f"not valid UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if "\x00" in text:
        raise UnreadableFile("contains NUL bytes: looks binary, not text")
    ext = _extension(name, extensions)
    try:
        title, sections = parse_text(text, ext)
    except Exception as exc:  # a parser bug must not end the whole run
        raise UnreadableFile(f"could not parse {ext} file: {exc}") from None
    return title, sections, ext


def document_id_prefix(path: str) -> str:
    """``file://`` + the folder's absolute path with symlinks resolved + ``/``.

    Unencoded (unlike the ``file://`` link), so IDs stay readable. Migration 0003 computes
    the same prefix for rows written before IDs carried the folder; keep the two in step.
    """
    root = os.path.realpath(os.path.expanduser(path)).replace(os.sep, "/")
    return f"file://{root.rstrip('/')}/"


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _is_utf8(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes in the name (surrogate escapes)
        return False
    return True


def _extension(name: str, extensions: list[str]) -> str:
    lowered = name.lower()
    matching = [ext for ext in extensions if lowered.endswith(ext)]
    return max(matching, key=len) if matching else os.path.splitext(lowered)[1]


def posix_acl(st: os.stat_result, directory: PosixDirectory | None = None) -> list[str]:
    """Owner (if ``u+r``), group (if ``g+r``), ``public`` (if ``o+r``): who may read it."""
    return (directory or PosixDirectory.load()).acl(st)


def parse_text(text: str, extension: str) -> tuple[str | None, list[str]]:
    """Title (or None) and sections (at least one) for a file's text, by format."""
    if extension in _MARKDOWN:
        return _parse_markdown(text)
    if extension in _HTML:
        page = parse_html(text)
        return page.title or page.first_h1, [s.text for s in page.sections]
    if extension in _RST:
        return _parse_rst(text)
    return None, [text.strip()]


_ATX_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)[ \t]*#*[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(```|~~~)")
_FRONT_MATTER_TITLE = re.compile(r"""^title:\s*["']?(.*?)["']?\s*$""")


def _parse_markdown(text: str) -> tuple[str | None, list[str]]:
    """Split at ATX headings outside code fences; title = first ``# `` heading."""
    lines = text.splitlines()
    front_title: str | None = None
    if lines and lines[0].strip() == "---":  # YAML front matter: skip it, keep its title
        for end in range(1, len(lines)):
            if lines[end].strip() in ("---", "..."):
                for line in lines[1:end]:
                    if match := _FRONT_MATTER_TITLE.match(line.strip()):
                        front_title = match.group(1) or None
                lines = lines[end + 1 :]
                break
    title: str | None = None
    sections: list[list[str]] = [[]]
    fence: str | None = None
    for line in lines:
        if fence_match := _FENCE.match(line):
            marker = fence_match.group(1)
            fence = None if fence == marker else fence or marker
        elif fence is None and (heading := _ATX_HEADING.match(line)):
            if title is None and len(heading.group(1)) == 1 and heading.group(2):
                title = heading.group(2)
            if any(part.strip() for part in sections[-1]):
                sections.append([])
        sections[-1].append(line)
    return title or front_title, _join_sections(sections)


_RST_ADORNMENT = re.compile(r"^([!-/:-@\[-`{-~])\1+\s*$")


def _parse_rst(text: str) -> tuple[str | None, list[str]]:
    """Split at underlined (optionally overlined) titles; title = the first one."""
    lines = text.splitlines()
    title: str | None = None
    sections: list[list[str]] = [[]]
    index = 0
    while index < len(lines):
        line = lines[index]
        nxt = lines[index + 1] if index + 1 < len(lines) else ""
        overlined = (
            _RST_ADORNMENT.match(line) is not None
            and index + 2 < len(lines)
            and lines[index + 2].rstrip() == line.rstrip()
            and nxt.strip() != ""
        )
        heading: list[str] | None = None
        if overlined:
            heading, heading_text = lines[index : index + 3], nxt.strip()
        elif (
            line.strip()
            and not _RST_ADORNMENT.match(line)
            and _RST_ADORNMENT.match(nxt)
            and len(nxt.rstrip()) >= len(line.rstrip())
        ):
            heading, heading_text = lines[index : index + 2], line.strip()
        if heading is None:
            sections[-1].append(line)
            index += 1
            continue
        if title is None:
            title = heading_text
        if any(part.strip() for part in sections[-1]):
            sections.append([])
        sections[-1].append(heading_text)
        index += len(heading)
    return title, _join_sections(sections)


def _join_sections(sections: list[list[str]]) -> list[str]:
    texts = [text for lines in sections if (text := "\n".join(lines).strip())]
    return texts or [""]
