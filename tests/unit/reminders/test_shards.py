"""The split: rows refused alone into a rejects file, ids listed twice refused on every line,
at most `max_shards` shards whatever the extract's size, memory flat in it; and the suppression
list's index: the same answers as the list, rebuilt exactly when the list changes."""

from __future__ import annotations

import csv
import random
import tracemalloc
from pathlib import Path

from airflow.providers.common.compat.sdk import ObjectStoragePath

from airflow_provider_neo.reminders.shards import read_shard, shard_size_for, split_extract
from airflow_provider_neo.reminders.suppression import SuppressionIndex, build

HEADER = "customer_id,email,first_name,email_opt_in\n"


def _write_extract(path: Path, ids: range | list[int], extra: str = "") -> None:
    with path.open("w") as handle:
        handle.write(HEADER)
        for customer in ids:
            handle.write(f"{customer},c{customer}@example.com,Name {customer},\n")
        handle.write(extra)


def test_bad_rows_go_to_the_rejects_file_and_every_other_customer_to_a_shard(
    tmp_path: Path,
) -> None:
    extract = tmp_path / "crm.csv"
    _write_extract(
        extract,
        range(1, 6),
        "6,six@example.com,Six,opted_out\n"
        "7,seven@example.com;eight@example.com,Seven,\n"
        "3,other3@example.com,Three again,\n"
        "9,nine@example.com,Nine,NO\n",
    )
    split = split_extract(
        str(extract), ObjectStoragePath(tmp_path / "run"), shard_size=2, max_shards=100
    )
    shards = [read_shard(shard["path"]) for shard in split.shards]
    assert [[c.customer_id for c in shard] for shard in shards] == [[1, 2], [4, 5], [9]]
    assert shards[2][0].email_opt_in is False  # consent travels with the shard's rows
    assert [shard["customers"] for shard in split.shards] == [2, 2, 1]
    assert (split.rows, split.customers, split.rejected_rows) == (9, 5, 4)
    with open(split.rejects_path, newline="") as handle:
        rejects = [(r["line"], r["column"], r["reason"]) for r in csv.DictReader(handle)]
    assert [(line, column) for line, column, _ in rejects] == [
        ("7", "email_opt_in"), ("8", "email"), ("4", "customer_id"), ("9", "customer_id"),
    ]  # fmt: skip
    assert "customer 3 is also on line 9" in rejects[2][2]
    assert "customer 3 is also on line 4" in rejects[3][2]
    assert split.rows_summary()["rejects"][0] == {
        "param": "customers_path", "file": str(extract), "line": 7, "column": "email_opt_in",
        "reason": rejects[0][2],
    }  # fmt: skip


def test_there_are_never_more_shards_than_the_bound_the_size_grows_instead(
    tmp_path: Path,
) -> None:
    extract = tmp_path / "crm.csv"
    ids = list(range(1000, 2001))
    _write_extract(extract, ids)
    split = split_extract(
        str(extract), ObjectStoragePath(tmp_path / "run"), shard_size=2, max_shards=7
    )
    assert len(split.shards) == 7
    assert split.shard_size == shard_size_for(1001, shard_size=2, max_shards=7) == 143
    found = [c.customer_id for shard in split.shards for c in read_shard(shard["path"])]
    assert found == ids  # every customer once, in the extract's order
    assert shard_size_for(3005, shard_size=500, max_shards=1024) == 500  # small: as asked


def test_the_splits_memory_does_not_grow_with_the_extract(tmp_path: Path) -> None:
    peaks = []
    for count in (10, 2_000, 20_000):  # the first warms up what is loaded once
        extract = tmp_path / f"crm-{count}.csv"
        _write_extract(extract, range(1, count + 1))
        tracemalloc.start()
        split_extract(
            str(extract), ObjectStoragePath(tmp_path / f"run-{count}"), shard_size=500,
            max_shards=1024,
        )  # fmt: skip
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    assert peaks[2] < peaks[1] * 1.2, peaks  # ten times the rows, the same peak


def test_the_index_answers_as_the_list_does_across_its_blocks(tmp_path: Path) -> None:
    chooser = random.Random(7)
    listed = set(chooser.sample(range(1, 50_000), 5_000))  # five blocks of ids
    source = tmp_path / "suppressed.csv"
    source.write_text("customer_id\n" + "".join(f"{i}\n" for i in sorted(listed, reverse=True)))
    url = str(tmp_path / "index")
    assert build(str(source), url) == len(listed)
    asked = list(range(0, 50_010))
    assert SuppressionIndex(url).members(asked) == listed
    assert SuppressionIndex(url).members([]) == set()


def test_the_index_is_reused_while_the_list_is_unchanged_and_rebuilt_once_it_changes(
    tmp_path: Path,
) -> None:
    source = tmp_path / "suppressed.ndjson"
    source.write_text('{"customer_id": 11}\n12\n')
    folder = ObjectStoragePath(tmp_path / "run" / "suppression")
    index, built = SuppressionIndex.current(str(source), folder)
    assert built
    assert index.members([11, 12, 13]) == {11, 12}
    again, built = SuppressionIndex.current(str(source), folder)
    assert (again.url, built) == (index.url, False)
    with source.open("a") as handle:  # an opt-out after the index was built
        handle.write("13\n")
    latest, built = SuppressionIndex.current(str(source), folder)
    assert built
    assert latest.members([11, 12, 13]) == {11, 12, 13}
    assert index.members([13]) == set()  # the earlier index stays whole for whoever reads it
