"""Screenshots of the built documentation site in Chromium, served over local HTTP as a host
would serve it: the home page and the connection page, into .test-artifacts/docs-site/. Fails
when an image on one of them did not load.

Run from any directory: ``.venv/bin/python scripts/site_screenshots.py [site] [page.html ...]``;
`make docs` runs it after the link check.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from scripts.check_site import SITE
from scripts.chromium import chromium

REPOSITORY = Path(__file__).resolve().parent.parent
ARTIFACTS = REPOSITORY / ".test-artifacts" / "docs-site"
PAGES = ("index.html", "connection.html")
# Every image made eager, then each one's decode awaited: the sources that never loaded.
_UNLOADED_IMAGES = """
() => Promise.all([...document.images].map((image) => {
    image.loading = "eager";
    return image.decode().then(
        () => (image.naturalWidth === 0 ? image.currentSrc || image.src : null),
        () => image.currentSrc || image.src,
    );
})).then((sources) => sources.filter((source) => source !== null))
"""


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def serve(site: Path) -> Iterator[str]:
    """`site` over HTTP on a free loopback port; yields its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(site)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def shoot(site: Path, pages: Sequence[str], artifacts: Path = ARTIFACTS) -> list[str]:
    """Screenshots of `pages` (paths within `site`) into `artifacts`; returns the problems."""
    artifacts.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    with serve(site) as base_url, chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1000}, color_scheme="light")
        for name in pages:
            if not (site / name).is_file():
                print(f"{name}: not in the site yet, no screenshot")
                continue
            page.goto(f"{base_url}/{name}", wait_until="load")
            unloaded: list[str] = page.evaluate(_UNLOADED_IMAGES)
            problems.extend(f"{name}: image did not load: {source}" for source in unloaded)
            shot = artifacts / (Path(name).with_suffix(".png").as_posix().replace("/", "-"))
            page.screenshot(path=shot, full_page=True)
            print(f"{name}: {shot.relative_to(REPOSITORY)}")
    return problems


def main(argv: Sequence[str]) -> int:
    site = Path(argv[0]).resolve() if argv else SITE
    problems = shoot(site, list(argv[1:]) or PAGES)
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
