#!/usr/bin/env python3
"""Builds the documentation site and checks its links (Python standard library only).

    python3 scripts/check_docs.py [--mdbook PATH] [--no-build]

1. Runs `mdbook build docs` (mdbook from --mdbook, $MDBOOK, the test command's cache
   ${BUCKETSYNC_CACHE:-~/.cache/bucketsync}/mdbook/bin/mdbook, or PATH).
2. In every generated HTML file under docs/book, checks that each relative link (href, src)
   names a file that exists and that each #anchor names an id on the page it points to.
3. In README.md and the repository's other Markdown documents, checks that each relative link
   names a file or folder that exists and that each #anchor names a heading of the Markdown
   file it points to (GitHub's heading ids).
4. In the site's sources (docs/src), checks that every {{#include}} names a file that exists
   (and an anchor that the file has), and that every fenced code block either is included
   from a file or is fenced as `illustrative` (```sh,illustrative): no untested code is shown
   as if it were tested.

Links to other sites (http:, https:, mailto:) are not followed: this runs offline.
Exits 0 when nothing is broken, 1 when something is (each listed), 2 when it cannot run.
"""

import argparse
import html.parser
import os
import re
import shutil
import subprocess
import sys
import unicodedata
from pathlib import Path
from urllib.parse import unquote, urlsplit

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
SRC = DOCS / "src"
BOOK = DOCS / "book"
# Markdown documents outside the site whose relative links are checked too.
MARKDOWN = [
    "README.md",
    "CONTRIBUTING.md",
    "SECURITY.md",
    "CHANGELOG.md",
    "docs/FORMAT.md",
    "docs/SHARING.md",
    "core/README.md",
    "cli/README.md",
    "bindings-python/README.md",
    "bindings-wasm/js/README.md",
]


def find_mdbook(given):
    candidates = [given, os.environ.get("MDBOOK")]
    cache = Path(os.environ.get("BUCKETSYNC_CACHE", Path.home() / ".cache" / "bucketsync"))
    candidates.append(str(cache / "mdbook" / "bin" / "mdbook"))
    candidates.append(shutil.which("mdbook"))
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


class Page(html.parser.HTMLParser):
    """The ids and the links of one HTML file."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.ids = set()
        self.links = []  # (attribute value, line)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.ids.add(attrs["id"])
        if tag == "a" and attrs.get("name"):
            self.ids.add(attrs["name"])
        for name in ("href", "src"):
            if attrs.get(name) is not None and tag in ("a", "link", "script", "img", "iframe", "source"):
                self.links.append((attrs[name], self.getpos()[0]))


def is_external(url):
    scheme = urlsplit(url).scheme
    return bool(scheme) and scheme not in ("file",)


def check_book():
    """Broken links of the generated HTML, and how many links were checked."""
    pages = {}
    for path in sorted(BOOK.rglob("*.html")):
        page = Page()
        page.feed(path.read_text(encoding="utf-8"))
        pages[path] = page
    broken, checked = [], 0
    for path, page in pages.items():
        for url, line in page.links:
            if not url or is_external(url) or url.startswith("javascript:"):
                continue
            checked += 1
            parts = urlsplit(url)
            target = path if not parts.path else (path.parent / unquote(parts.path)).resolve()
            where = f"{path.relative_to(ROOT)}:{line}"
            if parts.path and target.is_dir():
                target = target / "index.html"
            if not target.exists():
                broken.append(f"{where}: {url}: no file {target}")
                continue
            if parts.fragment:
                ids = pages.get(target)
                if ids is None and target.suffix == ".html":
                    ids = Page()
                    ids.feed(target.read_text(encoding="utf-8"))
                    pages[target] = ids
                if ids is not None and unquote(parts.fragment) not in ids.ids:
                    broken.append(f"{where}: {url}: no id '{parts.fragment}' in {target.relative_to(ROOT)}")
    return broken, checked, len(pages)


FENCE = re.compile(r"^(\s*)(```+|~~~+)(.*)$")
LINK = re.compile(r"(?<!!)\[(?:[^\[\]]|\[[^\]]*\])*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


def without_code(text):
    """The lines of a Markdown text, fenced code blocks and inline code blanked out."""
    lines, fence = [], None
    for line in text.split("\n"):
        match = FENCE.match(line)
        if fence:
            if match and match.group(2).startswith(fence):
                fence = None
            lines.append("")
            continue
        if match:
            fence = match.group(2)
            lines.append("")
            continue
        lines.append(re.sub(r"`[^`]*`", "``", line))
    return lines


def github_slug(heading):
    """The id GitHub gives a Markdown heading."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # links: their text
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML
    text = text.replace("`", "").replace("*", "")
    text = re.sub(r"(?<!\w)_|_(?!\w)", "", text)  # emphasis, not snake_case
    text = text.strip().lower()
    kept = []
    for char in text:
        if char in (" ", "-", "_") or unicodedata.category(char)[0] in ("L", "N", "M"):
            kept.append("-" if char == " " else char)
    return "".join(kept)


def markdown_ids(path, cache={}):
    if path not in cache:
        ids, seen = set(), {}
        for line in without_code(path.read_text(encoding="utf-8")):
            match = HEADING.match(line)
            if not match:
                continue
            slug = github_slug(match.group(2))
            count = seen.get(slug, 0)
            seen[slug] = count + 1
            ids.add(slug if count == 0 else f"{slug}-{count}")
        # Headings kept inside inline code were blanked; read them from the raw text as well.
        for line in path.read_text(encoding="utf-8").split("\n"):
            match = HEADING.match(line)
            if match:
                ids.add(github_slug(match.group(2)))
        cache[path] = ids
    return cache[path]


def check_markdown():
    broken, checked = [], 0
    for name in MARKDOWN:
        path = ROOT / name
        if not path.exists():
            continue
        for number, line in enumerate(without_code(path.read_text(encoding="utf-8")), start=1):
            for match in LINK.finditer(line):
                url = match.group(1).strip("<>")
                if is_external(url):
                    continue
                checked += 1
                parts = urlsplit(url)
                target = path if not parts.path else (path.parent / unquote(parts.path)).resolve()
                where = f"{name}:{number}"
                if not target.exists():
                    broken.append(f"{where}: {url}: no file {target}")
                    continue
                if parts.fragment and target.suffix == ".md":
                    if unquote(parts.fragment) not in markdown_ids(target):
                        broken.append(f"{where}: {url}: no heading '{parts.fragment}' in {target.relative_to(ROOT)}")
    return broken, checked


# mdBook leaves an include escaped with a backslash (\\{{#include ...}}) as text.
INCLUDE = re.compile(r"(?<!\\)\{\{#include\s+([^}\s:]+)(?::([A-Za-z0-9_-]+))?\s*\}\}")


def check_sources():
    """Includes that name no file or anchor, and code blocks neither included nor illustrative."""
    broken, blocks = [], {"included": 0, "illustrative": 0}
    for path in sorted(SRC.rglob("*.md")):
        text = path.read_text(encoding="utf-8")
        where = path.relative_to(ROOT)
        for match in INCLUDE.finditer(text):
            target = (path.parent / match.group(1)).resolve()
            line = text.count("\n", 0, match.start()) + 1
            if not target.exists():
                broken.append(f"{where}:{line}: include of a missing file {match.group(1)}")
                continue
            anchor = match.group(2)
            if anchor:
                body = target.read_text(encoding="utf-8")
                if not re.search(rf"ANCHOR:\s*{re.escape(anchor)}\b", body) or \
                        not re.search(rf"ANCHOR_END:\s*{re.escape(anchor)}\b", body):
                    broken.append(f"{where}:{line}: {match.group(1)} has no anchor '{anchor}'")
        lines = text.split("\n")
        fence, info, start, body = None, "", 0, []
        for number, line in enumerate(lines, start=1):
            match = FENCE.match(line)
            if fence is None and match:
                fence, info, start, body = match.group(2), match.group(3).strip(), number, []
                continue
            if fence is not None:
                if match and match.group(2).startswith(fence) and not match.group(3).strip():
                    attributes = [a.strip() for a in info.split(",")]
                    if any("{{#include" in b for b in body):
                        blocks["included"] += 1
                    elif "illustrative" in attributes:
                        blocks["illustrative"] += 1
                    else:
                        broken.append(
                            f"{where}:{start}: a code block neither included from a tested file "
                            f"nor fenced as illustrative (```{info or 'LANG'},illustrative)"
                        )
                    fence = None
                else:
                    body.append(line)
    return broken, blocks


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mdbook", help="the mdbook binary")
    parser.add_argument("--no-build", action="store_true", help="check docs/book as it is")
    args = parser.parse_args()

    if not args.no_build:
        mdbook = find_mdbook(args.mdbook)
        if not mdbook:
            print("check_docs: no mdbook found (--mdbook, $MDBOOK, the cache, or PATH)", file=sys.stderr)
            return 2
        build = subprocess.run([mdbook, "build", str(DOCS)], capture_output=True, text=True)
        # mdbook reports a missing include or anchor as a warning and builds on: count those.
        warnings = [l for l in build.stderr.splitlines() if " WARN " in l or " ERROR " in l]
        if build.returncode != 0:
            print(build.stderr, file=sys.stderr)
            print(f"check_docs: mdbook build failed (exit {build.returncode})", file=sys.stderr)
            return 1
        version = subprocess.run([mdbook, "--version"], capture_output=True, text=True).stdout.strip()
        print(f"built docs/book with {version}")
    else:
        warnings = []
    if not (BOOK / "index.html").exists():
        print("check_docs: docs/book has no index.html: build it first", file=sys.stderr)
        return 2

    book_broken, book_links, pages = check_book()
    md_broken, md_links = check_markdown()
    src_broken, blocks = check_sources()
    print(f"site: {pages} HTML files, {book_links} relative links and anchors checked")
    print(f"markdown: {len(MARKDOWN)} documents (README.md first), {md_links} relative links and anchors checked")
    print(f"sources: {blocks['included']} code blocks included from files, "
          f"{blocks['illustrative']} marked illustrative")
    problems = [f"mdbook: {w}" for w in warnings] + book_broken + md_broken + src_broken
    for problem in problems:
        print(f"BROKEN {problem}")
    print(f"{len(problems)} broken")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
