"""Secrets never reach a log, an exception or a repr, even when a run fails."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import logging
from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_neo.client.errors import NeoError
from airflow_provider_neo.hooks.neo import NeoHook
from tests.harness import AS_OF, RunningSimulator, connection_json

PASSWORD = "s3cret-Pa55word"
OAUTH_SECRET = "oauth-Secret-Value-42"
PROGRAM: dict[str, Any] = {"program_id": 2282, "point_category_id": 17383}
WINDOW: dict[str, Any] = {"expiry_start": AS_OF, "expiry_end": AS_OF + dt.timedelta(days=30)}


def _secrets_of(hook: NeoHook) -> list[str]:
    md5 = hashlib.md5(PASSWORD.encode()).hexdigest()
    basic = base64.b64encode(f"till01:{md5}".encode()).decode()
    token = hook._tokens._token  # the OAuth token the run fetched, if any
    return [PASSWORD, md5, basic, OAUTH_SECRET, *([token] if token else [])]


def test_a_failing_run_logs_no_secret(
    start_sim: Any,
    neo_conn: Callable[..., str],
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    sim: RunningSimulator = start_sim(
        "--username", "till01", "--password", PASSWORD, "--oauth-secret", OAUTH_SECRET,
        "--error-rate", "0.5", "--reset-rate", "0.2", "--malformed-rate", "0.2",
        "--fault-seed", "9",
    )  # fmt: skip
    basic = json.loads(connection_json(sim, max_retries=2))
    basic |= {"login": "till01", "password": PASSWORD}
    texts: list[str] = []
    hooks = []
    with caplog.at_level(logging.DEBUG):
        for conn in (
            json.dumps(basic),
            connection_json(sim, auth="oauth", oauth_client_secret=OAUTH_SECRET, max_retries=2),
            json.dumps({**basic, "password": "wrong-" + PASSWORD}),
        ):
            neo_conn(sim, raw=conn)
            hook = NeoHook()
            hooks.append(hook)
            for _ in range(3):
                try:
                    list(
                        hook.iter_expiring_allocations(
                            range(400000001, 400000011), **PROGRAM, **WINDOW
                        )
                    )
                except NeoError as exc:
                    texts += [str(exc), repr(exc), exc.body_excerpt or ""]
            texts += [repr(hook.settings), str(hook.stats.snapshot())]
            sim.control("POST", "revoke-tokens")
    captured = capfd.readouterr()
    everything = "\n".join([caplog.text, captured.out, captured.err, *texts])
    assert "retry" in caplog.text  # the run did fail and retry, and logged it
    assert any("Neo refused the credentials" in text for text in texts)
    for hook in hooks:
        for secret in _secrets_of(hook):
            assert secret not in everything


def test_secrets_are_registered_with_airflows_masker(
    simulator: RunningSimulator, neo_conn: Callable[..., str]
) -> None:
    from airflow.sdk._shared.secrets_masker import redact  # what airflow.sdk.log masks with

    conn = json.loads(connection_json(simulator, auth="oauth"))
    conn |= {"login": "till01", "password": PASSWORD}
    conn["extra"]["oauth_client_secret"] = OAUTH_SECRET
    neo_conn(simulator, raw=json.dumps(conn))
    hook = NeoHook()
    hook.settings  # noqa: B018 - loading the connection registers its secrets
    for secret in (PASSWORD, hashlib.md5(PASSWORD.encode()).hexdigest(), OAUTH_SECRET):
        assert redact(f"value {secret} here") == "value *** here"
