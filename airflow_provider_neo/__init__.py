"""Apache Airflow provider for Capillary's Neo loyalty-points API."""

from __future__ import annotations

__version__ = "0.1.0"
