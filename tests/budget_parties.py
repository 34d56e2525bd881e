"""Run several budget workers (tests/budget_worker.py) as separate OS processes, started at one
moment, and gather what they report: the one helper behind the cross-process budget test and
the shared-budget benchmark."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
WORKER = ROOT / "tests" / "budget_worker.py"
START_TIMEOUT_SECONDS = 120.0


@dataclass(frozen=True)
class PartiesRun:
    reports: list[dict[str, Any]]

    @property
    def requests(self) -> int:
        return sum(r["requests"] for r in self.reports)

    @property
    def limited(self) -> int:
        return sum(r["limited"] for r in self.reports)

    @property
    def rows(self) -> int:
        return sum(r["rows"] for r in self.reports)

    @property
    def errors(self) -> list[str]:
        return [r["error"] for r in self.reports if r["error"]]

    @property
    def seconds(self) -> float:
        start = min(r["started"] for r in self.reports)
        return float(max(r["finished"] for r in self.reports) - start)

    @property
    def accepted_per_second(self) -> float:
        """Requests Neo accepted (not 429) per second, from the start to the last answer."""
        return (self.requests - self.limited) / self.seconds


def run_parties(
    shares: Sequence[Sequence[int]],
    overrides: Mapping[str, Any],
    env: Mapping[str, str] | None = None,
    timeout: float = 300.0,
) -> PartiesRun:
    """One process per share of customers, all with the same hook overrides; they start fetching
    together once every one of them has imported Airflow and read its connection."""
    environment = {**(env or os.environ), "PYTHONPATH": str(ROOT)}  # this checkout's package
    jobs = [json.dumps({"customers": list(c), "overrides": dict(overrides)}) for c in shares]
    processes = [
        subprocess.Popen(
            [sys.executable, str(WORKER), job],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=environment,
        )
        for job in jobs
    ]
    try:
        for process in processes:
            assert process.stdout is not None
            line = process.stdout.readline()
            if line.strip() != "ready":
                raise RuntimeError(f"a budget worker did not start: {line!r}")
        for process in processes:
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.flush()
        reports = []
        for process in processes:
            out, _ = process.communicate(timeout=timeout)
            reports.append(json.loads(out.strip().splitlines()[-1]))
        return PartiesRun(reports)
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
