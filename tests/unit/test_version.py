"""The version is written once, in pyproject.toml; the packages read it from their metadata."""

from __future__ import annotations

import ast
import importlib.metadata
import re
from pathlib import Path

import airflow_provider_neo
import neo_simulator
from airflow_provider_neo.get_provider_info import get_provider_info
from airflow_provider_neo.hooks.neo import USER_AGENT

PACKAGES = {
    "airflow-provider-neo": Path(airflow_provider_neo.__file__).parent,
    "neo-simulator": Path(neo_simulator.__file__).parent,
}
VERSION_LIKE = re.compile(r"^v?\d+\.\d+\.\d+([.-]?(a|b|rc|dev|post)\d*)?$")


def test_the_provider_reports_the_version_of_its_metadata() -> None:
    version = importlib.metadata.version("airflow-provider-neo")
    assert airflow_provider_neo.__version__ == version
    assert get_provider_info()["versions"][0] == version
    assert USER_AGENT.split("/") == ["airflow-provider-neo", version]


def _version_literals(package: Path, version: str) -> list[str]:
    """Where a module of `package` writes `version`, or assigns a version-like string to a name
    that says version."""
    found: list[str] = []
    for module in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(module.read_text(), str(module))):
            where = f"{module.relative_to(package.parent)}:{getattr(node, 'lineno', '?')}"
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                if re.search(rf"(?<![\d.]){re.escape(version)}(?![\d.])", node.value):
                    found.append(where)
            elif isinstance(node, ast.Assign | ast.AnnAssign) and isinstance(
                node.value, ast.Constant
            ):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                names = [t.id for t in targets if isinstance(t, ast.Name)]
                if any("version" in name.lower() for name in names) and VERSION_LIKE.match(
                    str(node.value.value)
                ):
                    found.append(where)
    return found


def test_no_module_writes_a_version_of_its_own() -> None:
    for distribution, package in PACKAGES.items():
        version = importlib.metadata.version(distribution)
        assert _version_literals(package, version) == [], f"{distribution} {version}"
