"""The reminder workflow at a brand's size: the example DAG on 100,000, 300,000 and 1,000,000
generated customers, and what a day at 10,000,000 would take at several Neo rate budgets.

    make bench-scale                          # the full run: the figures of docs/benchmarks.md
    make bench-scale ARGS=--quick             # 3,000 customers: proves the benchmark still runs
    make bench-scale ARGS="--customers 100000 --shard-size 1560"

Each size runs in a demo environment of its own (`demo.environment.DemoEnvironment`: the
simulator generating the customers, the local SMTP server, SQLite for Airflow and the ledger)
with `airflow dags test`, which runs every task one after another in one process. Figures:

- wall time per task kind, from Airflow's own task instances (all instances and the longest);
- Neo requests per 1,000 customers, counted by the simulator (`/__sim/stats`);
- peak RSS per task: `dags test` runs the tasks in its own process, so this process watches
  its log and, as each task starts, resets the process's high-water mark
  (`/proc/<pid>/clear_refs`) and reads it back when the next begins: the peak RSS of the
  process while that task ran, imports and Airflow included, an upper bound for the task's own
  process under Celery (where every task starts in a fresh one);
- the sent-ledger's rows and size, and the metadata database's task instances.

Results go to `.bench/reminder_scale.json`; a full run also writes `docs/benchmarks-scale.json`,
the chart `docs/benchmarks-scale.svg` and the scale section of `docs/benchmarks.md`, with the
10,000,000-customer projection computed from the largest run. Benchmarks are never timed tests:
nothing here fails on a figure.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import requests

REPOSITORY = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPOSITORY))  # the demo environment

from demo.environment import DEMO_DATE, DemoEnvironment  # noqa: E402

RESULTS = REPOSITORY / ".bench" / "reminder_scale.json"
WORK = REPOSITORY / ".bench" / "reminder-scale"
DOCS = REPOSITORY / "docs"
DAG_ID = "neo_points_expiry_reminder"
FULL_SIZES = (100_000, 300_000, 1_000_000)
QUICK_SIZES = (3_000,)
# Two full paIds batches: about 780 nine-digit ids fill the default 8,000-character URL, so a
# shard of 1,560 costs 2 requests per (program, expiry day) query, the API's floor.
SHARD_SIZE = 1_560
QUERIES = 3 * 3  # 3 programs x 3 lead times
KINDS = ("expiry_days", "split_customers", "find", "send", "publish", "export")
BUDGETS = (100, 300, 1_000, 3_000, 6_000)  # Neo requests per minute, for the projection
WORKER_SLOTS = (8, 32)  # Celery slots running tasks at once, for the projection
PROJECTED = 10_000_000
RUNNING = re.compile(r"\[DAG TEST\] running task <TaskInstance: (\S+) \S+(?: map_index=(\d+))? \[")


def kind(task_id: str) -> str:
    last = task_id.rsplit(".", 1)[-1]
    return "export" if last.startswith("export") else last


class TaskMemory:
    """Peak RSS of the `dags test` process while each task ran, from its log as it streams."""

    def __init__(self, pid: int, log: Path) -> None:
        self.pid = pid
        self.log = log
        self.peaks: list[dict[str, Any]] = []
        self.startup_peak_kib = 0
        self._current: tuple[str, int] | None = None
        self._start_rss = 0

    def _status(self) -> dict[str, int]:
        fields = {}
        with open(f"/proc/{self.pid}/status") as handle:
            for line in handle:
                if line.startswith(("VmHWM:", "VmRSS:")):
                    name, value = line.split(":", 1)
                    fields[name] = int(value.split()[0])
        return fields

    def _task_ended(self) -> None:
        try:
            status = self._status()
        except (FileNotFoundError, ProcessLookupError):
            return
        if self._current is None:
            self.startup_peak_kib = status["VmHWM"]
        else:
            task_id, map_index = self._current
            self.peaks.append(
                {
                    "task_id": task_id,
                    "map_index": map_index,
                    "peak_kib": status["VmHWM"],
                    "start_kib": self._start_rss,
                }
            )

    def _task_started(self, task: tuple[str, int] | None) -> None:
        self._task_ended()
        self._current = task
        try:
            with open(f"/proc/{self.pid}/clear_refs", "w") as handle:
                handle.write("5")  # the high-water mark starts again from the current RSS
            self._start_rss = self._status()["VmRSS"]
        except (FileNotFoundError, ProcessLookupError):
            pass

    def follow(self, stream: Any) -> None:
        with self.log.open("w") as out:
            for line in stream:
                out.write(line)
                found = RUNNING.search(line)
                if found:
                    task_id = found.group(1).removeprefix(f"{DAG_ID}.")
                    self._task_started((task_id, int(found.group(2) or -1)))
                elif "DagRun Finished" in line:
                    self._task_started(None)


def run_size(customers: int, shard_size: int) -> dict[str, Any]:
    work_dir = WORK / str(customers)
    shutil.rmtree(work_dir, ignore_errors=True)
    print(f"{customers:,} customers: building the simulator's data ...", flush=True)
    started = time.perf_counter()
    with DemoEnvironment(work_dir, customers=customers) as env:
        ready = time.perf_counter()
        print(f"  ready in {ready - started:.0f} s; airflow dags test ...", flush=True)
        shards = math.ceil(customers / shard_size)
        env_vars = {
            **env.env(),
            "PYTHONUNBUFFERED": "1",
            # Airflow maps at most this many instances; the default (1,024) until the split
            # bounds its shards by itself.
            "AIRFLOW__CORE__MAX_MAP_LENGTH": str(max(1_024, shards)),
        }
        command = env.airflow_command(
            *env.dags_test_args(DAG_ID, DEMO_DATE, {"shard_size": shard_size})
        )
        process = subprocess.Popen(
            command, env=env_vars, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            errors="replace",
        )  # fmt: skip
        memory = TaskMemory(process.pid, work_dir / "dags-test.log")
        follower = threading.Thread(target=memory.follow, args=(process.stdout,))
        follower.start()
        returncode = process.wait()
        follower.join()
        dag_seconds = time.perf_counter() - ready
        served = requests.get(f"{env.simulator.url}/__sim/stats", timeout=60).json()
        emails = env.mailbox.count()
        if returncode != 0:
            raise RuntimeError(f"the reminder DAG failed; see {work_dir / 'dags-test.log'}")
        result = measure(env, customers, shard_size, served, memory)
    result |= {
        "emails": emails,
        "setup_seconds": round(ready - started, 1),
        "dags_test_seconds": round(dag_seconds, 1),
    }
    shutil.rmtree(work_dir, ignore_errors=True)  # a million customers leave gigabytes
    return result


def measure(
    env: DemoEnvironment,
    customers: int,
    shard_size: int,
    served: dict[str, Any],
    memory: TaskMemory,
) -> dict[str, Any]:
    by_endpoint = {name: sum(statuses.values()) for name, statuses in served["requests"].items()}
    discovery = by_endpoint.get("points_awarded", 0)
    tasks: dict[str, dict[str, Any]] = {}
    database = env.airflow_home / "airflow.db"
    with sqlite3.connect(database) as db:
        for task_id, duration in db.execute("SELECT task_id, duration FROM task_instance"):
            figures = tasks.setdefault(
                kind(task_id), {"instances": 0, "seconds_total": 0.0, "seconds_max": 0.0}
            )
            figures["instances"] += 1
            figures["seconds_total"] += duration or 0.0
            figures["seconds_max"] = max(figures["seconds_max"], duration or 0.0)
        metadata = {
            "task_instances": db.execute("SELECT COUNT(*) FROM task_instance").fetchone()[0],
            "xcom_rows": db.execute("SELECT COUNT(*) FROM xcom").fetchone()[0],
            "size_mb": round(database.stat().st_size / 1e6, 1),
        }
    for peak in memory.peaks:
        figures = tasks.setdefault(kind(peak["task_id"]), {})
        figures["peak_rss_mb"] = max(figures.get("peak_rss_mb", 0.0), peak["peak_kib"] / 1024)
        growth = (peak["peak_kib"] - peak["start_kib"]) / 1024
        figures["growth_mb"] = max(figures.get("growth_mb", 0.0), growth)
    for figures in tasks.values():
        for name in ("seconds_total", "seconds_max", "peak_rss_mb", "growth_mb"):
            if name in figures:
                figures[name] = round(figures[name], 1 if "mb" in name else 2)
    summary = json.loads(
        (env.data_dir / "neo" / "reminders" / f"{DEMO_DATE}.summary.json").read_text()
    )
    return {
        "customers": customers,
        "shard_size": shard_size,
        "shards": math.ceil(customers / shard_size),
        "requests_by_endpoint": by_endpoint,
        "discovery_requests": discovery,
        "discovery_requests_per_1000_customers": round(1000 * discovery / customers, 2),
        "neo_requests_per_1000_customers": round(1000 * sum(by_endpoint.values()) / customers, 2),
        "reminders": sum(lead["customers"] for lead in summary["lead_times"].values()),
        "tasks": {name: tasks[name] for name in KINDS if name in tasks},
        "process_peak_rss_mb": round(
            max([memory.startup_peak_kib, *(p["peak_kib"] for p in memory.peaks)]) / 1024, 1
        ),
        "ledger": ledger_figures(env.ledger_path),
        "metadata_database": metadata,
    }


def ledger_figures(path: Path) -> dict[str, Any]:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        tables = [
            name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        ]
        rows = {name: db.execute(f'SELECT COUNT(*) FROM "{name}"').fetchone()[0] for name in tables}
    size = sum(p.stat().st_size for p in path.parent.glob(f"{path.name}*"))
    return {"rows": rows, "size_mb": round(size / 1e6, 2)}


# --- across sizes ----------------------------------------------------------------------------


def linearity(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per task kind: seconds per 1,000 customers at each size, and the largest size's against
    the smallest's (1.0: linear; 1.2: 20% more per customer)."""
    smallest, largest = runs[0], runs[-1]
    result = {}
    for name in KINDS:
        if name not in smallest["tasks"] or name not in largest["tasks"]:
            continue
        per_1000 = [
            1000 * run["tasks"][name]["seconds_total"] / run["customers"]
            for run in runs
            if name in run["tasks"]
        ]
        result[name] = {
            "seconds_per_1000_customers": [round(x, 3) for x in per_1000],
            "largest_over_smallest": round(per_1000[-1] / per_1000[0], 2) if per_1000[0] else None,
        }
    return result


def projection(largest: dict[str, Any]) -> dict[str, Any]:
    """A day at 10,000,000 customers from the largest run, scaled linearly: the Neo requests
    against each rate budget, and the tasks' own time on a number of worker slots."""
    scale = PROJECTED / largest["customers"]
    discovery = largest["discovery_requests"] * scale
    every = sum(largest["requests_by_endpoint"].values()) * scale
    task_seconds = sum(t["seconds_total"] for t in largest["tasks"].values()) * scale
    return {
        "customers": PROJECTED,
        "discovery_requests": round(discovery),
        "neo_requests": round(every),
        "hours_by_budget": {
            str(budget): {
                "discovery": round(discovery / budget / 60, 2),
                "all": round(every / budget / 60, 2),
            }
            for budget in BUDGETS
        },
        "task_hours_serial": round(task_seconds / 3600, 2),
        "task_hours_on_slots": {str(s): round(task_seconds / 3600 / s, 2) for s in WORKER_SLOTS},
    }


# --- the report --------------------------------------------------------------------------------


def render(results: dict[str, Any]) -> str:
    runs = results["runs"]
    head = " | ".join(f"{run['customers']:,}" for run in runs)
    lines = [f"| figure | {head} |", "|---" * (len(runs) + 1) + "|"]

    def row(label: str, cells: Sequence[str]) -> None:
        lines.append(f"| {label} | {' | '.join(cells)} |")

    row("shards (customers each)", [f"{r['shards']:,} ({r['shard_size']:,})" for r in runs])
    row(
        "paIds requests (per 1,000 customers)",
        [
            f"{r['discovery_requests']:,} ({r['discovery_requests_per_1000_customers']})"
            for r in runs
        ],
    )
    row(
        "all Neo requests, with the export (per 1,000)",
        [
            f"{sum(r['requests_by_endpoint'].values()):,} ({r['neo_requests_per_1000_customers']})"
            for r in runs
        ],
    )
    for name in KINDS:
        row(
            f"`{name}` s, all instances (longest)",
            [
                f"{r['tasks'][name]['seconds_total']:,} ({r['tasks'][name]['seconds_max']})"
                if name in r["tasks"]
                else "-"
                for r in runs
            ],
        )
    for name in KINDS:
        row(
            f"`{name}` peak RSS MB (growth in the task)",
            [
                f"{r['tasks'][name].get('peak_rss_mb', '-')}"
                f" ({r['tasks'][name].get('growth_mb', '-')})"
                if name in r["tasks"]
                else "-"
                for r in runs
            ],
        )
    row("reminders found / emails sent", [f"{r['reminders']:,} / {r['emails']:,}" for r in runs])
    row(
        "ledger rows (size MB)",
        [f"{sum(r['ledger']['rows'].values()):,} ({r['ledger']['size_mb']})" for r in runs],
    )
    row(
        "metadata DB: task instances, XComs (size MB)",
        [
            f"{r['metadata_database']['task_instances']:,}, {r['metadata_database']['xcom_rows']:,}"
            f" ({r['metadata_database']['size_mb']})"
            for r in runs
        ],
    )
    row(
        "`dags test` wall s (setup s)",
        [f"{r['dags_test_seconds']:,} ({r['setup_seconds']})" for r in runs],
    )
    if len(runs) > 1:
        lines += [
            "",
            "Seconds per 1,000 customers, all instances of each task kind (linear: the same at"
            " every size):",
            "",
            f"| task | {head} | largest / smallest |",
            "|---" * (len(runs) + 2) + "|",
        ]
        for name, figures in results["linearity"].items():
            cells = " | ".join(str(x) for x in figures["seconds_per_1000_customers"])
            lines.append(f"| `{name}` | {cells} | {figures['largest_over_smallest']} |")
        p = results["projection"]
        lines += [
            "",
            f"A day at {p['customers']:,} customers, scaled linearly from the"
            f" {runs[-1]['customers']:,}-customer run: {p['discovery_requests']:,} paIds requests"
            f" ({p['neo_requests']:,} with the export), and {p['task_hours_serial']} hours of task"
            " time in one process.",
            "",
            "| Neo budget, requests/min | discovery, hours | with the export, hours |",
            "|---|---|---|",
        ]
        for budget, hours in p["hours_by_budget"].items():
            lines.append(f"| {int(budget):,} | {hours['discovery']} | {hours['all']} |")
        slots = ", ".join(f"{h} h on {s} slots" for s, h in p["task_hours_on_slots"].items())
        lines += ["", f"The tasks' own time, spread over Celery worker slots: {slots}."]
    return "\n".join(lines)


def chart_svg(results: dict[str, Any]) -> str:
    """Seconds (all instances) of each task kind against customers, with the line through the
    origin and the smallest size that linear growth would follow, as a self-contained SVG."""
    runs = results["runs"]
    width, height, left, right, top, bottom = 720, 420, 70, 200, 30, 50
    xs: list[int] = [run["customers"] for run in runs]
    top_x: int = max(xs)
    colours = {"find": "#1b6ca8", "send": "#d95f02", "split_customers": "#7570b3",
               "publish": "#66a61e", "export": "#e7298a", "expiry_days": "#a6761d"}  # fmt: skip
    series = {
        name: [(run["customers"], run["tasks"][name]["seconds_total"]) for run in runs]
        for name in KINDS
        if all(name in run["tasks"] for run in runs)
    }
    # Room for the measured points and for each kind's linear line at the largest size.
    top_y: float = 1.1 * max(
        max(max(s for _, s in points), points[0][1] * top_x / points[0][0])
        for points in series.values()
    )

    def x(customers: float) -> float:
        return left + (width - left - right) * customers / top_x

    def y(seconds: float) -> float:
        return top + (height - top - bottom) * (1 - seconds / top_y)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}"'
        f' viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{left}" y="18" font-size="14">Reminder DAG: seconds per task kind against'
        " customers (dashed: linear from the smallest run)</text>",
    ]
    for step in range(6):
        seconds = top_y * step / 5
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y(seconds):.1f}" y2="{y(seconds):.1f}"'
            f' stroke="#ddd"/><text x="{left - 8}" y="{y(seconds) + 4:.1f}"'
            f' text-anchor="end">{seconds:,.0f}</text>'
        )
    for customers in xs:
        parts.append(
            f'<text x="{x(customers):.1f}" y="{height - bottom + 18}" text-anchor="middle">'
            f"{customers:,}</text>"
        )
    parts.append(
        f'<text x="{(left + width - right) / 2}" y="{height - 10}" text-anchor="middle">'
        "customers</text>"
    )
    for index, (name, points) in enumerate(series.items()):
        colour = colours.get(name, "#333")
        first_x, first_s = points[0]
        parts.append(
            f'<line x1="{x(0):.1f}" y1="{y(0):.1f}" x2="{x(top_x):.1f}"'
            f' y2="{y(first_s * top_x / first_x):.1f}" stroke="{colour}" stroke-width="1"'
            ' stroke-dasharray="5,4"/>'
        )
        path = " ".join(f"{x(c):.1f},{y(s):.1f}" for c, s in points)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        parts += [
            f'<circle cx="{x(c):.1f}" cy="{y(s):.1f}" r="4" fill="{colour}"/>' for c, s in points
        ]
        ly = top + 10 + 20 * index
        parts.append(
            f'<line x1="{width - right + 10}" x2="{width - right + 30}" y1="{ly}" y2="{ly}"'
            f' stroke="{colour}" stroke-width="2"/>'
            f'<text x="{width - right + 35}" y="{ly + 4}">{name}</text>'
        )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


RESULTS_START = "<!-- bench-scale: written by benchmarks/reminder_scale.py -->"
RESULTS_END = "<!-- end of bench-scale -->"


def write_docs(results: dict[str, Any], table: str) -> None:
    (DOCS / "benchmarks-scale.json").write_text(json.dumps(results, indent=2) + "\n")
    (DOCS / "benchmarks-scale.svg").write_text(chart_svg(results))
    page = DOCS / "benchmarks.md"
    text = page.read_text()
    before, found, rest = text.partition(RESULTS_START)
    _, ended, after = rest.partition(RESULTS_END)
    if not (found and ended):
        raise RuntimeError(f"{page} lacks the bench-scale markers")
    m = results["machine"]
    about = (
        f"Measured {m['date']} on {m['cores']} cores, Python {m['python']}, Airflow"
        f" {m['airflow']}; load average {m['load_average_at_start'][0]} at the start and"
        f" {m['load_average_at_end'][0]} at the end."
    )
    chart = (
        "![Seconds per task kind against customers, with the linear lines from the smallest"
        " run](benchmarks-scale.svg)"
    )
    page.write_text(f"{before}{RESULTS_START}\n{about}\n\n{table}\n\n{chart}\n{RESULTS_END}{after}")


def machine() -> dict[str, Any]:
    from importlib.metadata import version

    return {
        "date": time.strftime("%Y-%m-%d"),
        "cores": os.cpu_count(),
        "python": sys.version.split()[0],
        "airflow": version("apache-airflow"),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="3,000 customers (CI)")
    parser.add_argument("--customers", type=int, nargs="+", help="the sizes to run")
    parser.add_argument("--shard-size", type=int, default=SHARD_SIZE)
    args = parser.parse_args(argv)
    sizes = args.customers or (QUICK_SIZES if args.quick else FULL_SIZES)
    results: dict[str, Any] = {"machine": machine(), "runs": []}
    started = time.perf_counter()
    for customers in sorted(sizes):
        run = run_size(customers, args.shard_size)
        results["runs"].append(run)
        print(json.dumps(run, indent=2), flush=True)
    runs = results["runs"]
    if len(runs) > 1:
        results["linearity"] = linearity(runs)
        results["projection"] = projection(runs[-1])
    results["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    results["seconds"] = round(time.perf_counter() - started, 1)
    table = render(results)
    print(f"\n{table}\n\nIn {results['seconds']:.0f} s.")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    if tuple(sorted(sizes)) == FULL_SIZES:
        write_docs(results, table)
        print("Docs: docs/benchmarks.md, docs/benchmarks-scale.json, docs/benchmarks-scale.svg")
    return 0


if __name__ == "__main__":
    sys.exit(main())
