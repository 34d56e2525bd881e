"""scripts/check_site.py on small built sites: what resolves, and how each broken link is named."""

from __future__ import annotations

from pathlib import Path

from scripts.check_site import check_site, main


def _site(root: Path, pages: dict[str, str]) -> Path:
    for name, body in pages.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"<!doctype html><html><body>{body}</body></html>")
    return root


def test_relative_links_fragments_and_images_that_resolve_pass(tmp_path: Path) -> None:
    site = _site(
        tmp_path,
        {
            "index.html": '<a href="api/hooks.html#NeoHook">hook</a><a href="#top">top</a>'
            '<h1 id="top">Home</h1><img src="_images/form.png"><a href="api/">api</a>'
            '<a href="https://example.org/">out</a><a href="mailto:a@example.org">mail</a>',
            "api/hooks.html": '<dt id="NeoHook"></dt><a href="../index.html">home</a>',
            "api/index.html": "",
        },
    )
    (site / "_images").mkdir()
    (site / "_images" / "form.png").write_bytes(b"png")
    report = check_site(site)
    assert report.broken == []
    assert (report.pages, report.links, report.external, report.images) == (3, 7, 1, 1)


def test_each_broken_link_is_named_with_its_page_and_why(tmp_path: Path) -> None:
    site = _site(
        tmp_path,
        {
            "index.html": '<a href="gone.html">a</a><a href="page.html#nowhere">b</a>'
            '<img src="missing.png"><a href="file:///etc/passwd">c</a><a href="/abs.html">d</a>'
            '<a href="#absent">e</a><a href="../outside.html">f</a>',
            "page.html": '<p id="here"></p>',
        },
    )
    assert check_site(site).broken == [
        "index.html: gone.html (no such file)",
        "index.html: page.html#nowhere (no id 'nowhere' in page.html)",
        "index.html: missing.png (no such file)",
        "index.html: file:///etc/passwd (a file: URL)",
        "index.html: /abs.html (an absolute path)",
        "index.html: #absent (no id 'absent' in index.html)",
        "index.html: ../outside.html (a path outside the site)",
    ]


def test_main_exits_1_on_a_broken_link_and_0_on_a_sound_site(tmp_path: Path) -> None:
    sound = _site(tmp_path / "sound", {"index.html": '<a href="index.html">self</a>'})
    broken = _site(tmp_path / "broken", {"index.html": '<a href="gone.html">x</a>'})
    assert main([str(sound)]) == 0
    assert main([str(broken)]) == 1
    assert main([str(tmp_path / "not-built")]) == 1
