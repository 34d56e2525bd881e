"""Everything the example DAGs need on one machine: the Neo simulator with generated data, a
local SMTP server, the customers CSV of the brand's CRM, an Airflow home on SQLite, and the
connections, as `make demo` and the end-to-end tests use them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import requests

from demo.mailbox import Mailbox
from neo_simulator.customers_csv import export_customers
from neo_simulator.process import SimulatorProcess

REPOSITORY = Path(__file__).resolve().parent.parent
DEMO_DATE = "2026-11-21"
UNSUBSCRIBE_SECRET = "demo-unsubscribe-secret"


class DemoEnvironment:
    def __init__(
        self,
        work_dir: Path,
        *,
        customers: int = 3_000,
        as_of: str = DEMO_DATE,
        timezone: str = "Asia/Kolkata",
        simulator_args: tuple[str, ...] = (),
        airflow_bin: Path | None = None,
    ) -> None:
        self.work_dir = work_dir
        # Where `airflow` and its Python live: this venv's, or another installation's (the
        # compatibility matrix runs the DAGs on each supported Airflow release).
        self.airflow_bin = airflow_bin or Path(sys.executable).parent
        self.data_dir = work_dir / "data"
        self.airflow_home = work_dir / "airflow"
        self.timezone = timezone
        self.simulator = SimulatorProcess(
            [
                "--customers", str(customers), "--as-of", as_of, "--timezone", timezone,
                "--db", str(work_dir / "neo-simulator.sqlite3"), *simulator_args,
            ]
        )  # fmt: skip
        self.mailbox = Mailbox(work_dir / "mail")

    @property
    def db_path(self) -> Path:
        return self.work_dir / "neo-simulator.sqlite3"

    @property
    def customers_csv(self) -> Path:
        return self.data_dir / "customers.csv"

    def __enter__(self) -> DemoEnvironment:
        for folder in (self.data_dir, self.airflow_home):
            folder.mkdir(parents=True, exist_ok=True)
        self.simulator.start()
        try:
            self.mailbox.__enter__()
            self._export_customers()
            self.airflow("db", "migrate")
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
        self.mailbox.__exit__()
        self.simulator.stop()

    def _export_customers(self) -> None:
        """The brand's CRM extract: the simulator's customers as customer_id,email,first_name."""
        export_customers(self.simulator.url, self.customers_csv)

    def neo_connection(self, **extra: Any) -> str:
        """The `neo` connection to the simulator as JSON, with `extra` added to its extras."""
        neo = urlsplit(self.simulator.url)
        return json.dumps(
            {
                "conn_type": "neo",
                "host": neo.hostname,
                "port": neo.port,
                "schema": "http",
                "login": "neo_user",
                "password": "neo_password",
                "extra": {"timezone": self.timezone, "max_concurrency": 8, **extra},
            }
        )

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "PATH": f"{self.airflow_bin}{os.pathsep}{os.environ.get('PATH', '')}",
            "AIRFLOW_HOME": str(self.airflow_home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPOSITORY / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "NEO_DATA_DIR": str(self.data_dir),
            "AIRFLOW_CONN_NEO_DEFAULT": self.neo_connection(),
            # The brand's secret that signs unsubscribe links (a demo value, not Neo's).
            "AIRFLOW_VAR_NEO_UNSUBSCRIBE_SECRET": UNSUBSCRIBE_SECRET,
            "AIRFLOW_CONN_SMTP_DEFAULT": json.dumps(
                {
                    "conn_type": "smtp",
                    "host": self.mailbox.host,
                    "port": self.mailbox.port,
                    "extra": {"disable_tls": True, "disable_ssl": True, "timeout": 10},
                }
            ),
        }

    def airflow(
        self, *args: str, check: bool = True, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """An airflow command in this environment (`env` adds to or overrides its variables)."""
        return subprocess.run(
            self.airflow_command(*args),
            env={**self.env(), **(env or {})}, capture_output=True, text=True, timeout=900,
            check=check,
        )  # fmt: skip

    def airflow_command(self, *args: str) -> list[str]:
        return [str(self.airflow_bin / "airflow"), *args]

    def dags_test(
        self,
        dag_id: str,
        date: str = DEMO_DATE,
        conf: dict[str, Any] | None = None,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        return self.airflow(*self.dags_test_args(dag_id, date, conf), check=False, env=env)

    @staticmethod
    def dags_test_args(dag_id: str, date: str, conf: dict[str, Any] | None = None) -> list[str]:
        args = ["dags", "test", dag_id, date]
        if conf:
            args += ["--conf", json.dumps(conf)]
        return args

    @property
    def ledger_path(self) -> Path:
        """The reminder DAG's sent-ledger (its default ``ledger_path`` here)."""
        return self.data_dir / "neo" / "sent-ledger.sqlite3"

    def settle(self, through: str, reminded_customer_ids: list[int], **shares: float) -> Any:
        """Let time pass in the simulator (`POST /__sim/settle`): points expiring by `through`
        are redeemed or expire, reminded customers redeeming more often."""
        answer = requests.post(
            f"{self.simulator.url}/__sim/settle",
            json={"through": through, "reminded_customer_ids": reminded_customer_ids, **shares},
            timeout=60,
        )
        answer.raise_for_status()
        return answer.json()

    def neo_requests(self) -> int:
        stats = requests.get(f"{self.simulator.url}/__sim/stats", timeout=10).json()
        return int(stats["total"])
