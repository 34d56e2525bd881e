# One entry point for everything: `make test` (the whole suite) and `make lint` (ruff and mypy)
# create the project venv from uv.lock first, so they work on a fresh machine.
SHELL := /bin/bash
UV := scripts/uv
PYTEST_ARGS ?=

.PHONY: venv demo test compat lint format simulator bench-hook bench-simulator bench-ledger bench-ledger-retention bench bench-budget bench-scale release-check docs docs-screenshots clean

venv:
	@$(UV) sync --frozen --quiet --extra celery --extra redis

demo: venv
	@$(UV) run --frozen --no-sync python -m demo.run

# The whole suite in two processes, each taking the next test module when it is free (a module's
# tests share their servers and Airflow runs, so a module stays in one process); PYTEST_ARGS
# narrows it (`-n 0`: one process).
test: venv
	@scripts/install-servers
	@$(UV) run --frozen --no-sync pytest -n 2 --dist loadfile $(PYTEST_ARGS)

# The built wheel on every supported Airflow release (tests/compat/releases.py), each in its own
# venv under .matrix/ with that release's dependencies as of its date.
compat: venv
	@$(UV) run --frozen --no-sync python -m tests.compat.matrix $(ARGS)

lint: venv
	@$(UV) run --frozen --no-sync ruff check .
	@$(UV) run --frozen --no-sync ruff format --check .
	@$(UV) run --frozen --no-sync mypy

format: venv
	@$(UV) run --frozen --no-sync ruff format .
	@$(UV) run --frozen --no-sync ruff check --fix .

# What a release publishes, checked as an index and a user get it (scripts/release_check.py): both
# distributions built into .release/dist/, twine check, their contents, the package page's links,
# and the install commands of docs/getting-started.md run in a fresh venv beside the newest Airflow.
release-check: venv
	@$(UV) run --frozen --no-sync python -m scripts.release_check

simulator: venv
	@$(UV) run --frozen --no-sync neo-simulator $(ARGS)

# The documentation site, from scratch with warnings as errors, into docs/_build/html; then its
# links checked offline, and its home and connection pages shot in Chromium
# (.test-artifacts/docs-site/).
docs: venv
	@rm -rf docs/_build
	@$(UV) run --frozen --no-sync sphinx-build -W --keep-going -q -b html docs docs/_build/html
	@$(UV) run --frozen --no-sync python -m scripts.check_site docs/_build/html
	@scripts/install-servers
	@$(UV) run --frozen --no-sync python -m scripts.site_screenshots docs/_build/html

# docs/images/connection-form-*.png from the screenshots the Connections UI test takes.
docs-screenshots: venv
	@scripts/install-servers
	@$(UV) run --frozen --no-sync pytest tests/e2e/test_connections_ui.py -x -q
	@$(UV) run --frozen --no-sync python -m scripts.docs_screenshots

clean:
	rm -rf .venv .tools .demo .matrix .release .test-artifacts .pytest_cache .mypy_cache .ruff_cache docs/_build

# NeoHook beside the apache-airflow-providers-http pipeline (ARGS=--quick for small sizes):
# a table, .bench/compare_http.json and, from a full run, the figures in docs/benchmarks.md.
bench: venv
	@$(UV) run --frozen --no-sync python benchmarks/compare_http.py $(ARGS)

bench-hook: venv
	@$(UV) run --frozen --no-sync python benchmarks/hook_throughput.py

bench-simulator: venv
	@$(UV) run --frozen --no-sync python benchmarks/simulator_build.py $(ARGS)

bench-ledger: venv
	@scripts/install-servers
	@$(UV) run --frozen --no-sync python benchmarks/ledger_window.py $(ARGS)

# The query plans of a claim and a prune on a PostgreSQL ledger of millions of rows (ARGS=rows).
bench-ledger-retention: venv
	@scripts/install-servers
	@$(UV) run --frozen --no-sync python benchmarks/ledger_retention.py $(ARGS)

bench-budget: venv
	@scripts/install-servers
	@$(UV) run --frozen --no-sync python benchmarks/shared_budget.py $(ARGS)

# The reminder DAG on 100,000, 300,000 and 1,000,000 generated customers (ARGS=--quick: 3,000):
# time, Neo requests and peak RSS per task kind, ledger and metadata rows, and a projection for
# 10,000,000 customers at several rate budgets; a full run writes them to docs/benchmarks.md.
bench-scale: venv
	@$(UV) run --frozen --no-sync python benchmarks/reminder_scale.py $(ARGS)
