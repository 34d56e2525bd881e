"""The README is the package's front page: short, and every command and code block in it is one
that a test or CI runs, copied from the file it is tested in. Every Python block of the docs at
least compiles and imports what it names."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

from scripts.release_check import links

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
DOCS = ROOT / "docs"
DOCS_URL = "https://airflow-provider-neo.readthedocs.io/en/latest/"


def _blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", text, re.M | re.S)


def _section(text: str, heading: str) -> str:
    return text.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]


def test_the_readme_is_short() -> None:
    assert len(README.splitlines()) <= 200


def test_the_quickstart_is_the_two_commands_ci_and_the_demo_run() -> None:
    (block,) = _blocks(_section(README, "Quickstart"), "bash")
    commands = [line.split("#")[0].strip() for line in block.splitlines()]
    assert commands == ["make demo", "make test"]
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_the_install_commands_are_those_the_release_check_runs() -> None:
    page = (DOCS / "getting-started.md").read_text()
    marked = page.split("<!-- [START install] -->\n", 1)[1].split("<!-- [END install] -->")[0]
    (readme_block,) = _blocks(_section(README, "Install"), "bash")
    assert _blocks(marked, "bash") == [readme_block]


def test_the_connection_is_the_tested_simulator_example() -> None:
    (block,) = _blocks(_section(README, "A connection"), "bash")
    assert block == (DOCS / "examples" / "simulator-connection.sh").read_text()


def test_the_dag_is_the_brand_dag_the_compatibility_matrix_runs() -> None:
    (block,) = _blocks(_section(README, "A DAG"), "python")
    assert block == (ROOT / "tests" / "brand_dags" / "brand_expiry_reminders.py").read_text()


def test_the_compatibility_table_is_the_compatibility_page_s() -> None:
    def table(text: str) -> list[str]:
        return [line for line in text.splitlines() if line.startswith("|")]

    page = (DOCS / "compatibility.md").read_text()
    assert table(_section(README, "Compatibility")) == table(page)


def test_every_documentation_link_names_a_page_of_the_site() -> None:
    targets = links(README)
    pages = [url.removeprefix(DOCS_URL) for url in targets if url.startswith(DOCS_URL)]
    assert len(pages) >= 20
    missing = [
        page for page in pages if page and not (DOCS / page.replace(".html", ".md")).exists()
    ]
    assert missing == []
    assert all(url.startswith(("https://", "#")) for url in targets), targets


PYTHON_BLOCKS = [
    (path, number, block)
    for path in [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]
    for number, block in enumerate(_blocks(path.read_text(), "python"))
]


@pytest.mark.parametrize(
    ("path", "number", "block"),
    PYTHON_BLOCKS,
    ids=[f"{path.relative_to(ROOT)}#{number}" for path, number, _ in PYTHON_BLOCKS],
)
def test_every_python_block_compiles_and_its_imports_exist(
    path: Path, number: int, block: str
) -> None:
    tree = ast.parse(block, filename=f"{path}#{number}")
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            module = importlib.import_module(node.module)
            for alias in node.names:
                assert hasattr(module, alias.name) or importlib.util.find_spec(
                    f"{node.module}.{alias.name}"
                ), f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                importlib.import_module(alias.name)
