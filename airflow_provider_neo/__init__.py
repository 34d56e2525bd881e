"""Apache Airflow provider for Capillary's Neo loyalty-points API."""

from __future__ import annotations

from importlib.metadata import version

# pyproject.toml holds the version; the installed distribution's metadata carries it here.
__version__ = version("airflow-provider-neo")
