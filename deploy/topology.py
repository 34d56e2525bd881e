"""docker-compose.yaml's topology on this machine, without Docker: PostgreSQL and Redis from
Debian's packages, Airflow's api-server, scheduler, dag-processor, triggerer and two Celery
workers from the project venv, the Neo simulator and an SMTP server, all on loopback, with the
environment and commands the compose file declares (`deploy.compose`)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import requests

from demo.mailbox import Mailbox
from deploy import compose
from deploy.servers import PostgresServer, RedisServer, free_port
from neo_simulator.process import SimulatorProcess

WORKERS = ("worker-1", "worker-2")
AIRFLOW_SERVICES = (
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
)


class LocalTopology:
    def __init__(self, work_dir: Path) -> None:
        self.work_dir = work_dir
        self.compose = compose.load()
        self.api_port = free_port()
        self.postgres = PostgresServer(work_dir / "postgres")
        self.redis = RedisServer(log_path=work_dir / "redis.log")
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.simulator = SimulatorProcess(
            [*compose.simulator_arguments(self.compose)[4:], "--as-of", "2026-11-21"]
        )
        self.mailbox = Mailbox(work_dir / "mail")
        self.api = f"http://127.0.0.1:{self.api_port}"
        self._token = ""

    # --- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> LocalTopology:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        try:
            self.postgres.start()
            self.postgres.create_database("airflow", owner="airflow", password="airflow")
            # The compose postgres image makes its POSTGRES_USER a superuser: it may create the
            # sent-ledger's database.
            self.postgres.psql("ALTER USER airflow CREATEDB")
            self.redis.start()
            self.simulator.start()
            self.mailbox.__enter__()
            self.data_dir.mkdir(exist_ok=True)
            # What airflow-init does: migrate, create the sent-ledger, write the CRM extract.
            init = compose.init_command(self.compose, self.addresses, self.paths)
            subprocess.run(
                init, env=self.env(), check=True, capture_output=True, timeout=600,
                cwd=self.work_dir,
            )  # fmt: skip
            for service in AIRFLOW_SERVICES:
                command = compose.service_command(self.compose, service)
                if service == "airflow-apiserver":
                    command += ["--port", str(self.api_port)]
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
        self.redis.stop()
        self.postgres.stop()

    @property
    def data_dir(self) -> Path:
        return self.work_dir / "data"

    @property
    def paths(self) -> dict[str, str]:
        """Container paths of the compose file and where they are on this machine."""
        return {"/opt/airflow/data": str(self.data_dir)}

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

    @property
    def addresses(self) -> dict[str, str]:
        """The compose services' addresses and where they are on this machine."""
        return {
            "postgres:5432": f"127.0.0.1:{self.postgres.port}",
            "redis:6379": f"127.0.0.1:{self.redis.port}",
            "airflow-apiserver:8080": f"127.0.0.1:{self.api_port}",
            "neo-simulator:8790": self.simulator.url.removeprefix("http://"),
            "mailpit:1025": f"{self.mailbox.host}:{self.mailbox.port}",
        }

    def env(self, worker: str | None = None) -> dict[str, str]:
        environment = {
            **os.environ,
            **compose.airflow_environment(self.compose, self.addresses, self.paths),
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "PYTHONPATH": str(compose.REPOSITORY),
            "AIRFLOW_HOME": str(self.work_dir / "airflow"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(compose.REPOSITORY / "dags"),
            # Containers have their own hostnames; on one machine the workers need names.
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "deploy.identity.hostname",
            "NEO_WORKER_NAME": worker or "",
            # The checks trigger every run they look at: the scheduler makes none of its own for
            # the latest day, so what they see does not depend on the calendar.
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
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
