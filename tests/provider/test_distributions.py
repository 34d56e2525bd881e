"""The two wheels this repository builds: the provider's holds the provider alone and declares
every package it imports; the simulator's holds neo_simulator. Built as CI builds them, with the
pinned uv and the locked hatchling of the project venv, so no network is needed."""

from __future__ import annotations

import ast
import importlib.metadata
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from email.parser import Parser
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPOSITORY = Path(__file__).resolve().parents[2]

# What stays in the repository: none of it may reach the provider's wheel.
KEPT_OUT = {
    "neo_simulator",
    "simulator",
    "tests",
    "scripts",
    "demo",
    "deploy",
    "dags",
    "benchmarks",
}

# Imports that run only where something else already brings the package.
OPTIONAL_IMPORTS = {
    # NeoHook.get_connection_form_widgets: only Airflow 3.1 calls it, with its own wtforms.
    "wtforms",
}

# The workspace's own import packages (editable installs own no module files to look up).
WORKSPACE_PACKAGES = {
    "airflow_provider_neo": "airflow-provider-neo",
    "neo_simulator": "neo-simulator",
}


def _build(package: str, out_dir: Path) -> zipfile.ZipFile:
    subprocess.run(
        [str(REPOSITORY / "scripts" / "uv"), "build", "--wheel", "--package", package,
         "--no-build-isolation", "--python", sys.executable, "--offline", "--quiet",
         "--out-dir", str(out_dir)],
        cwd=REPOSITORY, check=True, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    (wheel,) = out_dir.glob("*.whl")
    return zipfile.ZipFile(wheel)


@pytest.fixture(scope="module")
def provider_wheel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[zipfile.ZipFile]:
    with _build("airflow-provider-neo", tmp_path_factory.mktemp("provider-wheel")) as wheel:
        yield wheel


@pytest.fixture(scope="module")
def simulator_wheel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[zipfile.ZipFile]:
    with _build("neo-simulator", tmp_path_factory.mktemp("simulator-wheel")) as wheel:
        yield wheel


def _metadata(wheel: zipfile.ZipFile, name: str) -> str:
    (path,) = [n for n in wheel.namelist() if n.endswith(f".dist-info/{name}")]
    return wheel.read(path).decode()


def _required_distributions(wheel: zipfile.ZipFile) -> set[str]:
    """The distributions the wheel requires whatever extras are chosen."""
    requires = Parser().parsestr(_metadata(wheel, "METADATA")).get_all("Requires-Dist") or []
    return {
        canonicalize_name(requirement.name)
        for requirement in map(Requirement, requires)
        if requirement.marker is None or requirement.marker.evaluate({"extra": ""})
    }


def _imports(wheel: zipfile.ZipFile) -> dict[str, set[str]]:
    """Absolute imports of the wheel's modules -> the modules importing them; those guarded by
    ``except ImportError`` are optional, or the fallbacks for another Airflow release (which
    tests/compat runs), and are left out."""
    imports: dict[str, set[str]] = {}
    for name in wheel.namelist():
        if not name.endswith(".py"):
            continue
        tree = ast.parse(wheel.read(name), name)
        guarded = {
            id(node)
            for handler_owner in ast.walk(tree)
            if isinstance(handler_owner, ast.Try)
            and any(
                isinstance(h.type, ast.Name) and h.type.id in ("ImportError", "ModuleNotFoundError")
                for h in handler_owner.handlers
            )
            for statement in [
                *handler_owner.body,
                *(s for h in handler_owner.handlers for s in h.body),
            ]
            for node in ast.walk(statement)
        }
        for node in ast.walk(tree):
            if id(node) in guarded:
                continue
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            for module in modules:
                imports.setdefault(module, set()).add(name)
    return imports


def _module_file(module: str) -> Path | None:
    """Where `module` is installed, found on sys.path without importing it."""
    relative = Path(*module.split("."))
    for entry in map(Path, filter(None, sys.path)):
        for candidate in (
            (entry / relative).with_suffix(".py"),
            entry / relative / "__init__.py",
            *(entry / relative.parent).glob(f"{relative.name}.*.so"),
        ):
            if candidate.is_file():
                return candidate.resolve()
    return None


def _owners() -> dict[Path, str]:
    owners: dict[Path, str] = {}
    for distribution in importlib.metadata.distributions():
        for file in distribution.files or ():
            if file.suffix in (".py", ".so"):
                path = Path(str(distribution.locate_file(file))).resolve()
                owners[path] = canonicalize_name(distribution.metadata["Name"])
    return owners


def _provided_by(distribution: str) -> set[str]:
    """`distribution`, and, for a meta-distribution that ships no modules of its own (such as
    apache-airflow, which is apache-airflow-core and apache-airflow-task-sdk), what it requires
    unconditionally."""
    meta = importlib.metadata.distribution(distribution)
    if any(file.suffix == ".py" for file in meta.files or ()):
        return {distribution}
    return {distribution} | {
        canonicalize_name(requirement.name)
        for requirement in map(Requirement, meta.requires or [])
        if requirement.marker is None
    }


def _undeclared_imports(wheel: zipfile.ZipFile, own_package: str) -> dict[str, str]:
    """Imported module -> why it is not covered by the wheel's Requires-Dist."""
    provided = set().union(*map(_provided_by, _required_distributions(wheel)))
    owners = _owners()
    undeclared: dict[str, str] = {}
    for module, importers in sorted(_imports(wheel).items()):
        top = module.partition(".")[0]
        if top in sys.stdlib_module_names or top == own_package or top in OPTIONAL_IMPORTS:
            continue
        if top in WORKSPACE_PACKAGES:
            distribution = WORKSPACE_PACKAGES[top]
        else:
            path = _module_file(module)
            if path is None or path not in owners:
                undeclared[module] = f"not installed (imported by {sorted(importers)})"
                continue
            distribution = owners[path]
        if distribution not in provided:
            undeclared[module] = f"from {distribution}, imported by {sorted(importers)}"
    return undeclared


def test_provider_wheel_holds_the_provider_only(provider_wheel: zipfile.ZipFile) -> None:
    names = provider_wheel.namelist()
    print(f"{len(names)} files in {provider_wheel.filename}:", *names, sep="\n  ")
    version = importlib.metadata.version("airflow-provider-neo")
    allowed_tops = {"airflow_provider_neo", f"airflow_provider_neo-{version}.dist-info"}
    strays = [
        name
        for name in names
        if name.split("/")[0] not in allowed_tops
        or KEPT_OUT.intersection(Path(name).parts)
        or name.endswith("endpoint_docs.py")
    ]
    assert strays == [], f"the provider's wheel ships what users do not run: {strays}"
    for module in ("hooks/neo.py", "operators/neo.py", "sensors/neo.py", "triggers/neo.py"):
        assert f"airflow_provider_neo/{module}" in names
    assert "airflow_provider_neo/py.typed" in names
    assert "provider_info = airflow_provider_neo.get_provider_info:get_provider_info" in _metadata(
        provider_wheel, "entry_points.txt"
    )


def test_provider_wheel_declares_every_package_it_imports(provider_wheel: zipfile.ZipFile) -> None:
    imported = {module.partition(".")[0] for module in _imports(provider_wheel)}
    assert not imported & {"neo_simulator", "fastapi", "uvicorn", "starlette"}
    assert _undeclared_imports(provider_wheel, "airflow_provider_neo") == {}


def test_simulator_wheel_holds_neo_simulator_and_its_console_script(
    simulator_wheel: zipfile.ZipFile,
) -> None:
    names = simulator_wheel.namelist()
    print(f"{len(names)} files in {simulator_wheel.filename}:", *names, sep="\n  ")
    for module in ("__main__", "app", "server", "store", "process", "customers_csv"):
        assert f"neo_simulator/{module}.py" in names
    assert "neo_simulator/document_samples.py" in names
    assert {name.split("/")[0] for name in names} == {
        "neo_simulator",
        f"neo_simulator-{importlib.metadata.version('neo-simulator')}.dist-info",
    }
    assert "neo-simulator = neo_simulator.__main__:main" in _metadata(
        simulator_wheel, "entry_points.txt"
    )
    assert {"airflow-provider-neo", "fastapi", "uvicorn"} <= _required_distributions(
        simulator_wheel
    )
    assert _undeclared_imports(simulator_wheel, "neo_simulator") == {}
