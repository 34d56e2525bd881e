"""The package page (the README on the package index) keeps only links that work there; `make
release-check` runs this on the built wheel's long description."""

from __future__ import annotations

from scripts.release_check import anchors, github_slug, links_that_only_work_in_the_repository

PAGE = """# airflow-provider-neo

## The `neo` connection

## Who may change what?

## Layout
## Layout

See [Compatibility](#compatibility-and-python), the [connection](#the-neo-connection),
[trust](#who-may-change-what), the [second layout](#layout-1) and
[Airflow](https://airflow.apache.org/ "Airflow").

```bash
cat [not a link](docs/inside-code.md)
```
and `[nor](this.md)`.
"""


def test_github_slugs_drop_punctuation_and_code_marks() -> None:
    assert github_slug("The `neo` connection") == "the-neo-connection"
    assert github_slug("Who may change what?") == "who-may-change-what"
    assert github_slug("[Linked](https://x.org) heading") == "linked-heading"
    assert github_slug("Reminders: e-mail & webhook") == "reminders-e-mail--webhook"


def test_a_repeated_heading_gets_a_numbered_anchor() -> None:
    assert {"layout", "layout-1", "the-neo-connection"} <= anchors(PAGE)


def test_relative_paths_and_unknown_fragments_are_flagged() -> None:
    page = PAGE + (
        "\n![chart](docs/reminder-effectiveness.png) [doc](docs/endpoints.md)"
        '\n<img src="docs/chart.svg"> <a href="#layout">ok</a>'
        "\n\n[ref]: ../LICENSE\n"
    )
    assert links_that_only_work_in_the_repository(page) == [
        "#compatibility-and-python",
        "docs/reminder-effectiveness.png",
        "docs/endpoints.md",
        "../LICENSE",
        "docs/chart.svg",
    ]


def test_absolute_links_and_the_pages_own_headings_pass() -> None:
    page = PAGE.replace("(#compatibility-and-python)", "(https://example.org/compat)")
    assert links_that_only_work_in_the_repository(page) == []
