"""docker-compose.yaml's topology on this machine, without Docker: PostgreSQL and Redis from
Debian's packages, Airflow's api-server, scheduler, dag-processor, triggerer and two Celery
workers from the project venv, the Neo simulator and an SMTP server, all on loopback, with the
environment and commands the compose file declares (`deploy.compose`)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import requests

from airflow_provider_neo.simulator.customers_csv import export_customers
from airflow_provider_neo.simulator.process import SimulatorProcess
from demo.mailbox import Mailbox
from deploy import compose

POSTGRES_BIN = Path("/usr/lib/postgresql/15/bin")
WORKERS = ("worker-1", "worker-2")
AIRFLOW_SERVICES = (
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def ensure_packages() -> None:
    """Install PostgreSQL and Redis from Debian's packages when they are missing."""
    if (POSTGRES_BIN / "pg_ctl").exists() and shutil.which("redis-server"):
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "postgresql-15", "redis-server"], check=True, env=env
    )


class LocalTopology:
    def __init__(self, work_dir: Path) -> None:
        self.work_dir = work_dir
        self.compose = compose.load()
        self.ports = {name: free_port() for name in ("postgres", "redis", "api")}
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.simulator = SimulatorProcess(
            [*compose.simulator_arguments(self.compose)[4:], "--as-of", "2026-11-21"]
        )
        self.mailbox = Mailbox(work_dir / "mail")
        self.api = f"http://127.0.0.1:{self.ports['api']}"
        self._token = ""

    # --- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> LocalTopology:
        ensure_packages()
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.work_dir.chmod(0o755)
        try:
            self._start_postgres()
            redis = ["redis-server", "--port", str(self.ports["redis"]), "--bind", "127.0.0.1"]
            self._start("redis", [*redis, "--save", "", "--appendonly", "no"])
            self.simulator.start()
            self.mailbox.__enter__()
            self.airflow("db", "migrate")
            export_customers(self.simulator.url, self.data_dir / "customers.csv")
            for service in AIRFLOW_SERVICES:
                command = compose.service_command(self.compose, service)
                if service == "airflow-apiserver":
                    command += ["--port", str(self.ports["api"])]
                self._start(service, command, self.env())
            worker = compose.service_command(self.compose, "airflow-worker")
            for name in WORKERS:
                self._start(name, [*worker, "--concurrency", "2"], self.env(worker=name))
            self._wait_for_api()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for name in reversed(list(self.processes)):
            self.stop(name)
        self.mailbox.__exit__()
        self.simulator.stop()
        if (self.pg_dir / "PG_VERSION").exists():
            subprocess.run(
                ["su", "postgres", "-c", f"{POSTGRES_BIN}/pg_ctl -D {self.pg_dir} -m fast -w stop"],
                capture_output=True, check=False,
            )  # fmt: skip

    @property
    def pg_dir(self) -> Path:
        return self.work_dir / "postgres"

    @property
    def data_dir(self) -> Path:
        return self.work_dir / "data"

    @property
    def paths(self) -> dict[str, str]:
        """Container paths of the compose file and where they are on this machine."""
        return {"/opt/airflow/data": str(self.data_dir)}

    def _start_postgres(self) -> None:
        self.pg_dir.mkdir(exist_ok=True)
        shutil.chown(self.pg_dir, "postgres")

        def as_postgres(command: str) -> None:
            subprocess.run(["su", "postgres", "-c", command], check=True, capture_output=True)

        as_postgres(f"{POSTGRES_BIN}/initdb -D {self.pg_dir} -A trust -U postgres")
        options = f"-p {self.ports['postgres']} -k {self.pg_dir} -c listen_addresses=127.0.0.1"
        log = self.pg_dir / "server.log"  # inside its data folder: postgres may not write ours
        as_postgres(f"{POSTGRES_BIN}/pg_ctl -D {self.pg_dir} -o '{options}' -l {log} -w start")
        subprocess.run(
            ["psql", "-h", "127.0.0.1", "-p", str(self.ports["postgres"]), "-U", "postgres",
             "-c", "CREATE USER airflow PASSWORD 'airflow'",
             "-c", "CREATE DATABASE airflow OWNER airflow"],
            check=True, capture_output=True,
        )  # fmt: skip

    def _start(self, name: str, command: list[str], env: dict[str, str] | None = None) -> None:
        log = self.work_dir / "logs" / f"{name}.log"
        log.parent.mkdir(exist_ok=True)
        self.processes[name] = subprocess.Popen(
            command, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
            start_new_session=True, cwd=self.work_dir,
        )  # fmt: skip

    def stop(self, name: str, sig: int = signal.SIGTERM) -> None:
        process = self.processes.get(name)
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, sig)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def log(self, name: str) -> str:
        return (self.work_dir / "logs" / f"{name}.log").read_text(errors="replace")

    # --- Airflow ------------------------------------------------------------------------------

    def env(self, worker: str | None = None) -> dict[str, str]:
        addresses = {
            "postgres:5432": f"127.0.0.1:{self.ports['postgres']}",
            "redis:6379": f"127.0.0.1:{self.ports['redis']}",
            "airflow-apiserver:8080": f"127.0.0.1:{self.ports['api']}",
            "neo-simulator:8790": self.simulator.url.removeprefix("http://"),
            "mailpit:1025": f"{self.mailbox.host}:{self.mailbox.port}",
        }
        environment = {
            **os.environ,
            **compose.airflow_environment(self.compose, addresses, self.paths),
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "PYTHONPATH": str(compose.REPOSITORY),
            "AIRFLOW_HOME": str(self.work_dir / "airflow"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(compose.REPOSITORY / "dags"),
            # Containers have their own hostnames; on one machine the workers need names.
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "deploy.identity.hostname",
            "NEO_WORKER_NAME": worker or "",
        }
        return environment

    def airflow(
        self, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["airflow", *args], env=env or self.env(), capture_output=True, text=True,
            timeout=900, check=True, cwd=self.work_dir,
        )  # fmt: skip

    def _wait_for_api(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{self.api}/api/v2/monitor/health", timeout=5).ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(1)
        raise RuntimeError(
            f"the api-server did not come up: {self.log('airflow-apiserver')[-3000:]}"
        )

    def rest(self, method: str, path: str, **kwargs: Any) -> Any:
        """Airflow's REST API, as an external system calls it (a token from /auth/token)."""
        if not self._token:
            passwords = self.work_dir / "airflow" / "simple_auth_manager_passwords.json.generated"
            password = json.loads(passwords.read_text())["admin"]
            response = requests.post(
                f"{self.api}/auth/token",
                json={"username": "admin", "password": password},
                timeout=30,
            )
            response.raise_for_status()
            self._token = response.json()["access_token"]
        response = requests.request(
            method, f"{self.api}{path}", headers={"Authorization": f"Bearer {self._token}"},
            timeout=60, **kwargs,
        )  # fmt: skip
        response.raise_for_status()
        return response.json() if response.content else None

    def wait_for_dag(self, dag_id: str, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.rest("GET", f"/api/v2/dags/{dag_id}")
                return
            except requests.HTTPError:
                time.sleep(2)
        raise RuntimeError(f"{dag_id} was not parsed: {self.log('airflow-dag-processor')[-3000:]}")

    def trigger(self, dag_id: str, logical_date: str, conf: dict[str, Any] | None = None) -> str:
        self.wait_for_dag(dag_id)
        self.rest("PATCH", f"/api/v2/dags/{dag_id}", json={"is_paused": False})
        run = self.rest(
            "POST", f"/api/v2/dags/{dag_id}/dagRuns",
            json={"logical_date": logical_date, "conf": conf or {}},
        )  # fmt: skip
        return str(run["dag_run_id"])

    def run_state(self, dag_id: str, run_id: str) -> str:
        return str(self.rest("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")["state"])

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        found = self.rest("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances?limit=1000")
        return list(found["task_instances"])

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 420) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.run_state(dag_id, run_id)
            if state in ("success", "failed"):
                return state
            time.sleep(2)
        raise RuntimeError(f"{dag_id} {run_id} did not finish in {timeout} s")
