"""The example DAGs are wiring of the provider's operators, sensors and task groups: short, no
class and no helper of their own (tests/unit/test_docs.py checks that the how-to pages show each
operator, sensor and task group at work in them)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

DAGS = sorted((Path(__file__).resolve().parents[2] / "dags").glob("*.py"))
MAX_LINES = 120  # docstring included
MAX_HELPER_LINES = 5


@pytest.mark.parametrize("path", DAGS, ids=[path.name for path in DAGS])
def test_an_example_dag_is_short_and_defines_no_class_or_helper(path: Path) -> None:
    source = path.read_text()
    assert len(source.splitlines()) <= MAX_LINES
    tree = ast.parse(source)
    assert [node.name for node in ast.walk(tree) if isinstance(node, ast.ClassDef)] == []
    helpers = [
        node.name
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        # the DAG's own function and its task groups' are wiring, not helpers
        and not any(ast.unparse(d).startswith(("dag", "task_group")) for d in node.decorator_list)
        and (node.end_lineno or 0) - node.lineno + 1 > MAX_HELPER_LINES
    ]
    assert helpers == []
