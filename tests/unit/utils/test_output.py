"""Atomic outputs: a target appears whole or not at all, and what a killed try left is removed
by the next try of the same task."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import pytest

from airflow_provider_neo.records import ExpiredPoints
from airflow_provider_neo.utils.output import (
    OutputPathError,
    RecordSink,
    atomic_csv,
    atomic_open,
    task_writer,
)

# A task try that is killed (SIGKILL) half-way through writing its output.
KILLED_TRY = textwrap.dedent(
    """
    import os, signal, sys
    from airflow_provider_neo.utils.output import atomic_open
    with atomic_open(sys.argv[1], writer=sys.argv[2]) as handle:
        handle.write(b'{"half": "of the rows"}\\n')
        handle.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    """
)


def _killed_try(target: Path, writer: str) -> None:
    done = subprocess.run([sys.executable, "-c", KILLED_TRY, str(target), writer], check=False)
    assert done.returncode == -signal.SIGKILL


def test_the_next_try_removes_what_a_killed_try_left_and_nothing_else(tmp_path: Path) -> None:
    target = tmp_path / "out" / "reminders.ndjson"
    _killed_try(target, "task-a")
    _killed_try(target, "task-b")  # another task writing the same place: not ours to remove
    left = sorted(path.name for path in target.parent.iterdir())
    assert len(left) == 2
    assert all(name.endswith(".partial") for name in left)
    assert not target.exists()  # a killed try never looks complete

    with atomic_open(str(target), writer="task-a") as handle:
        handle.write(b'{"all": "rows"}\n')
    assert target.read_bytes() == b'{"all": "rows"}\n'
    remaining = sorted(path.name for path in target.parent.iterdir())
    assert remaining == sorted([target.name, next(n for n in left if ".task-b." in n)])


def test_without_a_writer_other_temporaries_are_left_alone(tmp_path: Path) -> None:
    target = tmp_path / "report.csv"
    _killed_try(target, "task-a")
    with atomic_open(str(target)) as handle:
        handle.write(b"a,b\n")
    assert len(list(tmp_path.glob("*.partial"))) == 1


def test_a_task_writer_is_the_same_for_every_try_of_one_task_instance() -> None:
    def ti(task_id: str, try_number: int, map_index: int = -1) -> dict[str, object]:
        return {
            "ti": SimpleNamespace(
                dag_id="d", run_id="r", task_id=task_id, map_index=map_index, try_number=try_number
            )
        }

    assert task_writer(ti("find", 1)) == task_writer(ti("find", 2))
    assert task_writer(ti("find", 1)) != task_writer(ti("send", 1))
    assert task_writer(ti("find", 1, 0)) != task_writer(ti("find", 1, 1))
    assert task_writer({}) is None
    assert os.sep not in str(task_writer(ti("a/b", 1)))


def test_a_csv_appears_whole_with_its_header_or_not_at_all(tmp_path: Path) -> None:
    target = tmp_path / "out" / "list.csv"
    with atomic_csv(f"file://{target}", ["customer_id", "points"]) as rows:
        rows.writerow([11, "12.500"])
        rows.writerow([12, "caf\u00e9, 1"])
        assert not target.exists()
    assert (
        target.read_bytes() == 'customer_id,points\r\n11,12.500\r\n12,"caf\u00e9, 1"\r\n'.encode()
    )

    def fail_half_way() -> None:
        with atomic_csv(str(target), ["customer_id"]) as rows:
            rows.writerow([13])
            raise RuntimeError("the run failed half-way")

    with pytest.raises(RuntimeError):
        fail_half_way()
    assert target.read_text().startswith("customer_id,points")  # the earlier file stands
    assert [path.name for path in target.parent.iterdir()] == [target.name]


def test_a_csv_writer_removes_what_its_killed_try_left(tmp_path: Path) -> None:
    target = tmp_path / "list.csv"
    _killed_try(target, "task-a")
    with atomic_csv(str(target), ["a"], writer="task-a") as rows:
        rows.writerow([1])
    assert [path.name for path in tmp_path.iterdir()] == [target.name]
    assert target.read_bytes() == b"a\r\n1\r\n"


def _write(url: str, record: ExpiredPoints) -> None:
    with RecordSink(url, "ndjson", ExpiredPoints) as sink:
        sink.write(record)


def test_an_output_location_that_cannot_be_written_is_named_output_path(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("x")
    (tmp_path / "a-dir.ndjson").mkdir()
    record = ExpiredPoints(
        points_expiry_date="2025-04-01 05:00:02.0", customer_id=1, program_id=1, points=Decimal(1)
    )
    for url in ("nope://bucket/x.ndjson", str(tmp_path / "a-file" / "x.ndjson")):
        with pytest.raises(OutputPathError, match=r"^output_path: cannot write '"):
            RecordSink(url, "ndjson", ExpiredPoints).__enter__()
    target = tmp_path / "a-dir.ndjson"
    with pytest.raises(OutputPathError, match=r"^output_path: cannot write .*a-dir\.ndjson"):
        _write(str(target), record)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-dir.ndjson", "a-file"]  # no debris
