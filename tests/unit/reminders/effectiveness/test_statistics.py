"""The effectiveness statistics, without Airflow or a server: which points count as measured,
the shares and uplift, the smallest detectable uplift and the days until 10 points show, each
against figures worked out by hand."""

from __future__ import annotations

import datetime as dt
import math
import subprocess
import sys
from decimal import Decimal

import msgspec
import pytest

from airflow_provider_neo.reminders.effectiveness.statistics import (
    ALL_PROGRAMS,
    Settlement,
    days_to_detect,
    minimum_detectable_effect,
    outcomes,
    recent_daily_volume,
    summarise,
)
from airflow_provider_neo.reminders.ledger import Stake

DAY = dt.date(2026, 12, 1)
Z_SUM = 1.959964 + 0.841621  # z(0.975) + z(0.8), from a normal table


def _stake(customer: int, programs: dict[str, str], *, held_out: bool = False,
           day: dt.date = DAY, lead: int = 7) -> Stake:  # fmt: skip
    return Stake(
        key=f"{customer}:{day.isoformat()}:{lead}", customer_id=customer, expiry_date=day,
        lead_days=lead, held_out=held_out, programs={p: Decimal(v) for p, v in programs.items()},
    )  # fmt: skip


def _settled(expired: str) -> Settlement:
    return Settlement(available=Decimal(0), expired=Decimal(expired), settled_rows=1)


def test_statistics_and_report_import_without_airflow() -> None:
    code = (
        "import sys\n"
        "import airflow_provider_neo.reminders.effectiveness.statistics\n"
        "import airflow_provider_neo.reminders.effectiveness.report\n"
        "print(sorted(m for m in sys.modules if m == 'airflow' or m.startswith('airflow.')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"


def test_points_count_as_settled_only_when_none_is_left_available() -> None:
    assert _settled("5").settled
    assert Settlement(available=Decimal("0.000"), expired=Decimal(0), settled_rows=2).settled
    # Before Neo's expiry job: earlier rows of that day are settled, the points at stake not.
    assert not Settlement(available=Decimal("0.001"), expired=Decimal(0), settled_rows=3).settled
    # Nothing settled at all (no row says what became of the points).
    assert not Settlement(available=Decimal(0), expired=Decimal(0), settled_rows=0).settled


def test_outcomes_measure_settled_programs_and_leave_the_rest_pending() -> None:
    stake = _stake(1, {"2282": "40", "3379": "12.5"})
    still_open = Settlement(available=Decimal("12.5"), expired=Decimal("3"), settled_rows=1)
    measured, pending = outcomes(
        [stake, _stake(2, {"2282": "10"})],
        {(1, DAY, "2282"): _settled("15"), (1, DAY, "3379"): still_open},
    )
    assert [(o.key, o.program, o.at_stake, o.saved) for o in measured] == [
        (stake.key, "2282", Decimal(40), Decimal(25))
    ]
    assert measured[0].expiry_date == DAY
    assert [(s.customer_id, program) for s, program in pending] == [(1, "3379"), (2, "2282")]


def test_expired_points_beyond_the_stake_lose_the_stake_only() -> None:
    measured, _ = outcomes([_stake(1, {"2282": "10"})], {(1, DAY, "2282"): _settled("25")})
    assert measured[0].saved == 0


def test_a_report_before_neo_settles_measures_nothing() -> None:
    stakes = [_stake(c, {"2282": "10"}, held_out=c % 2 == 0) for c in range(1, 7)]
    open_points = Settlement(available=Decimal(10), expired=Decimal(0), settled_rows=1)
    measured, pending = outcomes(stakes, {(c, DAY, "2282"): open_points for c in range(1, 7)})
    assert measured == []
    effects = summarise(measured, pending)
    assert [(e.program, e.reminded, e.held_out, e.pending) for e in effects] == [
        ("2282", 0, 0, 6), (ALL_PROGRAMS, 0, 0, 6),
    ]  # fmt: skip
    assert all(e.uplift is None and e.days_to_detect is None for e in effects)


def test_minimum_detectable_effect_at_80_percent_power_and_5_percent_level() -> None:
    # sqrt(0.0016 + 0.0020) = 0.06
    assert minimum_detectable_effect(0.0016, 0.0020) == pytest.approx(Z_SUM * 0.06, abs=1e-6)
    assert minimum_detectable_effect(0.0016, None) is None


def test_days_to_detect_ten_points_with_both_groups_growing() -> None:
    # Both groups grow by a fifth of their size a day, so each variance is 0.0036 * 5 / (5 + k):
    # detectable once 0.0036 * 5 / (5 + k) <= (0.10 / Z_SUM)^2 = 0.00127407, k >= 9.13.
    assert days_to_detect(0.10, variances=(0.0016, 0.0020), sizes=(40, 10), per_day=(8, 2)) == 10
    assert minimum_detectable_effect(0.0036 * 5 / 14, 0) == pytest.approx(0.1005, abs=1e-4)
    assert minimum_detectable_effect(0.0036 * 5 / 15, 0) == pytest.approx(0.0970, abs=1e-4)


def test_days_to_detect_when_only_the_reminded_group_grows() -> None:
    # 0.0016 * 40 / (40 + 8k) + 0.0004 <= 0.00127407: 5 + k >= 0.008 / 0.00087407, k >= 4.15.
    assert days_to_detect(0.10, variances=(0.0016, 0.0004), sizes=(40, 10), per_day=(8, 0)) == 5


def test_days_to_detect_is_zero_once_detectable_and_none_when_out_of_reach() -> None:
    assert days_to_detect(0.10, variances=(0.0005, 0.0005), sizes=(40, 10), per_day=(0, 0)) == 0
    # The held-out group alone keeps the variance above 0.00127407 and does not grow.
    assert days_to_detect(0.10, variances=(0.0016, 0.002), sizes=(40, 10), per_day=(8, 0)) is None
    assert days_to_detect(0.10, variances=(0.0016, None), sizes=(40, 1), per_day=(8, 1)) is None
    # No reminders lately: the groups do not grow.
    assert days_to_detect(0.10, variances=(0.0016, 0.002), sizes=(40, 10), per_day=(0, 0)) is None


def test_recent_daily_volume_counts_the_last_seven_expiry_days_with_any() -> None:
    days: dict[str, dt.date] = {}
    held_out: dict[str, bool] = {}
    # Expiry days 1 to 9 of a month, every other one: day i has i reminded and 1 held out.
    for i in range(1, 10):
        day = dt.date(2026, 12, 2 * i)
        for n in range(i):
            days[f"r{i}-{n}"], held_out[f"r{i}-{n}"] = day, False
        days[f"h{i}"], held_out[f"h{i}"] = day, True
    # The last 7 days with any are days 3 to 9: (3 + ... + 9) / 7 = 6 reminded a day; the gaps
    # between expiry days do not count as days.
    assert recent_daily_volume(days, held_out) == (6.0, 1.0)
    assert recent_daily_volume({}, {}) == (0.0, 0.0)


def test_summarise_by_hand() -> None:
    other = DAY + dt.timedelta(days=1)
    # (customer, points at stake, points expired, expiry day)
    reminded = [(1, "10", "0", DAY), (2, "10", "10", DAY), (3, "20", "10", other)]
    held = [(4, "10", "10", DAY), (5, "10", "5", other)]
    stakes = [_stake(c, {"2282": x}, day=d) for c, x, _, d in reminded] + [
        _stake(c, {"2282": x}, held_out=True, day=d) for c, x, _, d in held
    ]
    settled = {(c, d, "2282"): _settled(lost) for c, _, lost, d in reminded + held}
    measured, pending = outcomes(stakes, settled)
    assert pending == []
    effect, everything = summarise(measured, pending)
    assert (effect.program, everything.program) == ("2282", ALL_PROGRAMS)
    # Reminded: saved 10, 0, 10 of 10, 10, 20: R = 20 / 40 = 0.5, residuals y - R x = 5, -5, 0,
    # s^2 = 25, var = 3 * 25 / 40^2 = 0.046875. Held out: saved 0, 5 of 10, 10: R = 0.25,
    # residuals -2.5, 2.5, s^2 = 12.5, var = 2 * 12.5 / 20^2 = 0.0625.
    assert (effect.reminded_share, effect.held_out_share) == (0.5, 0.25)
    assert effect.uplift == pytest.approx(0.25)
    margin = 1.959964 * math.sqrt(0.046875 + 0.0625)
    assert effect.uplift_low == pytest.approx(0.25 - margin, abs=1e-6)
    assert effect.uplift_high == pytest.approx(0.25 + margin, abs=1e-6)
    assert effect.points_saved == Decimal("10.000")  # 0.25 x 40
    assert effect.detectable_uplift == pytest.approx(Z_SUM * math.sqrt(0.109375), abs=1e-6)
    # Two expiry days: 1.5 reminded and 1 held out a day, so both groups shrink as 2 / (2 + k):
    # 0.109375 * 2 / (2 + k) <= 0.00127407 from k >= 169.69.
    assert (effect.reminded_per_day, effect.held_out_per_day) == (1.5, 1.0)
    assert effect.days_to_detect == 170
    # One program: the figures over all programs are the same.
    assert everything == msgspec.structs.replace(effect, program=ALL_PROGRAMS)
