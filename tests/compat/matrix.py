"""`make compat`: the provider's built wheel on every supported Airflow release (releases.py).

Builds the wheel, installs it with each release into `.matrix/airflow-X/` (the release and its
dependencies as of its date), runs tests/compat against each, `--jobs` releases side by side,
and prints the table of docs/compatibility.md and the README. Exits 1 if any release fails;
each release's pytest output is in `.matrix/airflow-X.log`.

    python -m tests.compat.matrix [--jobs 2] [--release 2.11.2 ...]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from tests.compat.releases import PYTHON, RELEASES, UV, Release, uv_venv

REPOSITORY = Path(__file__).resolve().parents[2]
MATRIX = REPOSITORY / ".matrix"


@dataclass
class Outcome:
    release: Release
    passed: bool
    seconds: float
    common_compat: str = "?"
    emails: str = "?"
    summary: str = ""


def build_wheel() -> Path:
    dist = MATRIX / "dist"
    shutil.rmtree(dist, ignore_errors=True)
    subprocess.run(
        [UV, "build", "--quiet", "--wheel", "--package", "airflow-provider-neo", "-o", str(dist)],
        cwd=REPOSITORY, check=True,
    )  # fmt: skip
    (wheel,) = dist.glob("airflow_provider_neo-*.whl")
    return wheel


def install(release: Release, wheel: Path) -> Path:
    """A fresh venv of `release` with the wheel installed, as a user of that release would."""
    venv = MATRIX / release.name
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run(uv_venv(venv), check=True)
    subprocess.run(
        release.uv_pip_install(venv, *release.requirements(), str(wheel)), check=True, cwd=MATRIX
    )
    return venv


def run_suite(release: Release, venv: Path) -> Outcome:
    started = time.perf_counter()
    log = MATRIX / f"{release.name}.log"
    with log.open("w") as output:
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "tests/compat", "--airflow-venv", str(venv),
             "--basetemp", str(MATRIX / f"tmp-{release.name}"), "-p", "no:cacheprovider",
             "-q", "-rfE"],
            cwd=REPOSITORY, stdout=output, stderr=subprocess.STDOUT,
        )  # fmt: skip
    lines = log.read_text().strip().splitlines()
    outcome = Outcome(
        release, result.returncode == 0, time.perf_counter() - started,
        summary=lines[-1] if lines else "",
    )  # fmt: skip
    version = subprocess.run(
        [str(venv / "bin" / "python"), "-c",
         "import sys, importlib.metadata as m; print(m.version(sys.argv[1]))",
         "apache-airflow-providers-common-compat"],
        capture_output=True, text=True,
    )  # fmt: skip
    outcome.common_compat = version.stdout.strip() or "?"
    figures = venv / "figures.json"
    if figures.exists():
        outcome.emails = str(json.loads(figures.read_text())["emails"])
    return outcome


def table(outcomes: list[Outcome]) -> str:
    rows = [
        "| Airflow | Python | dependencies as of | common-compat"
        " | reminder DAG emails (default params) | result |",
        "|---|---|---|---|---|---|",
    ]
    for o in outcomes:
        rows.append(
            f"| {o.release.airflow} | {PYTHON} | {o.release.as_of} | {o.common_compat}"
            f" | {o.emails} | {'passed' if o.passed else 'FAILED'} |"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2, help="releases tested side by side")
    parser.add_argument("--release", action="append", help="only these Airflow versions")
    args = parser.parse_args(argv)
    releases = [r for r in RELEASES if not args.release or r.airflow in args.release]
    started = time.perf_counter()
    MATRIX.mkdir(exist_ok=True)
    wheel = build_wheel()
    print(f"Installing {wheel.name} on Airflow {', '.join(r.airflow for r in releases)} ...")
    with ThreadPoolExecutor(max_workers=3) as pool:  # mostly downloads and unpacking
        venvs = list(pool.map(lambda r: install(r, wheel), releases))
    print(f"Installed in {time.perf_counter() - started:.0f} s; testing ...", flush=True)
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        outcomes = list(pool.map(run_suite, releases, venvs))
    print(table(outcomes))
    timings = ", ".join(f"{o.release.airflow} {o.seconds:.0f} s" for o in outcomes)
    print(f"Time per release: {timings}")
    for o in outcomes:
        if not o.passed:
            log = MATRIX / f"{o.release.name}.log"
            print(f"\n{o.release.name} failed ({o.summary}); its log: {log}")
            print("\n".join(log.read_text().splitlines()[-60:]))
    print(f"Compatibility matrix done in {time.perf_counter() - started:.0f} s.")
    return 0 if all(o.passed for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
