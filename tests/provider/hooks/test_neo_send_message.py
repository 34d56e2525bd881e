"""Capillary's sendMessage through NeoHook against the simulator: both kinds of credentials, the
bodies of each channel recorded as sent, a refused body not retried, an outage retried; and the
simulator's settlement of points as time passes."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_neo.client.errors import NeoBadRequestError, NeoServerError
from airflow_provider_neo.hooks.neo import NeoHook
from tests.ground_truth import day_bounds_ms
from tests.harness import TIMEZONE, RunningSimulator


@pytest.mark.parametrize("auth", ["basic", "oauth"])
def test_messages_of_every_channel_are_recorded_as_sent(
    start_sim: Callable[..., RunningSimulator], neo_conn: Callable[..., str], auth: str
) -> None:
    sim = start_sim()
    hook = NeoHook(neo_conn(sim, auth=auth))
    bodies = {
        "email": {"email": [{"to": "a@example.com", "from": "r@example.com", "subject": "S",
                             "body": "<p>B</p>"}]},
        "sms": {"sms": [{"to": "+919800000001", "body": "B", "sender": "REWARDS"}]},
        "whatsapp": {"whatsapp": [{"to": "+919800000002", "body": "B"}]},
    }  # fmt: skip
    for channel, body in bodies.items():
        assert hook.send_message(channel, body)["accepted"] == 1
    recorded = sim.control("GET", "messages")
    assert recorded == [
        {"channel": channel, "message": body[channel][0]} for channel, body in bodies.items()
    ]
    assert sim.control("GET", "stats")["requests"]["send_message"] == {"200": 3}


def test_a_refused_body_is_not_retried_and_an_outage_is(
    start_sim: Callable[..., RunningSimulator], neo_conn: Callable[..., str]
) -> None:
    sim = start_sim()
    hook = NeoHook(neo_conn(sim, max_retries=2))
    with pytest.raises(NeoBadRequestError, match="Body must be"):
        hook.send_message("sms", {"sms": [{"body": "no recipient"}]})
    with pytest.raises(ValueError, match="channel"):
        hook.send_message("pigeon", {})
    sim.control("PUT", "messages", json={"refuse_after": 0})
    with pytest.raises(NeoServerError, match="gave up after 3 attempts"):
        hook.send_message("sms", {"sms": [{"to": "+1", "body": "B"}]})
    assert sim.control("GET", "stats")["requests"]["send_message"] == {"400": 1, "503": 3}
    assert sim.control("GET", "messages") == []


def _available(sim: RunningSimulator, through: dt.date) -> dict[int, int]:
    """allocation id -> customer, of those AVAILABLE and expiring by the end of `through`."""
    _, end = day_bounds_ms(through, through, TIMEZONE)
    with sim.db() as db:
        rows = db.execute(
            "SELECT id, customer_id FROM allocations WHERE status = 'AVAILABLE'"
            " AND expiry_date <= ?",
            (end,),
        )
        return dict(rows.fetchall())


def test_settling_redeems_reminded_customers_more_often_and_is_reproducible(
    start_sim: Callable[..., RunningSimulator],
) -> None:
    sims = [start_sim(customers=400) for _ in range(2)]
    through = dt.date(2027, 6, 30)
    due = _available(sims[0], through)
    assert len(due) > 100
    reminded = set(sorted(set(due.values()))[::2])
    answers: list[Any] = []
    for sim in sims:
        body = {
            "through": through.isoformat(),
            "redeem_share": 0.1,
            "reminded_redeem_share": 0.9,
            "reminded_customer_ids": sorted(reminded),
        }
        answers.append(sim.control("POST", "settle", json=body))
        assert sim.control("POST", "settle", json=body) == {"redeemed": 0, "expired": 0}
    assert answers[0] == answers[1]  # the same seed, the same outcome
    assert answers[0]["redeemed"] + answers[0]["expired"] == len(due)
    assert _available(sims[0], through) == {}
    with sims[0].db() as db:
        statuses = dict(
            db.execute(
                "SELECT id, status FROM allocations WHERE id IN (SELECT value FROM json_each(?))",
                (json.dumps(list(due)),),
            ).fetchall()
        )
    for group, low, high in ((True, 0.8, 1.0), (False, 0.0, 0.2)):
        ids = [i for i, customer in due.items() if (customer in reminded) is group]
        redeemed = sum(statuses[i] == "REDEEMED" for i in ids) / len(ids)
        assert low <= redeemed <= high, (group, redeemed)
    assert set(statuses.values()) <= {"REDEEMED", "EXPIRED", "CONSUMED"}
