"""Refreshes the documentation's pictures of the `neo` connection form from the screenshots the
Connections UI test takes in a real Airflow (tests/e2e/test_connections_ui.py), so that they are
never made by hand: the filled Basic-auth form, and the top of the filled OAuth form.

Run from any directory, after the test: ``.venv/bin/python scripts/docs_screenshots.py``;
`make docs-screenshots` runs the test, then this.
"""

from __future__ import annotations

import base64
import sys
from pathlib import Path

from playwright.sync_api import Browser

from scripts.chromium import chromium

REPOSITORY = Path(__file__).resolve().parent.parent
TEST_ARTIFACTS = REPOSITORY / ".test-artifacts" / "connections-ui"
IMAGES = REPOSITORY / "docs" / "images"
# Each picture: the test's screenshot it comes from, and the height it is cropped to (None: whole).
PICTURES: dict[str, tuple[str, int | None]] = {
    "connection-form-basic.png": ("basic-filled-standard-fields.png", None),
    # The connection and its Extra Fields down to the Neo scope: auth type, client key and secret.
    "connection-form-oauth.png": ("oauth-filled-extra-fields.png", 880),
}


def copy_cropped(browser: Browser, source: Path, target: Path, height: int | None) -> None:
    """`source` into `target`, its top `height` pixels only when given; pixels unchanged."""
    if height is None:
        target.write_bytes(source.read_bytes())
        return
    page = browser.new_page(device_scale_factor=1)
    try:
        image = base64.b64encode(source.read_bytes()).decode("ascii")
        page.set_content(f'<body style="margin:0"><img src="data:image/png;base64,{image}"></body>')
        width, full_height = page.evaluate(
            "() => [document.images[0].naturalWidth, document.images[0].naturalHeight]"
        )
        page.set_viewport_size({"width": width, "height": full_height})
        clip = {"x": 0, "y": 0, "width": width, "height": min(height, full_height)}
        page.screenshot(path=target, clip=clip)  # type: ignore[arg-type]
    finally:
        page.close()


def main() -> int:
    missing = [name for name, _ in PICTURES.values() if not (TEST_ARTIFACTS / name).is_file()]
    if missing:
        print(
            f"{', '.join(missing)} missing from {TEST_ARTIFACTS.relative_to(REPOSITORY)}: run "
            ".venv/bin/pytest tests/e2e/test_connections_ui.py first",
            file=sys.stderr,
        )
        return 1
    IMAGES.mkdir(parents=True, exist_ok=True)
    with chromium() as browser:
        for picture, (source, height) in PICTURES.items():
            target = IMAGES / picture
            copy_cropped(browser, TEST_ARTIFACTS / source, target, height)
            print(f"{target.relative_to(REPOSITORY)} from {source}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
