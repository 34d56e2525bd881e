"""Provider metadata that Airflow reads through the ``apache_airflow_provider`` entry point."""

from __future__ import annotations

from typing import Any

from airflow_provider_neo import __version__


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "airflow-provider-neo",
        "name": "Capillary Neo",
        "description": "Capillary Neo loyalty-points API: points awarded, allocations, expiries.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "Capillary Neo",
                "external-doc-url": "https://docs.capillarytech.com/",
                "tags": ["service"],
            }
        ],
        "hooks": [],
        "operators": [],
        "sensors": [],
        "triggers": [],
        "notifications": [],
        "connection-types": [],
    }
