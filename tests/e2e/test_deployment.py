"""docker-compose.yaml: valid for a real compose implementation, in Airflow's official shape, and
the very environment and commands that scripts/local-topology runs without Docker."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from deploy import compose
from deploy.topology import AIRFLOW_SERVICES, LocalTopology

AIRFLOW_SERVICE_NAMES = {*AIRFLOW_SERVICES, "airflow-worker", "airflow-init"}


def test_compose_file_is_valid_for_docker_compose() -> None:
    binary = shutil.which("docker-compose")
    if binary is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI installs Debian's docker-compose; it is missing")
        pytest.skip("Debian's docker-compose is not installed (apt-get install docker-compose)")
    result = subprocess.run(
        [binary, "-f", str(compose.COMPOSE_FILE), "config", "-q"],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    resolved = subprocess.run(
        [binary, "-f", str(compose.COMPOSE_FILE), "config", "--services"],
        capture_output=True, text=True, check=True, timeout=120,
    ).stdout.split()  # fmt: skip
    assert set(resolved) == {
        *AIRFLOW_SERVICE_NAMES,
        "postgres",
        "redis",
        "neo-simulator",
        "mailpit",
    }


def test_compose_has_the_official_airflow_3_shape() -> None:
    spec = compose.load()
    env = spec["x-airflow-common"]["environment"]
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__CORE__TEST_CONNECTION"] == "Enabled"
    assert (
        env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/"
    )
    assert spec["services"]["postgres"]["image"] == "postgres:16"
    assert spec["services"]["redis"]["image"].startswith("redis:7.2")
    assert spec["services"]["mailpit"]["image"] == "axllent/mailpit"
    conn = json.loads(env["AIRFLOW_CONN_NEO_DEFAULT"])
    assert (conn["conn_type"], conn["host"], conn["port"]) == ("neo", "neo-simulator", 8790)
    assert json.loads(env["AIRFLOW_CONN_SMTP_DEFAULT"])["host"] == "mailpit"
    commands = {name: compose.service_command(spec, name) for name in AIRFLOW_SERVICES}
    commands["airflow-worker"] = compose.service_command(spec, "airflow-worker")
    assert commands == {
        "airflow-apiserver": ["airflow", "api-server"],
        "airflow-scheduler": ["airflow", "scheduler"],
        "airflow-dag-processor": ["airflow", "dag-processor"],
        "airflow-triggerer": ["airflow", "triggerer"],
        "airflow-worker": ["airflow", "celery", "worker"],
    }


def test_dockerfile_pins_airflow_in_the_same_install_as_the_provider() -> None:
    dockerfile = (compose.REPOSITORY / "Dockerfile").read_text()
    assert dockerfile.splitlines()[2] == "FROM apache/airflow:3.3.2"
    (install,) = [line for line in dockerfile.splitlines() if line.startswith("RUN pip install")]
    assert '"apache-airflow==3.3.2"' in install
    assert "airflow-provider-neo[celery]" in install
    assert "/opt/airflow-provider-neo/neo-simulator" in install


def test_compose_runs_the_simulator_distributions_commands() -> None:
    """The neo-simulator service and airflow-init's CRM export run what the neo-simulator
    distribution installs (its console script and its customers_csv module), and airflow-init
    prepares the sent-ledger with the provider's own command."""
    spec = compose.load()
    assert spec["services"]["neo-simulator"]["entrypoint"] == ["neo-simulator"]
    assert (Path(sys.executable).parent / "neo-simulator").exists()
    init = spec["services"]["airflow-init"]["command"][-1]
    modules = re.findall(r"python -m ([\w.]+)", init)
    assert modules == ["airflow_provider_neo.reminders.ledger", "neo_simulator.customers_csv"]
    assert all(importlib.util.find_spec(module) is not None for module in modules)


def test_airflow_init_creates_the_neo_pool_the_rate_budget_allows() -> None:
    """docs/deployment.md: slots = requests_per_minute // max_concurrency of the connection."""
    spec = compose.load()
    neo = json.loads(spec["x-airflow-common"]["environment"]["AIRFLOW_CONN_NEO_DEFAULT"])
    init = spec["services"]["airflow-init"]["command"][-1]
    pool = re.search(r'airflow pools set neo (\d+) "Neo API"', init)
    assert pool is not None
    extra = neo["extra"]
    assert int(pool.group(1)) == extra["requests_per_minute"] // extra["max_concurrency"] == 11


def test_the_local_topology_runs_the_compose_environment_and_commands(tmp_path: object) -> None:
    """The two cannot drift apart: every compose variable reaches the local processes, with only
    the service addresses changed to their loopback counterparts."""
    topology = LocalTopology(Path(str(tmp_path)))
    topology.simulator.url = "http://127.0.0.1:18790"
    spec = compose.load()
    local = topology.env(worker="worker-1")
    for key, value in spec["x-airflow-common"]["environment"].items():
        assert key in local
        expected = str(value)
        for service, address in {
            "postgres:5432": f"127.0.0.1:{topology.postgres.port}",
            "redis:6379": f"127.0.0.1:{topology.redis.port}",
            "airflow-apiserver:8080": f"127.0.0.1:{topology.api_port}",
        }.items():
            expected = expected.replace(f"@{service}", f"@{address}")
            expected = expected.replace(f"//{service}", f"//{address}")
        for container_path, local_path in topology.paths.items():
            if expected.startswith(container_path):
                expected = local_path + expected[len(container_path) :]
        if key.startswith("AIRFLOW_CONN_"):
            declared, running = json.loads(expected), json.loads(local[key])
            assert {k: v for k, v in running.items() if k not in ("host", "port")} == {
                k: v for k, v in declared.items() if k not in ("host", "port")
            }
            assert running["host"] == "127.0.0.1"
        else:
            assert local[key] == expected, key
    simulator = compose.simulator_arguments(spec)
    assert topology.simulator.args[4:] == [*simulator[4:], "--as-of", "2026-11-21"]


def test_the_topology_runs_airflow_inits_command_with_local_addresses_and_paths(
    tmp_path: Path,
) -> None:
    topology = LocalTopology(tmp_path)
    topology.simulator.url = "http://127.0.0.1:18790"
    bash, flag, script = compose.init_command(topology.compose, topology.addresses, topology.paths)
    assert (bash, flag) == ("/bin/bash", "-c")
    assert script == (
        "airflow db migrate"
        ' && airflow pools set neo 11 "Neo API"'
        " && python -m airflow_provider_neo.reminders.ledger --conn-id neo_ledger --create-database"
        " && python -m neo_simulator.customers_csv --url http://127.0.0.1:18790"
        f" --out {tmp_path}/data/customers.csv"
    )
