"""docs/examples/unsubscribe_page.py, the brand's unsubscribe page the docs show, served as the
docs say and followed from a reminder's own unsubscribe link."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from airflow_provider_neo.reminders import Unsubscribe
from deploy.servers import free_port

PAGE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "unsubscribe_page.py"
SECRET = "brand-secret-for-the-test"


@pytest.fixture
def page(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    port = free_port()
    suppression = tmp_path / "suppression-list.csv"
    env = {
        **os.environ, "PORT": str(port), "NEO_UNSUBSCRIBE_SECRET": SECRET,
        "NEO_SUPPRESSION_PATH": str(suppression),
    }  # fmt: skip
    server = subprocess.Popen([sys.executable, str(PAGE)], env=env, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert server.poll() is None
                assert time.monotonic() < deadline
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}", suppression
    finally:
        server.terminate()
        server.wait(10)


def _local(url: str, base: str) -> str:
    """The link of a reminder, sent to the page served here instead of the brand's host."""
    parts = urlsplit(url)
    return f"{base}{parts.path}?{parts.query}"


def test_a_reminder_s_link_opts_the_customer_out_and_a_forged_one_is_refused(
    page: tuple[str, Path],
) -> None:
    base, suppression = page
    links = Unsubscribe(
        "https://rewards.example.com/unsubscribe?customer={customer_id}&token={token}", SECRET
    )
    forged = Unsubscribe(links.url_template, "another secret")

    assert requests.get(_local(forged.url(400000007), base), timeout=10).status_code == 403
    assert requests.post(_local(links.url(400000007), base), timeout=10).status_code == 200
    assert requests.get(_local(links.url(400000008), base), timeout=10).status_code == 200

    assert suppression.read_text().splitlines() == ["customer_id", "400000007", "400000008"]
