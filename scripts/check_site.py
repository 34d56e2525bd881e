"""Checks the links of a built documentation site, offline: every relative `href` and `src`
resolves to a file in the site, every `#fragment` to an `id` in its target page, and no link is
a `file:` URL or an absolute path. External http(s) links are counted, never fetched.

Run from any directory: ``.venv/bin/python scripts/check_site.py [docs/_build/html]``; `make
docs` runs it after the build. Exits 1 naming each broken link and the page it is on.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

REPOSITORY = Path(__file__).resolve().parent.parent
SITE = REPOSITORY / "docs" / "_build" / "html"
LINK_ATTRIBUTES = frozenset({"href", "src"})
# Links that name no file: nothing to resolve.
INERT_SCHEMES = frozenset({"mailto", "tel", "data", "javascript"})
EXTERNAL_SCHEMES = frozenset({"http", "https"})


@dataclass
class Page:
    """What one HTML page links to and which fragments it offers."""

    links: list[tuple[str, str]] = field(default_factory=list)  # (tag, URL)
    ids: set[str] = field(default_factory=set)


class _PageParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.page = Page()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value is None:
                continue
            if name in LINK_ATTRIBUTES:
                self.page.links.append((tag, value))
            elif name == "id" or (name == "name" and tag == "a"):
                self.page.ids.add(value)


def parse_page(text: str) -> Page:
    parser = _PageParser()
    parser.feed(text)
    parser.close()
    return parser.page


@dataclass
class Report:
    pages: int = 0
    links: int = 0
    external: int = 0
    images: int = 0
    broken: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{self.pages} pages, {self.links} links ({self.external} external, not fetched), "
            f"{self.images} images checked: "
            + (f"{len(self.broken)} broken" if self.broken else "all resolve")
        )


def link_problem(site: Path, page_path: Path, url: str, pages: dict[Path, Page]) -> str | None:
    """Why `url`, found on `page_path`, does not resolve within `site`; None when it does."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "file":
        return "a file: URL"
    if scheme in EXTERNAL_SCHEMES or scheme in INERT_SCHEMES:
        return None
    if scheme or parts.netloc:
        return f"an unexpected scheme or host ({scheme or parts.netloc})"
    if parts.path.startswith("/"):
        return "an absolute path"
    if parts.path:
        target = (page_path.parent / unquote(parts.path)).resolve()
        if not target.is_relative_to(site):
            return "a path outside the site"
        if target.is_dir():
            target = target / "index.html"
        if not target.is_file():
            return "no such file"
    else:
        target = page_path
    if parts.fragment:
        target_page = pages.get(target)
        if target_page is None:
            return f"a fragment into {target.name}, which is not an HTML page"
        if unquote(parts.fragment) not in target_page.ids:
            return f"no id {parts.fragment!r} in {target.relative_to(site)}"
    return None


def check_site(site: Path) -> Report:
    site = site.resolve()
    pages = {
        path: parse_page(path.read_text(encoding="utf-8")) for path in sorted(site.rglob("*.html"))
    }
    report = Report(pages=len(pages))
    for page_path, page in pages.items():
        for tag, url in page.links:
            report.links += 1
            if urlsplit(url).scheme.lower() in EXTERNAL_SCHEMES:
                report.external += 1
            if tag == "img":
                report.images += 1
            problem = link_problem(site, page_path, url, pages)
            if problem:
                report.broken.append(f"{page_path.relative_to(site)}: {url} ({problem})")
    return report


def main(argv: Iterable[str]) -> int:
    arguments = list(argv)
    site = Path(arguments[0]) if arguments else SITE
    if not site.is_dir():
        print(f"{site} is not a built site: run make docs", file=sys.stderr)
        return 1
    report = check_site(site)
    for broken in report.broken:
        print(f"broken link: {broken}", file=sys.stderr)
    print(report.summary())
    return 1 if report.broken else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
