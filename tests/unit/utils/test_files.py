"""Lines of local files, plain or gzipped, read as utils/files.py reads any ObjectStoragePath."""

from __future__ import annotations

import codecs
import gzip
from pathlib import Path

import pytest

from airflow_provider_neo.utils.files import byte_lines, text_lines


def test_a_gzipped_file_gives_the_same_lines_as_the_plain_one(tmp_path: Path) -> None:
    content = codecs.BOM_UTF8 + "customer_id,first_name\n1,Zoë\n2,Ana\n".encode()
    (tmp_path / "customers.csv").write_bytes(content)
    (tmp_path / "customers.csv.gz").write_bytes(gzip.compress(content))
    plain = list(text_lines(str(tmp_path / "customers.csv"), argument="customers_path"))
    zipped = list(text_lines(str(tmp_path / "customers.csv.gz"), argument="customers_path"))
    assert plain == zipped == ["customer_id,first_name\n", "1,Zoë\n", "2,Ana\n"]
    assert list(byte_lines(str(tmp_path / "customers.csv.gz")))[1] == "1,Zoë\n".encode()


def test_a_latin_1_line_is_refused_naming_the_argument_the_file_and_the_line(
    tmp_path: Path,
) -> None:
    path = tmp_path / "customers.csv"
    path.write_bytes("customer_id,first_name\n1,Zoë\n".encode("latin-1"))
    with pytest.raises(
        ValueError, match=r"^customers_path: line 2 of .*customers.csv is not UTF-8"
    ):
        list(text_lines(str(path), argument="customers_path"))
