"""Renders docs/endpoints.md from the endpoint descriptions; a developer script, not shipped.

Run from any directory: ``.venv/bin/python scripts/endpoint_docs.py`` (or give another target).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import msgspec

from airflow_provider_neo.endpoints import ENDPOINTS, Endpoint

REPOSITORY = Path(__file__).resolve().parent.parent
DOC_PATH = REPOSITORY / "docs" / "endpoints.md"


def _endpoint_section(endpoint: Endpoint[Any]) -> list[str]:
    traits = [
        "pages (`page` from 1, `count` up to 100)" if endpoint.paged else "does not page",
        f"batches customers in `{endpoint.batch_param}`" if endpoint.batch_param else "",
        f"window `{endpoint.window[0]}`..`{endpoint.window[1]}`, whole days, inclusive, in the"
        " organisation's time zone"
        if endpoint.window
        else "",
        "404 means no rows" if endpoint.not_found_is_empty else "",
    ]
    lines = [
        f"## `GET {endpoint.path}`",
        "",
        f"{endpoint.title}. Source document: `docs/neo_api/{endpoint.document}`."
        + (f" {endpoint.note}" if endpoint.note else ""),
        "",
        "It " + "; ".join(t for t in traits if t) + ".",
        "",
        "| parameter | required | accepts | description |",
        "|---|---|---|---|",
    ]
    for param in endpoint.params:
        default = f" Default {param.default}." if param.default is not None else ""
        required = "yes" if param.required else "no"
        lines.append(
            f"| `{param.name}` | {required} | {param.kind.summary} | {param.description}{default} |"
        )
    fields = ", ".join(f"`{f.encode_name}`" for f in msgspec.structs.fields(endpoint.record))
    lines += ["", f"Rows decode into `{endpoint.record.__name__}`: {fields}.", ""]
    return lines


def render() -> str:
    lines = [
        "# Neo points endpoints",
        "",
        "Generated from `airflow_provider_neo/endpoints.py` by"
        " `python scripts/endpoint_docs.py`; do not edit by hand.",
        "",
    ]
    for endpoint in ENDPOINTS:
        lines += _endpoint_section(endpoint)
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else DOC_PATH
    target.write_text(render())
