"""NeoHook beside the pipeline a user writes without this provider, in one run.

    make bench                  # the full run: the figures of docs/benchmarks.md
    make bench ARGS=--quick     # small sizes, under a minute: proves the suite still works (CI)

The baseline is the apache-airflow-providers-http pipeline: `HttpHook(method="GET").run` page by
page, one customer at a time against dateRange, Basic auth with the MD5 hex of the password, the
scope header in the connection's extra, rows decoded with `json.loads`. Both read the same
simulator (over loopback) in the same run, and any comparison whose totals of remaining points
differ fails the run (exit status 1). Figures:

- one expiry day: requests and wall time at each size (provider paIds, provider dateRange at
  concurrency 16, baseline);
- dateRange throughput at 50 ms of simulator latency against the bound C/L, with the CPU of the
  client (this process) and of the simulator, so a saturated simulator is flagged, never taken
  for a slow client;
- client CPU per request and per record (provider at concurrency 1 and 16, baseline);
- peak RSS of a child process streaming allocation records through ExpiringPointsOperator to a
  file;
- the reminder DAG end to end (`airflow dags test`): requests per 1,000 customers, wall time per
  task, and the peak RSS of the process running the tasks.

Results go to `.bench/compare_http.json`; a full run also writes `docs/benchmarks.json`, the chart
`docs/benchmarks-throughput.svg` and the results table in `docs/benchmarks.md`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import logging
import math
import os
import platform
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, replace
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

REPOSITORY = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPOSITORY))  # the demo environment and the test harness

from airflow_provider_neo.endpoints import SCOPE_HEADER  # noqa: E402
from demo.environment import DEMO_DATE, DemoEnvironment  # noqa: E402
from neo_simulator.auth import DEFAULT_PASSWORD, DEFAULT_USERNAME  # noqa: E402
from tests.harness import (  # noqa: E402
    AS_OF,
    RunningSimulator,
    connection_json,
    start_simulator,
)

RESULTS = REPOSITORY / ".bench" / "compare_http.json"
DOCS = REPOSITORY / "docs"
FIRST = 400_000_001  # the simulator's first customer id
PROGRAM: dict[str, Any] = {"program_id": 2282, "point_category_id": 17383}
EXPIRY_DAY = AS_OF + dt.timedelta(days=30)  # the reminder DAG's 30-day lead time
ALL_TIME = (dt.date(1970, 1, 1), dt.date(2100, 12, 31))  # every allocation of a customer
LATENCY_MS = 50
PAGE_SIZE = 100
REMINDER_DAG = "neo_points_expiry_reminder"
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="neo-bench-"))


@dataclass(frozen=True)
class Sizes:
    expiry_day_customers: tuple[int, ...]
    concurrency: tuple[int, ...]
    throughput_seconds: float  # how long each throughput run lasts, about
    cpu_customers: int
    cpu_repeats: int  # the least CPU of this many runs of each reader counts
    rss_records: tuple[int, int]
    dag_customers: int


FULL = Sizes(
    expiry_day_customers=(1_000, 10_000, 100_000),
    concurrency=(1, 4, 16, 32, 64),
    throughput_seconds=4.0,
    cpu_customers=4_000,
    cpu_repeats=3,
    rss_records=(100_000, 1_000_000),
    dag_customers=100_000,
)
QUICK = Sizes(
    expiry_day_customers=(1_000,),
    concurrency=(1, 4, 16),
    throughput_seconds=0.5,
    cpu_customers=500,
    cpu_repeats=2,
    rss_records=(2_000, 10_000),
    dag_customers=0,  # Airflow's database and a DAG run take longer than the quick run may
)


class TotalsDiffer(Exception):
    """Provider and baseline disagree on the points: the comparison means nothing."""


@dataclass
class Run:
    """One measured read: what it cost the client and the simulator, and what it found."""

    requests: int
    records: int
    total: Decimal  # remaining points
    wall_seconds: float
    client_cpu_seconds: float
    simulator_cpu_seconds: float

    def per_request_ms(self) -> float:
        return 1000 * self.client_cpu_seconds / max(self.requests, 1)

    def rate(self) -> float:
        return self.requests / self.wall_seconds

    def figures(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "total": str(self.total),
            "requests_per_second": round(self.rate(), 1),
            "client_cpu_ms_per_request": round(self.per_request_ms(), 3),
            "client_cpu_ms_per_record": round(
                1000 * self.client_cpu_seconds / max(self.records, 1), 4
            ),
            "client_cpu_share": round(self.client_cpu_seconds / self.wall_seconds, 3),
            "simulator_cpu_share": round(self.simulator_cpu_seconds / self.wall_seconds, 3),
        }


@dataclass
class Simulator:
    """The simulator (the test suite's, seeded alike), and what the benchmark asks of it."""

    running: RunningSimulator

    def cpu_seconds(self) -> float:
        """The simulator's CPU time so far, user and system (fields 14 and 15 of its stat)."""
        stat = Path(f"/proc/{self.running.process.pid}/stat").read_text()
        fields = stat.rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def measure(self, read: Callable[..., tuple[int, Decimal]], *args: Any) -> Run:
        """`read(*args)` (it returns records and total), with the requests the simulator saw."""
        self.running.control("POST", "reset")
        cpu, simulator_cpu = time.process_time(), self.cpu_seconds()
        started = time.perf_counter()
        records, total = read(*args)
        wall = time.perf_counter() - started
        return Run(
            requests=int(self.running.control("GET", "stats")["total"]),
            records=records,
            total=total,
            wall_seconds=wall,
            client_cpu_seconds=time.process_time() - cpu,
            simulator_cpu_seconds=self.cpu_seconds() - simulator_cpu,
        )

    def latency(self, milliseconds: int) -> None:
        self.running.control("PUT", "faults", json={"latency_ms": milliseconds})

    def customers_for(self, records: int) -> int:
        """How many customers, from the first, hold at least `records` allocations of PROGRAM."""
        with self.running.db() as db:
            counts = db.execute(
                "SELECT COUNT(*) FROM allocations WHERE program_id = ? AND point_category_id = ?"
                " GROUP BY customer_id ORDER BY customer_id",
                (PROGRAM["program_id"], PROGRAM["point_category_id"]),
            )
            held = 0
            for customers, (count,) in enumerate(counts, 1):
                held += count
                if held >= records:
                    return customers
        raise ValueError(f"the simulator holds fewer than {records} allocations")


def connect(sim: Simulator) -> None:
    """The provider's `neo` connection and the baseline's `http` one, both to `sim`."""
    os.environ["AIRFLOW_CONN_NEO_DEFAULT"] = connection_json(sim.running)
    # What a user of providers-http writes: the MD5 hex as the password, the scope as a header.
    parts = urlsplit(sim.running.url)
    os.environ["AIRFLOW_CONN_NEO_HTTP"] = json.dumps(
        {
            "conn_type": "http",
            "host": parts.hostname,
            "port": parts.port,
            "schema": "http",
            "login": DEFAULT_USERNAME,
            "password": hashlib.md5(DEFAULT_PASSWORD.encode()).hexdigest(),
            "extra": {SCOPE_HEADER: "global"},
        }
    )


# --- the three readers -----------------------------------------------------------------------


def provider_paids(customers: range, day: dt.date) -> tuple[int, Decimal]:
    from airflow_provider_neo.hooks.neo import NeoHook

    with NeoHook() as hook:
        rows = hook.iter_points_awarded(
            customers, **PROGRAM, expiry_start=day, expiry_end=day, status="AVAILABLE"
        )
        return _count_and_sum(row.remaining_points for row in rows)


def provider_daterange(
    customers: range, window: tuple[dt.date, dt.date], concurrency: int
) -> tuple[int, Decimal]:
    from airflow_provider_neo.hooks.neo import NeoHook

    with NeoHook(max_concurrency=concurrency) as hook:
        rows = hook.iter_expiring_allocations(
            customers, **PROGRAM, expiry_start=window[0], expiry_end=window[1]
        )
        return _count_and_sum(row.remaining_points for row in rows)


def baseline_daterange(customers: range, window: tuple[dt.date, dt.date]) -> tuple[int, Decimal]:
    """The providers-http pipeline: each customer's pages in turn, with `HttpHook.run`."""
    from airflow.providers.http.hooks.http import HttpHook

    from airflow_provider_neo.records import remaining_points

    hook = HttpHook(method="GET", http_conn_id="neo_http")
    records, total = 0, Decimal(0)
    for customer in customers:
        for page in range(1, 100_000):
            response = hook.run(
                "/x/neo/pointsAllocation/dateRange",
                data={
                    **PROGRAM,
                    "expiry_date_start": window[0].isoformat(),
                    "expiry_date_end": window[1].isoformat(),
                    "entity_id": customer,
                    "page": page,
                    "count": PAGE_SIZE,
                },
            )
            rows = json.loads(response.content, parse_float=Decimal)
            for row in rows:
                total += remaining_points(
                    status=row["status"],
                    points_exclusive=Decimal(row["points_exclusive"]),
                    redeemed_exclusive_value=Decimal(row["redeemed_exclusive_value"]),
                    expired_exclusive_value=Decimal(row["expired_exclusive_value"]),
                    returned_exclusive_value=Decimal(row["returned_exclusive_value"]),
                )
            records += len(rows)
            if len(rows) < PAGE_SIZE:
                break
    return records, total


def warm_up() -> None:
    """Every reader once, so that no measurement pays for imports and first connections."""
    customers = range(FIRST, FIRST + 20)
    provider_paids(customers, EXPIRY_DAY)
    provider_daterange(customers, ALL_TIME, 4)
    baseline_daterange(customers, ALL_TIME)


def _count_and_sum(points: Iterable[Decimal]) -> tuple[int, Decimal]:
    records, total = 0, Decimal(0)
    for value in points:
        records += 1
        total += value
    return records, total


def same_totals(label: str, runs: dict[str, Run]) -> None:
    totals = {name: run.total for name, run in runs.items()}
    if len(set(totals.values())) != 1:
        raise TotalsDiffer(f"{label}: the remaining points differ: {totals}")


# --- the sections ----------------------------------------------------------------------------


def expiry_day(sim: Simulator, sizes: Sizes) -> list[dict[str, Any]]:
    results = []
    day = (EXPIRY_DAY, EXPIRY_DAY)
    for count in sizes.expiry_day_customers:
        customers = range(FIRST, FIRST + count)
        runs = {
            "provider_paids": sim.measure(provider_paids, customers, EXPIRY_DAY),
            "provider_daterange_c16": sim.measure(provider_daterange, customers, day, 16),
            "baseline": sim.measure(baseline_daterange, customers, day),
        }
        same_totals(f"one expiry day, {count} customers", runs)
        results.append({"customers": count, **{k: v.figures() for k, v in runs.items()}})
        _progress(f"one expiry day, {count:,} customers", runs)
    return results


def throughput(sim: Simulator, sizes: Sizes) -> dict[str, Any]:
    """dateRange at LATENCY_MS for each concurrency, against the bound C/L."""
    sim.latency(LATENCY_MS)
    day = (EXPIRY_DAY, EXPIRY_DAY)
    try:
        rows = []
        for concurrency in sizes.concurrency:
            bound = concurrency / (LATENCY_MS / 1000)
            customers = range(FIRST, FIRST + max(int(bound * sizes.throughput_seconds), 10))
            runs = {"provider": sim.measure(provider_daterange, customers, day, concurrency)}
            if concurrency == 1:  # the baseline reads one customer at a time
                runs["baseline"] = sim.measure(baseline_daterange, customers, day)
                same_totals(f"throughput at {LATENCY_MS} ms", runs)
            row: dict[str, Any] = {"concurrency": concurrency, "bound": bound}
            for name, run in runs.items():
                figures = run.figures()
                figures["share_of_bound"] = round(run.rate() / bound, 3)
                # The simulator is one process: near a whole core, it is the limit, not the client.
                figures["simulator_saturated"] = figures["simulator_cpu_share"] >= 0.9
                row[name] = figures
            rows.append(row)
            _progress(f"throughput, C={concurrency}", runs)
    finally:
        sim.latency(0)
    return {"latency_ms": LATENCY_MS, "rows": rows}


def cpu_per_request(sim: Simulator, sizes: Sizes) -> dict[str, Any]:
    """Client CPU per request and per record, no latency, every allocation of each customer.

    Each reader runs `cpu_repeats` times, in turn with the others, and its run with the least
    CPU counts: other work on the machine only ever adds to a process's CPU time.
    """
    customers = range(FIRST, FIRST + sizes.cpu_customers)
    readers: dict[str, tuple[Callable[..., tuple[int, Decimal]], tuple[Any, ...]]] = {
        "provider_c1": (provider_daterange, (customers, ALL_TIME, 1)),
        "provider_c16": (provider_daterange, (customers, ALL_TIME, 16)),
        "baseline": (baseline_daterange, (customers, ALL_TIME)),
    }
    runs: dict[str, Run] = {}
    for _ in range(sizes.cpu_repeats):
        for name, (read, args) in readers.items():
            run = sim.measure(read, *args)
            if name not in runs or run.client_cpu_seconds < runs[name].client_cpu_seconds:
                runs[name] = run
    same_totals("client CPU", runs)
    _progress(f"client CPU, {sizes.cpu_customers:,} customers", runs)
    result = {"customers": sizes.cpu_customers, **{k: v.figures() for k, v in runs.items()}}
    result["provider_c1_share_of_baseline"] = round(
        runs["provider_c1"].per_request_ms() / runs["baseline"].per_request_ms(), 3
    )
    return result


def stream_to_file(customers: int, out: str) -> dict[str, Any]:
    """In a child process: ExpiringPointsOperator streams `customers`' allocations to `out`."""
    from airflow_provider_neo.operators.neo import ExpiringPointsOperator

    operator = ExpiringPointsOperator(
        task_id="expiring",
        customer_ids=range(FIRST, FIRST + customers),
        **PROGRAM,
        expiry_start=ALL_TIME[0].isoformat(),
        expiry_end=ALL_TIME[1].isoformat(),
        output_path=f"file://{out}",
        hook_params={"max_concurrency": 16},
        progress_interval=3600,
    )
    after_imports = _peak_rss_mb()
    started = time.perf_counter()
    summary = operator.execute({})
    return {
        "customers": customers,
        "records": summary["records"],
        "requests": summary["requests"],
        "remaining_points": summary["points"],
        "wall_seconds": round(time.perf_counter() - started, 2),
        "peak_rss_after_imports_mb": after_imports,
        "peak_rss_mb": _peak_rss_mb(),
        "file_mb": round(os.path.getsize(out) / 1e6, 1),
    }


def _peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # KiB on Linux


def peak_rss(sim: Simulator, sizes: Sizes) -> list[dict[str, Any]]:
    results = []
    for records in sizes.rss_records:
        customers = sim.customers_for(records)
        with tempfile.TemporaryDirectory(prefix="neo-bench-") as tmp:
            out = os.path.join(tmp, "allocations.ndjson")
            child = subprocess.run(
                [sys.executable, __file__, "--stream-child", str(customers), out],
                capture_output=True, text=True, check=False, timeout=3_600,
            )  # fmt: skip
        if child.returncode != 0:
            raise RuntimeError(f"the streaming child failed: {child.stderr[-3000:]}")
        result = json.loads(child.stdout.strip().splitlines()[-1])
        results.append(result)
        print(
            f"  streamed {result['records']:,} records ({customers:,} customers) in"
            f" {result['wall_seconds']} s: peak RSS {result['peak_rss_mb']} MB"
            f" ({result['peak_rss_after_imports_mb']} MB after imports)",
            flush=True,
        )
    return results


# The child that runs `airflow dags test`: its peak RSS is the largest of its own children's.
_RUSAGE_WRAPPER = (
    "import resource, subprocess, sys; code = subprocess.run(sys.argv[1:]).returncode;"
    " print('peak-rss-kib', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss);"
    " sys.exit(code)"
)


def reminder_dag(customers: int) -> dict[str, Any]:
    """The reminder DAG, end to end, for `customers` customers: discovery requests, wall time per
    task (from Airflow's own task instances), and the peak RSS of the `dags test` process, which
    runs every task in turn."""
    work_dir = REPOSITORY / ".bench" / "reminder-dag"
    shutil.rmtree(work_dir, ignore_errors=True)
    started = time.perf_counter()
    with DemoEnvironment(work_dir, customers=customers) as env:
        ready = time.perf_counter()
        command = env.airflow_command(*env.dags_test_args(REMINDER_DAG, DEMO_DATE))
        run = subprocess.run(
            [sys.executable, "-c", _RUSAGE_WRAPPER, *command],
            env=env.env(), capture_output=True, text=True, check=False, timeout=3_600,
        )  # fmt: skip
        dag_seconds = time.perf_counter() - ready
        (work_dir / "dags-test.log").write_text(run.stdout + run.stderr)
        served = requests.get(f"{env.simulator.url}/__sim/stats", timeout=30).json()
        emails = len(env.mailbox.messages())
    if run.returncode != 0:
        raise RuntimeError(f"the reminder DAG failed; see {work_dir / 'dags-test.log'}")
    peak_kib = int(run.stdout.rsplit("peak-rss-kib", 1)[1].split()[0])
    by_endpoint = {name: sum(statuses.values()) for name, statuses in served["requests"].items()}
    discovery = by_endpoint.get("points_awarded", 0)
    with sqlite3.connect(env.airflow_home / "airflow.db") as db:
        tasks = {
            task: {"instances": n, "seconds_total": round(total, 2), "seconds_max": round(top, 2)}
            for task, n, total, top in db.execute(
                "SELECT task_id, COUNT(*), SUM(duration), MAX(duration) FROM task_instance"
                " GROUP BY task_id ORDER BY task_id"
            )
        }
    summary_file = env.data_dir / "neo" / "reminders" / f"{DEMO_DATE}.summary.json"
    summary = json.loads(summary_file.read_text())
    params = _reminder_params()
    queries = len(params["programs"]) * len(params["lead_times"])
    result = {
        "customers": customers,
        "setup_seconds": round(ready - started, 1),
        "dags_test_seconds": round(dag_seconds, 1),
        "requests_by_endpoint": by_endpoint,
        "discovery_requests": discovery,
        "discovery_requests_per_1000_customers": round(1000 * discovery / customers, 2),
        "paids_queries_per_customer": queries,
        "discovery_requests_per_1000_customers_per_query": round(
            1000 * discovery / customers / queries, 2
        ),
        "shard_size": params["shard_size"],
        "emails": emails,
        "customers_checked": summary["customers_checked"],
        "peak_rss_mb": round(peak_kib / 1024, 1),
        "tasks": tasks,
    }
    print(
        f"  reminder DAG, {customers:,} customers: {discovery} paIds requests"
        f" ({result['discovery_requests_per_1000_customers']} per 1,000 customers), {emails}"
        f" emails, dags test {dag_seconds:.0f} s, peak RSS {result['peak_rss_mb']} MB",
        flush=True,
    )
    return result


def _reminder_params() -> dict[str, Any]:
    """The reminder DAG's default params (shard size, programs, lead times)."""
    import importlib.util

    path = REPOSITORY / "dags" / f"{REMINDER_DAG}.py"
    spec = importlib.util.spec_from_file_location(REMINDER_DAG, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    dag = getattr(module, REMINDER_DAG)()
    return {name: param.value for name, param in dag.params.items()}


# --- the report ------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    from importlib.metadata import version

    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "airflow": version("apache-airflow"),
        "providers_http": version("apache-airflow-providers-http"),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "date": dt.date.today().isoformat(),
    }


def _progress(label: str, runs: dict[str, Run]) -> None:
    parts = [
        f"{name} {run.requests:,} requests {run.wall_seconds:.2f} s"
        f" ({run.per_request_ms():.3f} ms CPU/request)"
        for name, run in runs.items()
    ]
    print(f"  {label}: " + "; ".join(parts), flush=True)


def _requests_and_time(figures: dict[str, Any]) -> str:
    return f"{figures['requests']:,} requests, {figures['wall_seconds']:.2f} s"


def render(results: dict[str, Any]) -> str:
    """The results as markdown tables: the summary, throughput, and the reminder DAG's tasks."""
    lines = ["| figure | provider | providers-http pipeline |", "|---|---|---|"]
    for day in results.get("expiry_day", []):
        lines.append(
            f"| one expiry day, {day['customers']:,} customers"
            f" | paIds: {_requests_and_time(day['provider_paids'])};"
            f" dateRange at C=16: {_requests_and_time(day['provider_daterange_c16'])}"
            f" | {_requests_and_time(day['baseline'])} |"
        )
    if "throughput" in results:
        rows = results["throughput"]["rows"]
        provider = "; ".join(
            f"C={r['concurrency']}: {r['provider']['requests_per_second']:.1f}"
            f" ({100 * r['provider']['share_of_bound']:.0f}%)"
            for r in rows
        )
        base = rows[0]["baseline"]
        lines.append(
            f"| dateRange at {results['throughput']['latency_ms']} ms latency, requests/s"
            f" (share of the bound C/L) | {provider}"
            f" | C=1: {base['requests_per_second']:.1f} ({100 * base['share_of_bound']:.0f}%) |"
        )
    if "cpu" in results:
        cpu = results["cpu"]
        c1, c16, base = cpu["provider_c1"], cpu["provider_c16"], cpu["baseline"]
        lines.append(
            f"| client CPU per request (per record), {cpu['customers']:,} customers,"
            f" {c1['records']:,} records"
            f" | {c1['client_cpu_ms_per_request']:.3f} ms ({c1['client_cpu_ms_per_record']:.3f})"
            f" at C=1, {c16['client_cpu_ms_per_request']:.3f} ms"
            f" ({c16['client_cpu_ms_per_record']:.3f}) at C=16;"
            f" C=1 is {100 * cpu['provider_c1_share_of_baseline']:.0f}% of the baseline"
            f" | {base['client_cpu_ms_per_request']:.3f} ms"
            f" ({base['client_cpu_ms_per_record']:.3f}) |"
        )
    if "peak_rss" in results:
        streams = results["peak_rss"]
        records = " / ".join(f"{s['records']:,}" for s in streams)
        peaks = " / ".join(f"{s['peak_rss_mb']:.1f}" for s in streams)
        imports = " / ".join(f"{s['peak_rss_after_imports_mb']:.1f}" for s in streams)
        lines.append(
            f"| peak RSS streaming {records} allocation records to NDJSON"
            f" (ExpiringPointsOperator, C=16) | {peaks} MB ({imports} MB after imports) | - |"
        )
    if "reminder_dag" in results:
        dag = results["reminder_dag"]
        lines.append(
            f"| reminder DAG, {dag['customers']:,} customers (`airflow dags test`)"
            f" | discovery: {dag['discovery_requests']:,} paIds requests,"
            f" {dag['discovery_requests_per_1000_customers']} per 1,000 customers"
            f" ({dag['discovery_requests_per_1000_customers_per_query']} per query of"
            f" {dag['paids_queries_per_customer']} program-days); {dag['emails']:,} emails;"
            f" dags test {dag['dags_test_seconds']:.0f} s; peak RSS {dag['peak_rss_mb']} MB | - |"
        )
    if "throughput" in results:
        lines += [
            "",
            f"dateRange at {results['throughput']['latency_ms']} ms of simulator latency"
            " (CPU as a share of one core):",
            "",
            "| C | bound C/L | provider requests/s | share of bound | client CPU"
            " | simulator CPU | baseline requests/s |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in results["throughput"]["rows"]:
            p = r["provider"]
            saturated = " (saturated)" if p["simulator_saturated"] else ""
            base = f"{r['baseline']['requests_per_second']:.1f}" if "baseline" in r else "-"
            lines.append(
                f"| {r['concurrency']} | {r['bound']:.0f} | {p['requests_per_second']:.1f}"
                f" | {100 * p['share_of_bound']:.0f}% | {100 * p['client_cpu_share']:.0f}%"
                f" | {100 * p['simulator_cpu_share']:.0f}%{saturated} | {base} |"
            )
    if "reminder_dag" in results:
        lines += [
            "",
            "The reminder DAG's tasks (`airflow dags test` runs them one after another in one"
            " process):",
            "",
            "| task | instances | seconds, all instances | seconds, longest |",
            "|---|---|---|---|",
        ]
        for task, t in results["reminder_dag"]["tasks"].items():
            lines.append(
                f"| {task} | {t['instances']} | {t['seconds_total']} | {t['seconds_max']} |"
            )
    return "\n".join(lines)


def throughput_svg(results: dict[str, Any]) -> str:
    """requests/s against concurrency (log scale) for the provider, the baseline and the bound,
    as a self-contained SVG."""
    rows = results["throughput"]["rows"]
    width, height, left, right, top, bottom = 720, 400, 70, 230, 30, 50
    concurrency: list[int] = [r["concurrency"] for r in rows]
    top_rate = 1.05 * max(
        max(float(r["bound"]), float(r["provider"]["requests_per_second"])) for r in rows
    )
    spread = max(concurrency).bit_length() - 1 or 1

    def x(c: float) -> float:
        return left + (width - left - right) * math.log2(c) / spread

    def y(rate: float) -> float:
        return top + (height - top - bottom) * (1 - rate / top_rate)

    def polyline(points: list[tuple[float, float]], colour: str, dash: str = "") -> str:
        path = " ".join(f"{x(c):.1f},{y(r):.1f}" for c, r in points)
        dashes = f' stroke-dasharray="{dash}"' if dash else ""
        return f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"{dashes}/>'

    base = rows[0]["baseline"]["requests_per_second"]
    provider = [(r["concurrency"], r["provider"]["requests_per_second"]) for r in rows]
    bound = [(r["concurrency"], r["bound"]) for r in rows]
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}"'
        f' viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{left}" y="18" font-size="14">dateRange requests/s at'
        f" {results['throughput']['latency_ms']} ms latency</text>",
    ]
    for step in range(6):
        rate = top_rate * step / 5
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y(rate):.1f}" y2="{y(rate):.1f}"'
            f' stroke="#ddd"/><text x="{left - 8}" y="{y(rate) + 4:.1f}"'
            f' text-anchor="end">{rate:.0f}</text>'
        )
    for c in concurrency:
        parts.append(
            f'<text x="{x(c):.1f}" y="{height - bottom + 18}" text-anchor="middle">{c}</text>'
        )
    parts += [
        f'<text x="{(left + width - right) / 2}" y="{height - 10}" text-anchor="middle">'
        "concurrency C (requests in flight)</text>",
        polyline(bound, "#888", "6,4"),
        polyline([(concurrency[0], base), (concurrency[-1], base)], "#d95f02", "2,3"),
        polyline(provider, "#1b6ca8"),
        *(f'<circle cx="{x(c):.1f}" cy="{y(r):.1f}" r="4" fill="#1b6ca8"/>' for c, r in provider),
        f'<circle cx="{x(concurrency[0]):.1f}" cy="{y(base):.1f}" r="4" fill="#d95f02"/>',
    ]
    legend = [
        ("#888", "bound C/L"),
        ("#1b6ca8", "NeoHook dateRange"),
        ("#d95f02", "providers-http (one at a time)"),
    ]
    for index, (colour, label) in enumerate(legend):
        ly = top + 10 + 20 * index
        parts.append(
            f'<line x1="{width - right + 10}" x2="{width - right + 30}" y1="{ly}" y2="{ly}"'
            f' stroke="{colour}" stroke-width="2"/>'
            f'<text x="{width - right + 35}" y="{ly + 4}">{label}</text>'
        )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


RESULTS_START = "<!-- bench-results: written by benchmarks/compare_http.py -->"
RESULTS_END = "<!-- end of bench-results -->"


def write_docs(results: dict[str, Any], table: str) -> None:
    """The full run's figures: the JSON, the chart, and the table in docs/benchmarks.md."""
    (DOCS / "benchmarks.json").write_text(json.dumps(results, indent=2) + "\n")
    (DOCS / "benchmarks-throughput.svg").write_text(throughput_svg(results))
    page = DOCS / "benchmarks.md"
    text = page.read_text()
    before, found, rest = text.partition(RESULTS_START)
    _, ended, after = rest.partition(RESULTS_END)
    if not (found and ended):
        raise RuntimeError(f"{page} lacks the results markers")
    m = results["machine"]
    about = (
        f"Measured {m['date']} on {m['cores']} cores ({m['cpu']}), Python {m['python']},"
        f" Airflow {m['airflow']}, apache-airflow-providers-http {m['providers_http']};"
        f" load average {m['load_average_at_start'][0]} at the start"
        f" and {m['load_average_at_end'][0]} at the end."
    )
    page.write_text(f"{before}{RESULTS_START}\n{about}\n\n{table}\n{RESULTS_END}{after}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (CI)")
    parser.add_argument(
        "--only",
        choices=["expiry_day", "throughput", "cpu", "peak_rss", "reminder_dag"],
        action="append",
        help="run only these sections (repeatable); the docs are then left alone",
    )
    parser.add_argument(
        "--dag-customers", type=int, help="the reminder DAG's customers (0: leave it out)"
    )
    parser.add_argument(
        "--stream-child", nargs=2, metavar=("CUSTOMERS", "OUT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.stream_child:
        print(json.dumps(stream_to_file(int(args.stream_child[0]), args.stream_child[1])))
        return 0
    sizes = QUICK if args.quick else FULL
    if args.dag_customers is not None:
        sizes = replace(sizes, dag_customers=args.dag_customers)
    wanted = set(args.only or ["expiry_day", "throughput", "cpu", "peak_rss", "reminder_dag"])
    # Both hooks' per-request log lines (HttpHook logs each URL at INFO) are not the point here.
    logging.getLogger("airflow.task.hooks").setLevel(logging.WARNING)
    results: dict[str, Any] = {"machine": machine(), "quick": args.quick, "sizes": asdict(sizes)}
    started = time.perf_counter()
    # Enough customers for the largest expiry day and the largest stream (about three
    # allocations of the program per customer).
    streamed = sizes.rss_records[1] if "peak_rss" in wanted else 0
    customers = max(*sizes.expiry_day_customers, streamed * 35 // 100)
    try:
        sections: list[tuple[str, Callable[[Simulator, Sizes], Any]]] = [
            ("expiry_day", expiry_day),
            ("throughput", throughput),
            ("cpu", cpu_per_request),
            ("peak_rss", peak_rss),
        ]
        sections = [(name, section) for name, section in sections if name in wanted]
        if sections:
            with tempfile.TemporaryDirectory(prefix="neo-bench-") as tmp:
                print(f"Starting the simulator ({customers:,} customers) ...", flush=True)
                sim = Simulator(start_simulator(Path(tmp), customers=customers))
                try:
                    connect(sim)
                    warm_up()
                    for name, section in sections:
                        results[name] = section(sim, sizes)
                finally:
                    sim.running.process.stop()
        if "reminder_dag" in wanted and sizes.dag_customers:
            results["reminder_dag"] = reminder_dag(sizes.dag_customers)
    except TotalsDiffer as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    results["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    results["seconds"] = round(time.perf_counter() - started, 1)
    table = render(results)
    print(f"\n{table}\n\nIn {results['seconds']:.0f} s.")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"Results: {RESULTS.relative_to(REPOSITORY)}")
    if sizes == FULL and not args.only:
        write_docs(results, table)
        print("Docs: docs/benchmarks.md, docs/benchmarks.json, docs/benchmarks-throughput.svg")
    return 0


if __name__ == "__main__":
    sys.exit(main())
