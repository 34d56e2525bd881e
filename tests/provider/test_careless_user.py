"""The operators and the hook given what a hurried user writes: files saved by Excel, repeated
ids, misspelt connection keys, output locations that cannot be written. Each is either accepted
as meant or refused with an error that names the argument."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from airflow_provider_neo.hooks.neo import NeoHook
from airflow_provider_neo.operators.neo import ExpiredPointsOperator
from airflow_provider_neo.utils.output import OutputPathError
from tests.harness import RunningSimulator


def test_an_excel_customers_file_with_repeated_ids_fetches_each_customer_once(
    simulator: RunningSimulator, neo_conn: Callable[..., str], tmp_path: Path
) -> None:
    neo_conn(simulator)
    customers = tmp_path / "customers.csv"
    customers.write_bytes(
        b"\xef\xbb\xbfcustomer_id,email\r\n11064,a@x\r\n11064,a@x\r\n999999999,b@x\r\n"
    )
    op = ExpiredPointsOperator(task_id="expired", customers_path=str(customers), year="2024")
    rows = op.execute({})
    assert [(row["customerId"], row["points"]) for row in rows] == [(11064, "800"), (11064, "100")]
    assert op.summary["customers"] == 2
    assert op.summary["requests"] == 2
    assert op.summary["duplicate_customer_ids"] == 1


def test_a_misspelt_connection_key_is_warned_about_with_the_nearest_known_one(
    simulator: RunningSimulator,
    neo_conn: Callable[..., str],
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    neo_conn(simulator, max_concurency=16)
    ok, message = NeoHook().test_connection()
    assert ok
    assert (
        "unknown connection key 'max_concurency' is ignored; did you mean 'max_concurrency'?"
        in (message)
    )
    with caplog.at_level(logging.WARNING):
        hook = NeoHook(page_sise=10)
        assert hook.settings.max_concurrency == 8  # the misspelt key changed nothing
    logged = caplog.text + capsys.readouterr().out
    assert "'max_concurency' is ignored; did you mean 'max_concurrency'?" in logged
    assert "'page_sise' is ignored; did you mean 'page_size'?" in logged


def test_an_output_path_that_cannot_be_written_fails_naming_output_path(
    simulator: RunningSimulator, neo_conn: Callable[..., str], tmp_path: Path
) -> None:
    neo_conn(simulator)
    (tmp_path / "not-a-dir").write_text("x")
    for output_path in (f"{tmp_path}/not-a-dir/out.ndjson", "nope://bucket/out.ndjson"):
        op = ExpiredPointsOperator(
            task_id="expired", customer_ids=[11064], year="2024", output_path=output_path
        )
        with pytest.raises(OutputPathError, match=r"^output_path: cannot write"):
            op.execute({})
