"""The simulator's own tests: a real simulator process on loopback, shared or started per test.
They need only the simulator and what it depends on, never the provider's test harness."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from neo_simulator.testing import RunningSimulator, SimulatorStarter, start_simulator


@pytest.fixture(scope="session")
def simulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSimulator]:
    """One fault-free simulator for the whole session; tests must not change its faults."""
    with start_simulator(tmp_path_factory.mktemp("simulator")) as sim:
        yield sim


@pytest.fixture
def start_sim(tmp_path: Path) -> Iterator[SimulatorStarter]:
    """Start simulators with extra flags for one test (faults, credentials); stopped afterwards."""
    with SimulatorStarter(tmp_path) as start:
        yield start
