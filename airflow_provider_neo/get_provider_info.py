"""Provider metadata that Airflow reads through the ``apache_airflow_provider`` entry point."""

from __future__ import annotations

from typing import Any

from airflow_provider_neo import __version__
from airflow_provider_neo.connection import (
    CONN_TYPE,
    HOOK_NAME,
    conn_fields,
    ui_field_behaviour_kebab,
)

INTEGRATION = "Capillary Neo"


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "airflow-provider-neo",
        "name": "Capillary Neo",
        "description": "Capillary Neo loyalty-points API: points awarded, allocations, expiries.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": INTEGRATION,
                "external-doc-url": "https://docs.capillarytech.com/",
                "tags": ["service"],
            }
        ],
        "hooks": [
            {"integration-name": INTEGRATION, "python-modules": ["airflow_provider_neo.hooks.neo"]}
        ],
        "operators": [
            {
                "integration-name": INTEGRATION,
                "python-modules": [
                    "airflow_provider_neo.operators.neo",
                    "airflow_provider_neo.operators.reminders",
                    "airflow_provider_neo.operators.effectiveness",
                    "airflow_provider_neo.operators.points_earned",
                ],
            }
        ],
        "sensors": [
            {
                "integration-name": INTEGRATION,
                "python-modules": ["airflow_provider_neo.sensors.neo"],
            }
        ],
        "triggers": [
            {
                "integration-name": INTEGRATION,
                "python-modules": ["airflow_provider_neo.triggers.neo"],
            }
        ],
        "notifications": [],
        "connection-types": [
            {
                "hook-class-name": "airflow_provider_neo.hooks.neo.NeoHook",
                "hook-name": HOOK_NAME,
                "connection-type": CONN_TYPE,
                "conn-fields": conn_fields(),
                "ui-field-behaviour": ui_field_behaviour_kebab(),
            }
        ],
    }
