"""The OAuth token cache on its own, with an injected clock: when a token is due for renewal, and
which refusal drops it."""

from __future__ import annotations

from airflow_provider_neo.client.tokens import TokenCache, renewal_margin


def test_a_token_is_renewed_a_tenth_of_its_ttl_before_it_runs_out() -> None:
    now = [1000.0]
    cache = TokenCache(clock=lambda: now[0])
    assert cache.current() is None
    cache.store("t1", ttl_seconds=300)
    assert renewal_margin(300) == 30
    now[0] += 269.9
    assert cache.current() == "t1"
    now[0] += 0.2
    assert cache.current() is None  # due: 30 s before the ttl ends
    cache.store("t2", ttl_seconds=3600)
    cache.invalidate("t1")  # a stale refusal does not drop the fresh token
    assert cache.current() == "t2"
    cache.invalidate("t2")
    assert cache.current() is None
    assert renewal_margin(36_000) == 60  # at most a minute
