"""docker-compose.yaml as data: the Airflow environment and service commands it sets, with its
service addresses mapped to local ones, so the no-Docker topology runs exactly what it declares."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

REPOSITORY = Path(__file__).resolve().parent.parent
COMPOSE_FILE = REPOSITORY / "docker-compose.yaml"


def load(path: Path = COMPOSE_FILE) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())  # type: ignore[no-any-return]


def airflow_environment(
    compose: Mapping[str, Any],
    addresses: Mapping[str, str],
    paths: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The x-airflow-common environment, with `service:port` addresses replaced by `addresses`
    (e.g. ``{"postgres:5432": "127.0.0.1:55432"}``), in URLs and in connection JSON alike, and
    container paths by `paths` (e.g. ``{"/opt/airflow/data": "/tmp/x/data"}``)."""
    environment: dict[str, str] = {}
    for key, value in compose["x-airflow-common"]["environment"].items():
        text = str(value)
        if key.startswith("AIRFLOW_CONN_"):
            conn = json.loads(text)
            address = addresses.get(f"{conn['host']}:{conn['port']}")
            if address:
                host, _, port = address.rpartition(":")
                conn["host"], conn["port"] = host, int(port)
            text = json.dumps(conn)
        else:
            for service, address in addresses.items():
                text = re.sub(rf"(?<=[@/]){re.escape(service)}\b", address, text)
            for container_path, local_path in (paths or {}).items():
                if text == container_path or text.startswith(container_path + "/"):
                    text = local_path + text[len(container_path) :]
        environment[key] = text
    return environment


def service_command(compose: Mapping[str, Any], service: str) -> list[str]:
    """The airflow command a service runs, e.g. ``["airflow", "celery", "worker"]``."""
    command = compose["services"][service]["command"]
    words = command.split() if isinstance(command, str) else list(command)
    return ["airflow", *words]


def simulator_arguments(compose: Mapping[str, Any]) -> list[str]:
    return [str(word) for word in compose["services"]["neo-simulator"]["command"]]
