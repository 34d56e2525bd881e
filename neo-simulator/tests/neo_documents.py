"""Reads the Neo API documents (docs/neo_api/) so tests pin the code to the documents themselves."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

DOCS = Path(__file__).resolve().parents[2] / "docs" / "neo_api"

_SECTION_END = re.compile(
    r"^(Example response|Sample request|Sample Request|Response parameters|Event type ID|"
    r"\* Mandatory|Sample response|Sample Response|Error|API Error)",
    re.M,
)


@dataclass(frozen=True)
class Document:
    name: str
    text: str

    @property
    def sample_requests(self) -> list[str]:
        """Path and query of each sample request URL (curl commands and endpoint examples)."""
        urls = re.findall(r"curl [^']*'(https://[^']+)'", self.text)
        urls += re.findall(r"<(https://[^>]+)>", self.text)
        urls += re.findall(r"^(https://\S+\?\S+)$", self.text, re.M)
        parts = [urlsplit(url) for url in urls]
        return list(dict.fromkeys(f"{p.path}?{p.query}" for p in parts))

    @property
    def sample_response(self) -> list[dict[str, Any]]:
        match = re.search(r"^(Example|Sample) [Rr]esponse\s*\n", self.text, re.M)
        assert match, f"{self.name} has no sample response"
        start = self.text.index("[", match.end())
        value, _ = json.JSONDecoder().raw_decode(self.text, start)
        assert isinstance(value, list)
        return value

    def _section(self, heading: str) -> str:
        match = re.search(heading, self.text, re.M)
        assert match, f"{self.name} has no section {heading!r}"
        rest = self.text[match.end() :]
        rest = rest[rest.index("\n") + 1 :]
        end = _SECTION_END.search(rest)
        return rest[: end.start()] if end else rest

    @property
    def query_parameters(self) -> dict[str, bool]:
        """Parameter name -> required, from the query parameter table."""
        section = self._section(r"^(Request )?[Qq]uery parameters|^Request query parameters")
        params: dict[str, bool] = {}
        for line in section.splitlines():
            row = re.match(r"^([a-z_]+)(\*)?\s*\|(.*)$", line)
            if row:
                cells = [cell.strip() for cell in row.group(3).split("|")]
                params[row.group(1)] = bool(row.group(2)) or "Yes" in cells
        return params

    @property
    def response_fields(self) -> list[str]:
        section = self._section(r"^(Response parameters|\| Parameter \| Data Type)")
        return re.findall(
            r"^\|?\s*([A-Za-z_]+)\s*\|\s*(?:Integer|Long|String|integer|string)\s*\|", section, re.M
        )


def document(name: str) -> Document:
    return Document(name, (DOCS / name).read_text())
