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
            if "extra" in conn:  # URLs in extras, e.g. the rate budget's Redis
                extra = conn["extra"].items()
                conn["extra"] = {
                    key: _localize(value, addresses, paths or {}) for key, value in extra
                }
            text = json.dumps(conn)
        else:
            text = _localize(text, addresses, paths or {})
        environment[key] = text
    return environment


def _localize(text: Any, addresses: Mapping[str, str], paths: Mapping[str, str]) -> Any:
    """`text` with `service:port` addresses (in URLs) and container paths (as whole words)
    replaced by their local counterparts; anything but a string as it is."""
    if not isinstance(text, str):
        return text
    for service, address in addresses.items():
        text = re.sub(rf"(?<=[@/]){re.escape(service)}\b", address, text)
    for container_path, local_path in paths.items():
        text = re.sub(rf"(?<![^\s=]){re.escape(container_path)}(?=/|\s|$)", local_path, text)
    return text


def init_command(
    compose: Mapping[str, Any], addresses: Mapping[str, str], paths: Mapping[str, str]
) -> list[str]:
    """airflow-init's entrypoint and command, with addresses and paths made local."""
    service = compose["services"]["airflow-init"]
    words = [service["entrypoint"], *service["command"]]
    return [_localize(str(word), addresses, paths) for word in words]


def service_command(compose: Mapping[str, Any], service: str) -> list[str]:
    """The airflow command a service runs, e.g. ``["airflow", "celery", "worker"]``."""
    command = compose["services"][service]["command"]
    words = command.split() if isinstance(command, str) else list(command)
    return ["airflow", *words]


def simulator_arguments(compose: Mapping[str, Any]) -> list[str]:
    return [str(word) for word in compose["services"]["neo-simulator"]["command"]]
