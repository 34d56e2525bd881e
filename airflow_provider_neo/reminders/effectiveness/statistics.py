"""Did reminders save points? Reminded against held-out customers, for expiry days that passed.

The sent-ledger holds, for every reminder sent and every one held out, the points at stake per
program when it was found (`SentLedger.stakes`). Neo says what became of them: the paIds rows of
that customer, program and expiry day with status REDEEMED, CONSUMED or EXPIRED. The points at
stake that did not expire were redeemed before expiry (`saved`). A customer whose rows are all
still AVAILABLE (Neo has not run its expiry yet) is counted as pending and left out.

Per lead time and program (and over all programs, ``"all"``), `summarise` reports the share of
the points at stake redeemed before expiry, reminded and held out; the uplift (the difference of
the two shares) with a confidence interval; and the points saved, the uplift times the reminded
points at stake. A share is a ratio of sums over customers; its variance is the delta-method
(linearisation) one, var(R) = n / X^2 * s^2(y - R x) with x the stakes, y the saved points and X
their sum, and the uplift's standard error is that of a difference of independent groups.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from decimal import Decimal

import msgspec

from airflow_provider_neo.hooks.neo import NeoHook
from airflow_provider_neo.reminders.ledger import Stake

SETTLED_STATUSES = ("REDEEMED", "CONSUMED", "EXPIRED")
Z_95 = 1.959963984540054  # the two-sided 95% normal quantile
ALL_PROGRAMS = "all"


class ProgramOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """One reminder's points in one program: at stake when found, and saved (not expired)."""

    key: str
    lead_days: int
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


def expired_points(
    hook: NeoHook, stakes: Sequence[Stake], programs: Iterable[tuple[int, int]]
) -> dict[tuple[int, str, str], Decimal]:
    """(customer, expiry day, program) -> points expired, for every one Neo has settled (rows of
    status REDEEMED, CONSUMED or EXPIRED, summed over the point categories): batched paIds calls,
    one set per expiry day."""
    by_day: dict[str, set[int]] = defaultdict(set)
    for stake in stakes:
        by_day[stake.expiry_date.isoformat()].add(stake.customer_id)
    expired: dict[tuple[int, str, str], Decimal] = {}
    programs = list(programs)
    for day, customers in sorted(by_day.items()):
        for program_id, category_id in programs:
            for status in SETTLED_STATUSES:
                for row in hook.iter_points_awarded(
                    sorted(customers),
                    program_id=program_id,
                    point_category_id=category_id,
                    expiry_start=day,
                    expiry_end=day,
                    status=status,
                ):
                    key = (row.customer_id, day, str(program_id))
                    expired[key] = expired.get(key, Decimal(0)) + row.expired_exclusive_value
    return expired


def outcomes(
    stakes: Iterable[Stake], expired: dict[tuple[int, str, str], Decimal]
) -> tuple[list[ProgramOutcome], list[tuple[Stake, str]]]:
    """Each stake's programs as outcomes, and the (stake, program) pairs still pending."""
    measured: list[ProgramOutcome] = []
    pending: list[tuple[Stake, str]] = []
    for stake in stakes:
        for program, at_stake in sorted(stake.programs.items()):
            lost = expired.get((stake.customer_id, stake.expiry_date.isoformat(), program))
            if lost is None:
                pending.append((stake, program))
                continue
            measured.append(
                ProgramOutcome(
                    key=stake.key, lead_days=stake.lead_days, program=program,
                    held_out=stake.held_out, at_stake=at_stake,
                    saved=at_stake - min(max(lost, Decimal(0)), at_stake),
                )
            )  # fmt: skip
    return measured, pending


def _share(pairs: Sequence[tuple[Decimal, Decimal]]) -> tuple[float | None, float | None]:
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


def summarise(
    measured: Iterable[ProgramOutcome], pending: Iterable[tuple[Stake, str]], z: float = Z_95
) -> list[Effect]:
    """The effect per lead time and program, and per lead time over all programs (a reminder's
    programs summed into one customer), sorted by lead time (longest first) then program."""
    groups: dict[tuple[int, str], dict[bool, dict[str, tuple[Decimal, Decimal]]]] = defaultdict(
        lambda: {True: {}, False: {}}
    )
    for outcome in measured:
        for program in (outcome.program, ALL_PROGRAMS):
            cell = groups[(outcome.lead_days, program)][outcome.held_out]
            x, y = cell.get(outcome.key, (Decimal(0), Decimal(0)))
            cell[outcome.key] = (x + outcome.at_stake, y + outcome.saved)
    waiting: dict[tuple[int, str], set[str]] = defaultdict(set)
    for stake, program in pending:
        for name in (program, ALL_PROGRAMS):
            waiting[(stake.lead_days, name)].add(stake.key)
    effects = []
    for lead, program in sorted(set(groups) | set(waiting), key=lambda g: (-g[0], g[1])):
        cells = groups[(lead, program)]
        reminded, held = list(cells[False].values()), list(cells[True].values())
        r_share, r_var = _share(reminded)
        h_share, h_var = _share(held)
        uplift = low = high = None
        saved = None
        r_stake = sum((x for x, _ in reminded), Decimal(0))
        if r_share is not None and h_share is not None:
            uplift = r_share - h_share
            saved = (Decimal(repr(uplift)) * r_stake).quantize(Decimal("0.001"))
            if r_var is not None and h_var is not None:
                margin = z * math.sqrt(r_var + h_var)
                low, high = uplift - margin, uplift + margin
        effects.append(
            Effect(
                lead_days=lead, program=program, reminded=len(reminded), held_out=len(held),
                pending=len(waiting[(lead, program)]), reminded_at_stake=r_stake,
                held_out_at_stake=sum((x for x, _ in held), Decimal(0)),
                reminded_saved=sum((y for _, y in reminded), Decimal(0)),
                held_out_saved=sum((y for _, y in held), Decimal(0)),
                reminded_share=r_share, held_out_share=h_share, uplift=uplift,
                uplift_low=low, uplift_high=high, points_saved=saved,
            )
        )  # fmt: skip
    return effects
