"""Run by a release's own Python, with Airflow and the installed provider wheel on its path:
``python probe.py CHECK OUT.json [ARGS]`` writes what CHECK saw to OUT.json (Airflow logs to
stdout, so results go to a file). It imports nothing of the checkout's."""

from __future__ import annotations

import importlib
import json
import pkgutil
import sys
import warnings
from collections.abc import Callable
from typing import Any


def installation() -> dict[str, Any]:
    """Which Airflow and provider this is, what Airflow registered, and whether every module of
    the provider imports."""
    import airflow
    from airflow.providers_manager import ProvidersManager

    import airflow_provider_neo

    failed = {}
    for module in pkgutil.walk_packages(airflow_provider_neo.__path__, "airflow_provider_neo."):
        try:
            importlib.import_module(module.name)
        except Exception as exc:  # reported, and the test names the module
            failed[module.name] = f"{type(exc).__name__}: {exc}"
    manager = ProvidersManager()
    provider = manager.providers.get("airflow-provider-neo")
    hook = manager.hooks.get("neo")
    behaviour = manager.field_behaviours.get("neo", {})
    return {
        "airflow": airflow.__version__,
        "provider_file": airflow_provider_neo.__file__,
        "provider_version": provider.version if provider else None,
        "hook": f"{hook.hook_class_name} {hook.connection_type} {hook.hook_name}" if hook else None,
        "form_fields": sorted(
            name.removeprefix("extra__neo__")
            for name in manager.connection_form_widgets
            if name.startswith("extra__neo__")
        ),
        "field_behaviour": behaviour,
        "import_failures": failed,
    }


def dag_folder(folder: str) -> dict[str, Any]:
    """The example DAGs as Airflow's own DagBag parses them."""
    import airflow
    from packaging.version import Version

    if Version(airflow.__version__) >= Version("3.2"):
        from airflow.dag_processing.dagbag import DagBag
    else:  # where it lived before 3.2
        from airflow.models.dagbag import DagBag  # type: ignore[no-redef]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bag = DagBag(dag_folder=folder)  # examples off: AIRFLOW__CORE__LOAD_EXAMPLES=False
    ours = [str(w.message) for w in caught if "airflow_provider_neo" in str(w.filename)]
    return {"dag_ids": sorted(bag.dag_ids), "import_errors": bag.import_errors, "warnings": ours}


def expiring(customers: str, start: str, end: str) -> dict[str, Any]:
    """Every AVAILABLE allocation expiring in [start, end] of the customers, through NeoHook."""
    import msgspec

    from airflow_provider_neo.hooks.neo import NeoHook

    hook = NeoHook()
    rows = hook.iter_expiring_allocations(
        [int(c) for c in customers.split(",")],
        program_id=2282,
        point_category_id=17383,
        expiry_start=start,
        expiry_end=end,
    )
    found = sorted(json.dumps(row, sort_keys=True) for row in msgspec.to_builtins(list(rows)))
    return {"rows": found, "requests": hook.stats.requests}


CHECKS: dict[str, Callable[..., dict[str, Any]]] = {
    "installation": installation,
    "dag_folder": dag_folder,
    "expiring": expiring,
}

if __name__ == "__main__":
    check, out, *args = sys.argv[1:]
    with open(out, "w") as handle:
        json.dump(CHECKS[check](*args), handle)
