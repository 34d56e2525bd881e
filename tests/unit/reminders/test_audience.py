"""The holdout: a stable share of customers chosen by a salted hash, recorded in the sent-ledger
with the points they had at stake and never sent; consent from the shard's rows and the
suppression index; and ledgers from before stakes stay readable."""

from __future__ import annotations

import datetime as dt
import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest
from airflow.providers.common.compat.sdk import ObjectStoragePath

from airflow_provider_neo.reminders.audience import Consent, in_holdout
from airflow_provider_neo.reminders.delivery import deliver
from airflow_provider_neo.reminders.ledger import SentLedger, Stake
from airflow_provider_neo.reminders.model import Customer, Reminder
from airflow_provider_neo.reminders.suppression import SuppressionIndex

CUSTOMERS = range(400_000_001, 400_010_001)  # 10,000 customer ids, as the simulator numbers them


# Deterministic for a salt; by chance alone a share's standard error on 10,000 customers is
# 0.3 points at 10% and 0.43 at 25%, so one point is a bound a working hash meets.
@pytest.mark.parametrize(("share", "salt"), [(0.1, "neo-reminders"), (0.25, "brand-b")])
def test_the_holdout_is_within_one_point_of_its_share_on_10000_customers(
    share: float, salt: str
) -> None:
    held = sum(in_holdout(customer, share=share, salt=salt) for customer in CUSTOMERS)
    assert abs(held / len(CUSTOMERS) - share) <= 0.01


def test_the_holdout_is_stable_across_runs_and_changes_with_the_salt() -> None:
    first = {c for c in CUSTOMERS if in_holdout(c, share=0.1, salt="neo-reminders")}
    again = {c for c in reversed(CUSTOMERS) if in_holdout(c, share=0.1, salt="neo-reminders")}
    assert first == again
    other_salt = {c for c in CUSTOMERS if in_holdout(c, share=0.1, salt="another")}
    assert len(first & other_salt) < len(first) * 0.2  # about 10% overlap, by chance alone
    larger = {c for c in CUSTOMERS if in_holdout(c, share=0.2, salt="neo-reminders")}
    assert first < larger  # raising the share only adds customers to the holdout
    assert not any(in_holdout(c, share=0, salt="neo-reminders") for c in CUSTOMERS)


def _reminders(count: int) -> list[Reminder]:
    return [
        Reminder(
            customer_id=customer, email=f"c{customer}@example.com", first_name="", lead_days=7,
            expiry_date=dt.date(2026, 11, 28), remaining_points=Decimal("12.5"),
            programs={"2282": Decimal("10"), "3379": Decimal("2.5")},
        )
        for customer in CUSTOMERS[:count]
    ]  # fmt: skip


def test_held_out_reminders_are_recorded_with_their_stake_and_never_sent(tmp_path: Path) -> None:
    ledger = SentLedger.open(path=tmp_path / "ledger.sqlite3")
    reminders = _reminders(200)

    def held_out(reminder: Reminder) -> bool:
        return in_holdout(reminder.customer_id, share=0.3, salt="s")

    held = {r.key for r in reminders if held_out(r)}
    assert 40 < len(held) < 80
    sent: list[str] = []
    done = deliver(
        reminders, ledger, lambda r: sent.append(r.key), owner="try-1", held_out=held_out,
        stake=lambda r: r.programs,
    )  # fmt: skip
    assert done.held_out == len(held)
    assert done.sent == len(sent) == 200 - len(held)
    assert not set(sent) & held
    stakes = ledger.stakes(expiring_before=dt.date(2026, 11, 29))
    assert {s.key for s in stakes if s.held_out} == held
    assert {s.key for s in stakes if not s.held_out} == set(sent)
    assert stakes[0].programs == {"2282": Decimal("10"), "3379": Decimal("2.5")}
    assert ledger.stakes(expiring_before=dt.date(2026, 11, 28)) == []  # not passed yet
    # A re-run sends nothing and holds out the same customers.
    again = deliver(reminders, ledger, lambda r: sent.append(r.key), owner="try-2",
                    held_out=held_out)  # fmt: skip
    assert (again.sent, again.already_sent, again.held_out) == (0, 200 - len(held), len(held))
    ledger.close()


def test_suppressed_reminders_are_counted_and_leave_no_trace_in_the_ledger(tmp_path: Path) -> None:
    ledger = SentLedger.open(path=tmp_path / "ledger.sqlite3")
    reminders = _reminders(10)
    suppression = tmp_path / "suppressed.csv"
    suppression.write_text(f"customer_id\n{CUSTOMERS[0]}\n{CUSTOMERS[1]}\n")
    index, _ = SuppressionIndex.current(str(suppression), ObjectStoragePath(tmp_path / "index"))
    # The shard's rows: the third customer said no in the CRM extract's email_opt_in column,
    # the fourth only to SMS.
    shard = [
        Customer(customer_id=CUSTOMERS[2], email="c@example.com", email_opt_in=False),
        Customer(customer_id=CUSTOMERS[3], email="d@example.com", sms_opt_in=False),
    ]
    consent = Consent.of(
        medium="email", customers=shard, customer_ids=[r.customer_id for r in reminders],
        suppression=index,
    )  # fmt: skip
    done = deliver(
        reminders, ledger, lambda r: None, owner="try-1",
        suppressed=lambda r: not consent.allows(r.customer_id),
    )  # fmt: skip
    assert (done.suppressed, done.sent) == (3, 7)
    assert ledger.sent_keys() == {r.key for r in reminders[3:]}
    sms = Consent.of(medium="sms", customers=shard, customer_ids=CUSTOMERS[:4])
    assert [sms.allows(c) for c in CUSTOMERS[:4]] == [True, True, True, False]
    ledger.close()


def test_a_ledger_from_before_stakes_gains_the_column_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE neo_reminder_ledger (reminder_key VARCHAR(200) PRIMARY KEY,"
            " customer_id BIGINT NOT NULL, expiry_date VARCHAR(10) NOT NULL,"
            " lead_days INTEGER NOT NULL, channel VARCHAR(40) NOT NULL, state VARCHAR(10) NOT NULL,"
            " owner VARCHAR(500) NOT NULL, lease_until DOUBLE PRECISION NOT NULL,"
            " attempts INTEGER NOT NULL, claimed_at DOUBLE PRECISION NOT NULL,"
            " sent_at DOUBLE PRECISION)"
        )
        db.execute(
            "INSERT INTO neo_reminder_ledger VALUES"
            " ('7:2026-01-01:7', 7, '2026-01-01', 7, 'email', 'sent', 'old', 0, 1, 0, 0)"
        )
    ledger = SentLedger.open(path=path)
    assert ledger.sent_keys() == {"7:2026-01-01:7"}
    assert ledger.stakes(expiring_before=dt.date(2027, 1, 1)) == []  # no stake was recorded
    reminder = _reminders(1)[0]
    deliver([reminder], ledger, lambda r: None, owner="new", stake=lambda r: r.programs)
    assert ledger.stakes(expiring_before=dt.date(2027, 1, 1)) == [
        Stake(
            key=reminder.key, customer_id=reminder.customer_id, expiry_date=reminder.expiry_date,
            lead_days=7, held_out=False, programs=reminder.programs,
        )
    ]  # fmt: skip
    ledger.close()
