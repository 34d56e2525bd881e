"""Run the simulator in a child process: how Python code (tests, the demo, the deployment
check, benchmarks, a brand's own DAG tests) starts it and learns its URL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Sequence
from types import TracebackType
from typing import IO

from neo_simulator.server import READY_PREFIX

START_TIMEOUT_SECONDS = 120.0


class SimulatorProcess:
    """``with SimulatorProcess(["--customers", "500"]) as sim: requests.get(sim.url + ...)``.

    The simulator binds a free loopback port; `url` is known once it has printed that it listens.
    Its log goes to a temporary file, `log_path`, kept for reading when a test fails.
    """

    def __init__(self, args: Sequence[str] = (), *, host: str = "127.0.0.1") -> None:
        self.args = ["--host", host, "--port", "0", *args]
        self.url = ""
        self._process: subprocess.Popen[str] | None = None
        self._log: IO[str] | None = None
        self.log_path = ""

    def start(self) -> SimulatorProcess:
        self._log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed in stop()
            "w+", prefix="neo-simulator-", suffix=".log", delete=False
        )
        self.log_path = self._log.name
        self._process = subprocess.Popen(
            [sys.executable, "-m", "neo_simulator", *self.args],
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        ready = threading.Event()
        stdout = self._process.stdout
        assert stdout is not None

        def watch() -> None:
            for line in stdout:  # keep draining so the child never blocks on a full pipe
                if line.startswith(READY_PREFIX) and not ready.is_set():
                    self.url = line[len(READY_PREFIX) :].strip()
                    ready.set()
            ready.set()  # the child exited: stop waiting

        threading.Thread(target=watch, daemon=True).start()
        if not ready.wait(START_TIMEOUT_SECONDS) or not self.url:
            self.stop()
            raise RuntimeError(f"the simulator did not start; its log: {self.read_log()}")
        return self

    @property
    def pid(self) -> int:
        """The simulator's process id (to read its CPU time, say); it must be running."""
        if self._process is None:
            raise RuntimeError("the simulator is not running")
        return self._process.pid

    def read_log(self) -> str:
        with open(self.log_path) as log:
            return log.read()

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._log is not None:
            self._log.close()

    def __enter__(self) -> SimulatorProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
