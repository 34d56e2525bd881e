"""`airflow_provider_neo.utils` exports every name the documentation says lives there, and each
of its modules imports first, on its own, without an import cycle."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from pathlib import Path

import airflow_provider_neo.utils as utils

ROOT = Path(__file__).parents[3]
UTILS = ROOT / "airflow_provider_neo" / "utils"


def _documented_exports() -> list[str]:
    """The names the operators page says are importable from `airflow_provider_neo.utils`."""
    page = (ROOT / "docs" / "operators" / "index.md").read_text()
    sentence = re.search(
        r"importable from `airflow_provider_neo\.utils` itself:(.*?)\(", page, re.S
    )
    assert sentence is not None
    return re.findall(r"`(\w+)`", sentence.group(1))


def _names_the_docs_place_in_utils() -> set[str]:
    """Every name the docs place in a utils module: dotted references such as
    ``airflow_provider_neo.utils.output.atomic_csv``, the names in the development page's layout
    entry for utils/, and the names docs/architecture.md gives in its rows about utils/ modules."""
    development = (ROOT / "docs" / "development.md").read_text()
    texts = [development, *(p.read_text() for p in sorted(ROOT.glob("docs/**/*.md")))]
    names = {
        name
        for text in texts
        for name in re.findall(r"airflow_provider_neo\.utils\.\w+\.(\w+)", text)
    }
    layout = re.search(r"\n  utils/ (.*?)\n  hooks/", texts[0], re.S)
    assert layout is not None
    for listed in re.findall(r"\w+\.py\s+\(([^)]*)\)", layout.group(1)):
        names |= set(re.findall(r"\b\w+\b", listed.split(":")[0]))
    architecture = (ROOT / "docs" / "architecture.md").read_text()
    for row in architecture.splitlines():
        if row.startswith("|") and "`utils/" in row:
            names |= set(re.findall(r"`([A-Za-z_]\w*)`", row))
    return names


def test_the_docs_name_exactly_what_utils_exports() -> None:
    assert sorted(_documented_exports()) == sorted(utils.__all__)


def test_every_name_the_docs_place_in_utils_imports_from_utils() -> None:
    documented = _names_the_docs_place_in_utils()
    assert {
        "ExpiryWindow",
        "CustomerSource",
        "atomic_open",
        "atomic_csv",
        "RecordSink",
    } <= documented
    assert documented <= set(utils.__all__)


def test_each_export_is_the_object_its_module_defines() -> None:
    for name in utils.__all__:
        exported = getattr(utils, name)
        module = importlib.import_module(exported.__module__)
        assert module.__name__.startswith("airflow_provider_neo.utils.")
        assert getattr(module, name) is exported


def test_each_utils_module_imports_first_without_a_cycle() -> None:
    # A cycle only shows when one of its modules is imported first: in a fresh interpreter, the
    # provider's modules are dropped before each import (Airflow, slow to import, stays loaded).
    modules = ["airflow_provider_neo.utils"] + [
        f"airflow_provider_neo.utils.{path.stem}"
        for path in sorted(UTILS.glob("*.py"))
        if path.stem != "__init__"
    ]
    script = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    for loaded in [m for m in sys.modules if m.split('.')[0] == 'airflow_provider_neo']:\n"
        "        del sys.modules[loaded]\n"
        "    module = importlib.import_module(name)\n"
        "    print(name, len(vars(module)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert [line.split()[0] for line in result.stdout.splitlines()] == modules
