"""PostgreSQL and Redis servers from Debian's packages, started on loopback in a folder of their
own: the shared parts of the Celery topology (`deploy.topology`) and of the tests that prove a
promise across processes (one sent-ledger, one rate budget)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

POSTGRES_BIN = Path("/usr/lib/postgresql/15/bin")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def installed() -> bool:
    return (POSTGRES_BIN / "pg_ctl").exists() and shutil.which("redis-server") is not None


def ensure_installed() -> None:
    """Install PostgreSQL and Redis from Debian's packages when they are missing."""
    if installed():
        return
    script = Path(__file__).resolve().parent.parent / "scripts" / "install-servers"
    subprocess.run([str(script)], check=True)


class PostgresServer:
    """A throw-away PostgreSQL cluster: ``with PostgresServer(dir) as pg: pg.url("airflow")``.

    Trust authentication on 127.0.0.1 only; `create_database` adds a database and its owner."""

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.host = "127.0.0.1"

    def _as_postgres(self, command: str) -> None:
        # initdb and the server refuse to run as root.
        subprocess.run(["su", "postgres", "-c", command], check=True, capture_output=True)

    def start(self) -> PostgresServer:
        ensure_installed()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        shutil.chown(self.data_dir, "postgres")
        # su's user must be able to reach the data folder through its parents.
        for parent in self.data_dir.parents:
            if parent == Path("/"):
                break
            mode = parent.stat().st_mode
            if not mode & 0o001:
                parent.chmod(mode | 0o011)
        self._as_postgres(f"{POSTGRES_BIN}/initdb -D {self.data_dir} -A trust -U postgres")
        options = f"-p {self.port} -k {self.data_dir} -c listen_addresses={self.host}"
        log = self.data_dir / "server.log"  # inside its data folder: postgres may not write ours
        self._as_postgres(
            f"{POSTGRES_BIN}/pg_ctl -D {self.data_dir} -o '{options}' -l {log} -w start"
        )
        return self

    def stop(self) -> None:
        if (self.data_dir / "postmaster.pid").exists():
            stop = f"{POSTGRES_BIN}/pg_ctl -D {self.data_dir} -m fast -w stop"
            subprocess.run(["su", "postgres", "-c", stop], capture_output=True, check=False)

    def psql(self, *commands: str, database: str = "postgres") -> None:
        arguments = [arg for command in commands for arg in ("-c", command)]
        subprocess.run(
            ["psql", "-h", self.host, "-p", str(self.port), "-U", "postgres", "-d", database,
             "-v", "ON_ERROR_STOP=1", *arguments],
            check=True, capture_output=True,
        )  # fmt: skip

    def create_database(self, name: str, owner: str, password: str) -> None:
        self.psql(
            f"CREATE USER {owner} PASSWORD '{password}'", f"CREATE DATABASE {name} OWNER {owner}"
        )

    def url(self, database: str, user: str = "postgres", password: str = "") -> str:
        secret = f":{password}" if password else ""
        return f"postgresql://{user}{secret}@{self.host}:{self.port}/{database}"

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class RedisServer:
    """A Redis server with no persistence: ``with RedisServer() as redis: redis.url``."""

    def __init__(self, port: int | None = None, log_path: Path | None = None) -> None:
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self.log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def start(self) -> RedisServer:
        ensure_installed()
        log = self.log_path.open("wb") if self.log_path else None
        try:
            self._process = subprocess.Popen(
                ["redis-server", "--port", str(self.port), "--bind", self.host,
                 "--save", "", "--appendonly", "no"],
                stdout=log or subprocess.DEVNULL, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        finally:
            if log is not None:
                log.close()  # the server writes through its own copy of the descriptor
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.create_connection((self.host, self.port), timeout=1) as probe:
                    probe.sendall(b"PING\r\n")
                    if probe.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"redis-server did not answer on port {self.port}")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
