"""The simulator's command line: documented flags, clear errors, and a clean stop."""

from __future__ import annotations

import subprocess
import sys

import pytest

from neo_simulator.__main__ import settings_from_args


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "neo_simulator", *args],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_help_lists_every_documented_flag() -> None:
    result = _run("--help")
    assert result.returncode == 0
    flags = (
        "--port --customers --seed --username --password --oauth-key --oauth-secret --token-ttl"
        " --latency-ms --error-rate --rate-limit-per-minute --no-retry-after --malformed-rate"
        " --reset-rate --timezone --as-of"
    )
    for flag in flags.split():
        assert flag in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--error-rate", "1.5"], "--error-rate: must be between 0 and 1"),
        (["--latency-ms", "-3"], "--latency-ms: must not be negative"),
        (["--timezone", "Mars/Olympus"], "--timezone: unknown IANA time zone"),
        (["--as-of", "yesterday"], "--as-of: invalid fromisoformat value"),
    ],
)
def test_bad_flags_fail_with_a_message_naming_the_flag(args: list[str], message: str) -> None:
    result = _run(*args)
    assert result.returncode == 2
    assert message in result.stderr


def test_defaults_are_the_documented_ones() -> None:
    settings, host, port = settings_from_args([])
    assert (host, port) == ("127.0.0.1", 8790)
    assert settings.credentials.username == "neo_user"
    assert settings.credentials.token_ttl_seconds == 300
    assert settings.timezone == "Asia/Kolkata"
    assert not any(
        (settings.faults.error_rate, settings.faults.latency_ms, settings.faults.reset_rate,
         settings.faults.malformed_rate, settings.faults.rate_limit_per_minute)
    )  # fmt: skip
