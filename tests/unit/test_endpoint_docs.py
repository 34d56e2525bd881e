"""docs/endpoints.md is the endpoint table rendered, never edited by hand."""

from __future__ import annotations

from scripts.endpoint_docs import DOC_PATH, render


def test_endpoint_reference_is_generated_from_the_descriptions() -> None:
    assert DOC_PATH.read_text() == render(), "run: .venv/bin/python scripts/endpoint_docs.py"
