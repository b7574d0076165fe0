"""Regenerate ``bench/eval/gitdocs/``: Git's manual as Markdown, from Debian's ``git-doc``.

The corpus is committed (about 3.3 MB of text), so nothing needs to run this to use
it. It is kept to show exactly how the files were made and to redo it::

    mkdir -p /tmp/gitdoc && cd /tmp/gitdoc
    apt-get download git-doc=1:2.39.5-0+deb12u3 && dpkg -x git-doc_*.deb x
    cd - && uv run python -m bench.eval.make_gitdocs /tmp/gitdoc/x/usr/share/doc/git-doc

Each rendered HTML page (the asciidoc sources in that package leave their
``include::`` files out, the HTML has them expanded) goes through Sluice's own HTML
parser (:func:`sluice.connectors.web.parse_html`, what the web connector indexes):
its ``<title>`` becomes the ``# `` heading, each section's first line (the section's
heading) a ``## `` heading. The text is otherwise unchanged, except that a text line
that would read as a Markdown heading is indented by four spaces. Output is
deterministic: sorted files, no timestamps. Symbolic links (``index.html`` is one
to ``git.html``) are skipped, so no page is there twice.
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

OUT = Path(__file__).parent / "gitdocs"
_LOOKS_LIKE_HEADING = re.compile(r"^ {0,3}#")


def to_markdown(html: str) -> str:
    from sluice.connectors.web import parse_html

    page = parse_html(html)
    title = page.title or page.first_h1 or ""
    out = [f"# {title}"]
    for section in page.sections:
        lines = section.text.split("\n")
        if not lines or not lines[0]:
            continue
        body = ["    " + ln if _LOOKS_LIKE_HEADING.match(ln) else ln for ln in lines[1:]]
        out.append(f"## {lines[0]}" + ("\n\n" + "\n".join(body) if body else ""))
    return "\n\n".join(out) + "\n"


def main() -> None:
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    src = Path(sys.argv[1])
    pages = sorted(p for p in src.rglob("*.html") if not p.is_symlink())  # index -> git
    if not pages:
        raise SystemExit(f"no .html files under {src}")
    if OUT.exists():
        shutil.rmtree(OUT)
    for page in pages:
        target = OUT / page.relative_to(src).with_suffix(".md")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(to_markdown(page.read_text(encoding="utf-8")), encoding="utf-8")
    shutil.copyfile(src / "copyright", OUT / "COPYRIGHT")
    print(f"{len(pages)} pages -> {OUT}")


if __name__ == "__main__":
    main()
