"""Sphinx configuration of the documentation site: Markdown pages through MyST, the Furo theme,
and the API reference from the package's docstrings. `make docs` builds it with warnings as
errors; Read the Docs builds it from .readthedocs.yaml."""

from __future__ import annotations

import os
import tempfile
from importlib.metadata import version as installed_version

# autodoc imports the provider, and with it Airflow: a throwaway Airflow home, not the user's.
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="neo-docs-airflow-home-"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")

project = "airflow-provider-neo"
author = "airflow-provider-neo contributors"
copyright = "the airflow-provider-neo contributors"
# The version of the package installed in the build's environment, never written here.
release = installed_version("airflow-provider-neo")
version = ".".join(release.split(".")[:2])

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.viewcode",
]

source_suffix = {".md": "markdown"}
root_doc = "index"
# Pages are the Markdown files; the rest of docs/ is their material (charts, API documents,
# benchmark data) or this build's output.
exclude_patterns = ["_build", "neo_api", "**/*.json", "**/*.txt"]

# MyST: `:::` fences, definition lists, and anchors on headings down to ###, so a page links to
# `page.md#some-heading` as it would on GitHub.
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

# The docstrings write code names in single backticks, as Markdown does.
default_role = "py:obj"
autodoc_default_options = {"show-inheritance": True}
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_class_signature = "separated"

html_theme = "furo"
html_title = f"airflow-provider-neo {release}"
