"""Parse a collection document's bytes into plain text (the seed's parse step).

Plain text as is; Markdown through ``markdown-it-py`` (already installed with ``rich``),
keeping the words of headings, paragraphs, lists and code; HTML through the standard
library's ``html.parser``, dropping scripts and styles. PDF is refused with a clear
error: no PDF library is kept in this project, and a half-parsed PDF would index noise.
Every failure is a :class:`~sluice.errors.DocumentParseError` (non-retryable).
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import PurePath

from sluice.errors import DocumentParseError

TYPES_BY_SUFFIX = {
    ".txt": "text/plain",
    ".text": "text/plain",
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".html": "text/html",
    ".htm": "text/html",
    ".pdf": "application/pdf",
}
SUPPORTED = ("text/plain", "text/markdown", "text/html")


def guess_content_type(name: str) -> str:
    return TYPES_BY_SUFFIX.get(PurePath(name).suffix.lower(), "text/plain")


def parse(content_type: str, data: bytes) -> str:
    """The document's text, paragraphs separated by blank lines."""
    if content_type not in SUPPORTED:
        raise DocumentParseError(
            f"content type {content_type!r} is not supported (supported: {', '.join(SUPPORTED)})"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DocumentParseError(f"not UTF-8 text (byte {exc.start})") from None
    if "\x00" in text:
        raise DocumentParseError("binary content (NUL bytes) in a text document")
    if content_type == "text/markdown":
        text = markdown_text(text)
    elif content_type == "text/html":
        text = html_text(text)
    text = re.sub(r"\n{3,}", "\n\n", text).strip()
    if not text:
        raise DocumentParseError("the document holds no text")
    return text


def markdown_text(source: str) -> str:
    """The words of each block (heading, paragraph, list item, code), one paragraph each."""
    from markdown_it import MarkdownIt

    parts: list[str] = []
    for token in MarkdownIt("commonmark").parse(source):
        if token.type == "inline":
            words = [c.content for c in token.children or [] if c.type in ("text", "code_inline")]
            parts.append("".join(words) if words else token.content)
        elif token.type in ("fence", "code_block"):
            parts.append(token.content.rstrip())
    return "\n\n".join(p for p in parts if p.strip())


class _TextExtractor(HTMLParser):
    BLOCKS = {"p", "div", "br", "li", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "pre", "td"}
    SKIP = {"script", "style", "noscript", "template"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.SKIP:
            self._skipping += 1
        elif tag in self.BLOCKS:
            self.parts.append("\n\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP and self._skipping:
            self._skipping -= 1
        elif tag in self.BLOCKS:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def html_text(source: str) -> str:
    parser = _TextExtractor()
    parser.feed(source)
    parser.close()
    paragraphs = ("".join(parser.parts)).split("\n\n")
    return "\n\n".join(" ".join(p.split()) for p in paragraphs if p.strip())
