"""The CRM extract and the suppression list as a careless export or a hostile row gives them:
every row checked when read, a bad row refused alone with the param, file, line, column and
reason, a file that cannot be read refused as a whole; and property tests of the rules."""

from __future__ import annotations

import csv
import io
import json
import re
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_provider_neo.reminders.crm import (
    CONSENT_NO,
    CONSENT_YES,
    CrmFileError,
    InvalidValue,
    Rejected,
    RowError,
    check_consent,
    check_customer_id,
    check_email,
    check_mobile,
    read_extract,
    suppressed_ids,
)
from airflow_provider_neo.reminders.model import Customer

QUICK = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _extract(tmp_path: Path, text: str | bytes, name: str = "crm.csv") -> str:
    path = tmp_path / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return str(path)


def _read(url: str) -> tuple[list[Customer], list[RowError]]:
    customers: list[Customer] = []
    errors: list[RowError] = []
    for _, row in read_extract(url):
        if isinstance(row, Rejected):
            errors.extend(row.errors)
        else:
            customers.append(row)
    return customers, errors


@pytest.mark.parametrize(
    ("email", "why"),
    [
        ("victim@example.com,attacker@x.test", "more than one address"),
        ("victim@example.com;attacker@x.test", "more than one address"),
        ("victim@example.com attacker@x.test", "contains a space"),
        ("Ann <ann@example.com>", "display name"),
        ('"ann smith"@example.com', "display name, quotes"),
        ("ann@[192.0.2.1]", "IP literal"),
        ("ann@example.com\x00attacker@x.test", "control character U+0000"),
        ("ann@example.com\r\nBcc: all@x.test", "control character U+000D"),
        ("ann@@example.com", "exactly one '@'"),
        ("ann.example.com", "exactly one '@'"),
        ("ann..smith@example.com", "no valid local part"),
        (".ann@example.com", "no valid local part"),
        ("ann@localhost", "no valid domain"),
        ("ann@-example.com", "no valid domain"),
        ("ann@example.123", "no valid domain"),
        ("ännä@exämple.com", "internationalised"),
        ("a" * 65 + "@example.com", "no valid local part"),
    ],
)
def test_an_address_that_is_not_exactly_one_bare_address_is_refused(email: str, why: str) -> None:
    with pytest.raises(InvalidValue, match=re.escape(why)):
        check_email(email)


def test_plain_addresses_pass_as_given_and_international_ones_only_with_the_flag() -> None:
    assert (
        check_email("  o'brien+points@mail.example.co.uk ") == "o'brien+points@mail.example.co.uk"
    )
    assert check_email("") == ""  # no address: the customer has none on email channels
    assert check_email("ännä@exämple.com", international=True) == "ännä@exämple.com"
    assert check_email("user@bücher.example", international=True) == "user@bücher.example"
    with pytest.raises(InvalidValue, match="no valid local part"):
        check_email("ann\u202e@example.com", international=True)  # a bidi override
    with pytest.raises(InvalidValue, match="no valid local part"):
        check_email("ann\u200b@example.com", international=True)  # zero-width space


ARABIC_INDIC_1234 = "\u0661\u0662\u0663\u0664"
FULLWIDTH_1234 = "\uff11\uff12\uff13\uff14"


@pytest.mark.parametrize(
    "value", ["1_234", " 1234 ", "1234 ", ARABIC_INDIC_1234, FULLWIDTH_1234, "0123", "-5", "+5",
              "", "1e3", "12.0", str(2**63), "0"],
)  # fmt: skip
def test_an_id_other_than_plain_ascii_digits_is_refused(value: str) -> None:
    with pytest.raises(InvalidValue, match="is not a customer id"):
        check_customer_id(value)


def test_consent_words_in_any_case_and_empty_is_yes_and_anything_else_is_an_error() -> None:
    assert [check_consent(v) for v in ("Yes", " Y ", "TRUE", "1", "on", "t", "")] == [True] * 7
    assert [check_consent(v) for v in ("No", "n", "FALSE", "0", " off ", "F")] == [False] * 6
    for value in ("unsubscribed", "opted_out", "none", "2", "nein"):
        with pytest.raises(InvalidValue, match="is not a consent value"):
            check_consent(value)


def test_mobile_numbers_in_international_form_are_kept_as_plus_and_digits() -> None:
    assert check_mobile(" +44 (20) 7946-0958 ") == "+442079460958"
    assert check_mobile("+91.98765.43210") == "+919876543210"
    assert check_mobile("") == ""
    for value in ("07946 0958", "+0 123 456 789", "+1 800 FLOWERS", "+1234", "+1" + "2" * 15,
                  "+44 20 7946 0958 ext 2", f"+44{FULLWIDTH_1234}567890"):  # fmt: skip
        with pytest.raises(InvalidValue, match="not a mobile number"):
            check_mobile(value)


def test_a_bad_row_is_refused_alone_naming_file_line_and_column(tmp_path: Path) -> None:
    url = _extract(
        tmp_path,
        "customer_id,email,first_name,email_opt_in,mobile\n"
        "1,ann@example.com,Ann,yes,+44 20 7946 0958\n"
        '2,"victim@example.com,attacker@x.test",Bob,,\n'
        "1_234,cy@example.com,Cy,,\n"
        "3,dee@example.com,Dee,unsubscribed,\n"
        "4,eve@example.com,Eve,no,\n"
        '5,"fay@example.com",Fay\x07,,\n'
        "6,gus@example.com,Gus,,,extra\n"
        "\n"
        ",,,,\n"
        "7,hal@example.com,Hal,,\n",
    )
    customers, errors = _read(url)
    assert [c.customer_id for c in customers] == [1, 4, 7]
    assert customers[0] == Customer(
        customer_id=1, email="ann@example.com", first_name="Ann", mobile="+442079460958",
        email_opt_in=True, sms_opt_in=True,
    )  # fmt: skip
    assert customers[1].email_opt_in is False
    assert [(e.param, e.file, e.line, e.column) for e in errors] == [
        ("customers_path", url, 3, "email"),
        ("customers_path", url, 4, "customer_id"),
        ("customers_path", url, 5, "email_opt_in"),
        ("customers_path", url, 7, "first_name"),
        ("customers_path", url, 8, ""),
    ]
    assert "'unsubscribed' is not a consent value" in errors[2].reason
    assert "6 fields where the header has 5" in errors[4].reason
    assert str(errors[0]).startswith(f"customers_path: line 3 of {url}, column 'email': ")


def test_column_names_match_ignoring_case_and_spaces_and_a_missing_one_names_itself_and_the_file(
    tmp_path: Path,
) -> None:
    url = _extract(
        tmp_path, "\ufeffCustomer_ID , Email,First_Name,SMS_Opt_In\n1,a@example.com,A,no\n"
    )
    customers, errors = _read(url)
    assert errors == []
    assert customers == [Customer(customer_id=1, email="a@example.com", first_name="A",
                                  sms_opt_in=False)]  # fmt: skip
    wrong = _extract(tmp_path, "customer_id,e-mail,first_name\n1,a@example.com,A\n", "wrong.csv")
    with pytest.raises(CrmFileError, match=rf"^customers_path: {wrong} has no 'email' column"):
        read_extract(wrong)
    twice = _extract(tmp_path, "customer_id,email,Email\n1,a@example.com,b@example.com\n", "2.csv")
    with pytest.raises(CrmFileError, match=r"has two 'email' columns \('email' and 'Email'\)"):
        read_extract(twice)


def test_file_level_errors_fail_at_once_and_a_row_not_in_utf8_fails_alone(tmp_path: Path) -> None:
    with pytest.raises(CrmFileError, match=r"^customers_path: no file at .*absent.csv"):
        read_extract(str(tmp_path / "absent.csv"))
    with pytest.raises(CrmFileError, match=r"is empty; expected a header row"):
        read_extract(_extract(tmp_path, "", "empty.csv"))
    latin_header = _extract(tmp_path, "customer_id,email,pr\xe9nom\n".encode("latin-1"), "h.csv")
    with pytest.raises(CrmFileError, match=r"the header \(line 1\) of .* is not UTF-8"):
        read_extract(latin_header)
    latin_row = _extract(
        tmp_path,
        "customer_id,email,first_name\n1,a@example.com,Zo\xeb\n2,b@example.com,Bo\n".encode(
            "latin-1"
        ),
        "r.csv",
    )
    customers, errors = _read(latin_row)
    assert [c.customer_id for c in customers] == [2]
    assert [(e.line, e.column, e.reason) for e in errors] == [
        (2, "first_name", "not UTF-8 (byte 0xeb)")
    ]


def test_a_quoted_value_over_several_lines_is_one_row_refused_by_its_first_line(
    tmp_path: Path,
) -> None:
    url = _extract(
        tmp_path,
        'customer_id,email,first_name\n1,a@example.com,"An\nna"\n2,b@example.com,Bo\n',
    )
    customers, errors = _read(url)
    assert [c.customer_id for c in customers] == [2]
    assert [(e.line, e.column) for e in errors] == [(2, "first_name")]
    assert "U+000A" in errors[0].reason


def test_a_suppression_list_with_a_bad_row_is_refused_whole_naming_every_bad_line(
    tmp_path: Path,
) -> None:
    good = _extract(tmp_path, "Customer_Id,reason\n7,asked\n8,bounced\n7,again\n", "s.csv")
    assert list(suppressed_ids(good)) == [7, 8, 7]
    ndjson = _extract(tmp_path, '7\n"8"\n{"customer_id": 9}\n\n{"customer_id": "10"}\n', "s.ndjson")
    assert list(suppressed_ids(ndjson)) == [7, 8, 9, 10]
    bad = _extract(tmp_path, "customer_id\n7\n1_234\n9\n 10\n", "bad.csv")
    with pytest.raises(CrmFileError) as raised:
        list(suppressed_ids(bad))
    message = str(raised.value)
    assert message.startswith(f"suppression_path: 2 rows of {bad} cannot be read")
    assert "line 3 of" in message
    assert "line 5 of" in message
    assert "'1_234'" in message
    bad_json = _extract(tmp_path, '7\n{"id": 8}\ntrue\n', "bad.ndjson")
    with pytest.raises(CrmFileError, match=r"suppression_path: 2 rows of .*line 2 of .*line 3 of"):
        list(suppressed_ids(bad_json))
    with pytest.raises(CrmFileError, match=r"suppression_path: .* has no 'customer_id' column"):
        suppressed_ids(_extract(tmp_path, "id\n7\n", "noid.csv"))


# Property tests: what the rules promise for any input.

atext = st.sampled_from("abcdefghijklmnopqrstuvwxyzABCXYZ0123456789!#$%&'*+/=?^_`{|}~-")
dot_atom = st.lists(st.text(atext, min_size=1, max_size=8), min_size=1, max_size=3).map(".".join)
label = st.from_regex(r"[a-z0-9](?:[a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)
host = st.tuples(
    st.lists(label, min_size=1, max_size=3), st.from_regex(r"[a-z]{2,6}", fullmatch=True)
)
addresses = st.builds(lambda local, h: f"{local}@{'.'.join([*h[0], h[1]])}", dot_atom, host)
names = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), max_size=30).map(
    str.strip
)
consent_words = st.sampled_from(sorted(CONSENT_YES | CONSENT_NO | {""}))
mixed_case = st.tuples(consent_words, st.lists(st.booleans(), min_size=6, max_size=6)).map(
    lambda w: "".join(c.upper() if up else c for c, up in zip(w[0], w[1], strict=False))
)
customers = st.builds(
    lambda i, e, n, o: (i, e, n, o),
    st.integers(1, 2**63 - 1),
    addresses,
    names,
    mixed_case,
)


def _csv_text(rows: list[list[str]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue()


@QUICK
@given(rows=st.lists(customers, max_size=8, unique_by=lambda row: row[0]))
def test_well_formed_rows_come_back_exactly_as_written(
    rows: list[tuple[int, str, str, str]],
) -> None:
    text = _csv_text([["customer_id", "email", "first_name", "email_opt_in"]]
                     + [[str(i), e, n, o] for i, e, n, o in rows])  # fmt: skip
    read = list(_rows_of(text))
    assert read == [
        Customer(customer_id=i, email=e, first_name=n, email_opt_in=o.lower() not in CONSENT_NO)
        for i, e, n, o in rows
    ]


def _rows_of(text: str) -> list[Customer | Rejected]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "crm.csv"
        path.write_text(text, encoding="utf-8", newline="")
        return [row for _, row in read_extract(str(path))]


@QUICK
@given(value=st.text(max_size=25))
def test_an_id_is_accepted_exactly_when_it_is_canonical_ascii_digits(value: str) -> None:
    canonical = value.isascii() and value.isdigit() and str(int(value)) == value
    if canonical and 0 < int(value) < 2**63:
        assert check_customer_id(value) == int(value)
    else:
        with pytest.raises(InvalidValue):
            check_customer_id(value)


@QUICK
@given(value=st.text(max_size=40) | st.builds(lambda a, b: f"{a},{b}", addresses, addresses))
def test_an_accepted_address_is_one_bare_address(value: str) -> None:
    try:
        address = check_email(value)
    except InvalidValue:
        return
    if address:
        assert address.count("@") == 1
        assert address.isascii()
        assert not any(c.isspace() or c in ',;<>"()[]\\' or ord(c) < 32 or ord(c) == 127
                       for c in address)  # fmt: skip


@QUICK
@given(value=st.text(max_size=15))
def test_a_consent_value_outside_the_vocabulary_is_never_consent(value: str) -> None:
    word = value.strip(" ").lower()
    if word in CONSENT_YES or word == "":
        assert check_consent(value) is True
    elif word in CONSENT_NO:
        assert check_consent(value) is False
    else:
        with pytest.raises(InvalidValue):
            check_consent(value)


@QUICK
@given(
    rows=st.lists(
        st.lists(st.text(st.characters(blacklist_categories=["Cs"]), max_size=12), min_size=0,
                 max_size=5),
        max_size=8,
    )
)  # fmt: skip
def test_any_rows_are_each_either_a_customer_or_refused_and_never_raise(
    rows: list[list[str]],
) -> None:
    text = _csv_text([["customer_id", "email", "first_name", "mobile"], *rows])
    read = _rows_of(text)
    # Every row read is accounted for once, as a customer or as refused with a line and reason.
    for row in read:
        if isinstance(row, Rejected):
            assert row.errors
            assert all(error.line >= 2 and error.reason for error in row.errors)
        else:
            assert isinstance(row, Customer)
            assert "," not in row.email
            assert "\x00" not in row.first_name
    data_rows = [r for r in csv.reader(io.StringIO(text)) if any(f.strip() for f in r)][1:]
    assert len(read) == len(data_rows)


def test_ndjson_suppression_ids_are_checked_like_csv_ones(tmp_path: Path) -> None:
    lines = [json.dumps(v) for v in (7, "8", 2**63, -1, 1.5, "0x10")]
    url = _extract(tmp_path, "\n".join(lines) + "\n", "s.ndjson")
    with pytest.raises(CrmFileError, match=r"^suppression_path: 4 rows of") as raised:
        list(suppressed_ids(url))
    assert "line 3 of" in str(raised.value)
    assert "line 6 of" in str(raised.value)
