"""Did reminders save points? Reminded against held-out customers, for expiry days that passed.

The sent-ledger holds, for every reminder sent and every one held out, the points at stake per
program when it was found (`SentLedger.stakes`). Neo says what became of them (`Settlement`, read
by `settlements.fetch_settlements`): the points of that customer, program and expiry day still
AVAILABLE, and the points expired on its REDEEMED, CONSUMED and EXPIRED rows. The points at stake
that did not expire were redeemed before expiry (`saved`).

A reminder's points in a program count as *measured* only once Neo has settled all of them: no
AVAILABLE points remain (Neo's own arithmetic, `records.remaining_points`, summed over the
program's point categories, is exactly zero) and Neo shows at least one REDEEMED, CONSUMED or
EXPIRED row. Until then they are *pending* and left out: before Neo's expiry job has run for a
day, a customer may already have other, earlier-settled rows expiring that day, and counting them
would measure a reminder whose points are still open. Points at stake never settled that way
(returned with their purchase, say) stay pending: neither redeemed nor expired.

Per lead time and program (and over all programs, ``"all"``), `summarise` reports the share of
the points at stake redeemed before expiry, reminded and held out; the uplift (the difference of
the two shares) with a confidence interval; and the points saved, the uplift times the reminded
points at stake. A share is a ratio of sums over customers; its variance is the delta-method
(linearisation) one, var(R) = n / X^2 * s^2(y - R x) with x the stakes, y the saved points and X
their sum, and the uplift's standard error is that of a difference of independent groups.

When will the brand know? Per lead time and program, `summarise` also gives the smallest uplift
the current groups can detect (`minimum_detectable_effect`: 80% power at a 5% two-sided level)
and how many more days of reminders it takes until an uplift of 10 percentage points is
detectable (`days_to_detect`). More days add customers at the recent daily volume: each group's
measured reminders per expiry day over the last 7 expiry days on which the lead time and
program measured any reminder (`recent_daily_volume`). A group's variance shrinks as
n / (n + k * daily) with k more days, its customers alike in spread and stake.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal

import msgspec

from airflow_provider_neo.reminders.ledger import Stake

SETTLED_STATUSES = ("REDEEMED", "CONSUMED", "EXPIRED")
Z_95 = 1.959963984540054  # the two-sided 95% normal quantile, z(0.975)
Z_POWER_80 = 0.8416212335729143  # z(0.8): an effect of the detectable size is found 80% of times
TARGET_UPLIFT = 0.10  # the uplift whose detection `days_to_detect` times: 10 percentage points
RECENT_EXPIRY_DAYS = 7  # the expiry days the recent daily volume is measured over
ALL_PROGRAMS = "all"


class Settlement(msgspec.Struct, frozen=True, kw_only=True):
    """What Neo says of one customer's points expiring on one day in one program, summed over
    the program's point categories."""

    available: Decimal  # points still open on AVAILABLE rows (`records.remaining_points`)
    expired: Decimal  # expired_exclusive_value of the REDEEMED, CONSUMED and EXPIRED rows
    settled_rows: int  # how many REDEEMED, CONSUMED and EXPIRED rows Neo shows

    @property
    def settled(self) -> bool:
        """Neo has settled every point: none is left AVAILABLE, and some row says how."""
        return self.available == 0 and self.settled_rows > 0


SettlementKey = tuple[int, dt.date, str]  # customer, expiry day, program


class ProgramOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """One reminder's points in one program: at stake when found, and saved (not expired)."""

    key: str
    lead_days: int
    expiry_date: dt.date
    program: str
    held_out: bool
    at_stake: Decimal
    saved: Decimal


class Effect(msgspec.Struct, kw_only=True):
    """Reminded against held out, for one lead time and program."""

    lead_days: int
    program: str
    reminded: int  # customers (reminders) measured
    held_out: int
    pending: int  # reminders whose points Neo has not settled yet, left out
    reminded_at_stake: Decimal
    held_out_at_stake: Decimal
    reminded_saved: Decimal
    held_out_saved: Decimal
    reminded_share: float | None  # of the points at stake, redeemed before expiry
    held_out_share: float | None
    uplift: float | None
    uplift_low: float | None  # the confidence interval of the uplift
    uplift_high: float | None
    points_saved: Decimal | None  # uplift x reminded points at stake
    detectable_uplift: float | None = None  # the minimum detectable effect of these groups
    days_to_detect: int | None = None  # more days of reminders until TARGET_UPLIFT shows
    reminded_per_day: float = 0.0  # the recent daily volume, measured reminders per expiry day
    held_out_per_day: float = 0.0


def outcomes(
    stakes: Iterable[Stake], settlements: Mapping[SettlementKey, Settlement]
) -> tuple[list[ProgramOutcome], list[tuple[Stake, str]]]:
    """Each stake's programs that Neo has settled as outcomes, and the (stake, program) pairs
    still pending."""
    measured: list[ProgramOutcome] = []
    pending: list[tuple[Stake, str]] = []
    for stake in stakes:
        for program, at_stake in sorted(stake.programs.items()):
            settlement = settlements.get((stake.customer_id, stake.expiry_date, program))
            if settlement is None or not settlement.settled:
                pending.append((stake, program))
                continue
            lost = min(max(settlement.expired, Decimal(0)), at_stake)
            measured.append(
                ProgramOutcome(
                    key=stake.key, lead_days=stake.lead_days, expiry_date=stake.expiry_date,
                    program=program, held_out=stake.held_out, at_stake=at_stake,
                    saved=at_stake - lost,
                )
            )  # fmt: skip
    return measured, pending


def ratio_share(pairs: Sequence[tuple[Decimal, Decimal]]) -> tuple[float | None, float | None]:
    """The ratio of sums (saved / at stake) and its delta-method variance (None for n < 2)."""
    stake = float(sum((x for x, _ in pairs), Decimal(0)))
    if not pairs or stake <= 0:
        return None, None
    ratio = float(sum((y for _, y in pairs), Decimal(0))) / stake
    n = len(pairs)
    if n < 2:
        return ratio, None
    residuals = [float(y) - ratio * float(x) for x, y in pairs]
    mean = sum(residuals) / n
    spread = sum((r - mean) ** 2 for r in residuals) / (n - 1)
    return ratio, n * spread / stake**2


def minimum_detectable_effect(
    reminded_variance: float | None,
    held_out_variance: float | None,
    *,
    z_level: float = Z_95,
    z_power: float = Z_POWER_80,
) -> float | None:
    """The smallest uplift that groups with these share variances detect with 80% power at a 5%
    two-sided level: (z(0.975) + z(0.8)) * sqrt(var_r + var_h); None without both variances."""
    if reminded_variance is None or held_out_variance is None:
        return None
    return (z_level + z_power) * math.sqrt(reminded_variance + held_out_variance)


def recent_daily_volume(
    days: Mapping[str, dt.date], held_out: Mapping[str, bool], recent: int = RECENT_EXPIRY_DAYS
) -> tuple[float, float]:
    """Measured reminders per expiry day, (reminded, held out), over the last `recent` expiry
    days with any (`days`: reminder key -> its expiry day; `held_out`: key -> its group)."""
    last = sorted(set(days.values()))[-recent:]
    if not last:
        return 0.0, 0.0
    window = set(last)
    counted = [held_out[key] for key, day in days.items() if day in window]
    held = sum(counted)
    return (len(counted) - held) / len(last), held / len(last)


def days_to_detect(
    uplift: float,
    *,
    variances: tuple[float | None, float | None],
    sizes: tuple[int, int],
    per_day: tuple[float, float],
    z_level: float = Z_95,
    z_power: float = Z_POWER_80,
) -> int | None:
    """The fewest whole days k of further reminders after which `uplift` is detectable, given
    each group's (reminded, held out) share variance, size n and daily volume: the smallest
    k >= 0 with (z(0.975) + z(0.8)) * sqrt(sum of var * n / (n + k * daily)) <= uplift. 0 when
    the groups already detect it; None when they never will (a variance is unknown, or a group
    that does not grow keeps it out of reach)."""
    (var_r, var_h), (n_r, n_h), (d_r, d_h) = variances, sizes, per_day
    if var_r is None or var_h is None or n_r < 1 or n_h < 1 or uplift <= 0:
        return None
    budget = (uplift / (z_level + z_power)) ** 2  # the largest variance sum that detects it

    def variance_after(days: float) -> float:
        return var_r * n_r / (n_r + days * d_r) + var_h * n_h / (n_h + days * d_h)

    if variance_after(0) <= budget:
        return 0
    # variance_after(k) <= budget, both sides times (n_r + k d_r)(n_h + k d_h) > 0, is the
    # quadratic a k^2 + b k + c >= 0 with c < 0 (not detectable yet).
    a = budget * d_r * d_h
    b = budget * (n_r * d_h + n_h * d_r) - var_r * n_r * d_h - var_h * n_h * d_r
    c = (budget - var_r - var_h) * n_r * n_h
    if a > 0:
        root = math.sqrt(b * b - 4 * a * c)
        k = 2 * -c / (b + root) if b >= 0 else (root - b) / (2 * a)
    elif b > 0:
        k = -c / b
    else:
        return None  # a group that stays as it is keeps the variance above the budget
    days = max(math.ceil(k), 1)
    # The root is a float: settle on the whole day by the definition itself.
    while variance_after(days) > budget:
        days += 1
    while days > 1 and variance_after(days - 1) <= budget:
        days -= 1
    return days


def summarise(
    measured: Iterable[ProgramOutcome], pending: Iterable[tuple[Stake, str]], z: float = Z_95
) -> list[Effect]:
    """The effect per lead time and program, and per lead time over all programs (a reminder's
    programs summed into one customer), sorted by lead time (longest first) then program."""
    groups: dict[tuple[int, str], dict[bool, dict[str, tuple[Decimal, Decimal]]]] = defaultdict(
        lambda: {True: {}, False: {}}
    )
    days: dict[tuple[int, str], dict[str, dt.date]] = defaultdict(dict)
    held_out: dict[str, bool] = {}
    for outcome in measured:
        held_out[outcome.key] = outcome.held_out
        for program in (outcome.program, ALL_PROGRAMS):
            cell = groups[(outcome.lead_days, program)][outcome.held_out]
            x, y = cell.get(outcome.key, (Decimal(0), Decimal(0)))
            cell[outcome.key] = (x + outcome.at_stake, y + outcome.saved)
            days[(outcome.lead_days, program)][outcome.key] = outcome.expiry_date
    waiting: dict[tuple[int, str], set[str]] = defaultdict(set)
    for stake, program in pending:
        for name in (program, ALL_PROGRAMS):
            waiting[(stake.lead_days, name)].add(stake.key)
    effects = []
    for lead, program in sorted(set(groups) | set(waiting), key=lambda g: (-g[0], g[1])):
        cells = groups[(lead, program)]
        reminded, held = list(cells[False].values()), list(cells[True].values())
        r_share, r_var = ratio_share(reminded)
        h_share, h_var = ratio_share(held)
        uplift = low = high = None
        saved = None
        r_stake = sum((x for x, _ in reminded), Decimal(0))
        if r_share is not None and h_share is not None:
            uplift = r_share - h_share
            saved = (Decimal(repr(uplift)) * r_stake).quantize(Decimal("0.001"))
            if r_var is not None and h_var is not None:
                margin = z * math.sqrt(r_var + h_var)
                low, high = uplift - margin, uplift + margin
        per_day = recent_daily_volume(days[(lead, program)], held_out)
        effects.append(
            Effect(
                lead_days=lead, program=program, reminded=len(reminded), held_out=len(held),
                pending=len(waiting[(lead, program)]), reminded_at_stake=r_stake,
                held_out_at_stake=sum((x for x, _ in held), Decimal(0)),
                reminded_saved=sum((y for _, y in reminded), Decimal(0)),
                held_out_saved=sum((y for _, y in held), Decimal(0)),
                reminded_share=r_share, held_out_share=h_share, uplift=uplift,
                uplift_low=low, uplift_high=high, points_saved=saved,
                detectable_uplift=minimum_detectable_effect(r_var, h_var),
                days_to_detect=days_to_detect(
                    TARGET_UPLIFT, variances=(r_var, h_var), sizes=(len(reminded), len(held)),
                    per_day=per_day,
                ),
                reminded_per_day=per_day[0], held_out_per_day=per_day[1],
            )
        )  # fmt: skip
    return effects
