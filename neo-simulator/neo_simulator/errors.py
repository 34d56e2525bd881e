"""Capillary-style error bodies: ``{"errors": [{"code": ..., "message": ...}], "warnings": []}``."""

from __future__ import annotations

import enum

import msgspec


class ErrorCode(enum.IntEnum):
    MISSING_PARAMETER = 8001
    INVALID_PARAMETER = 8002
    MISSING_HEADER = 8003
    UNAUTHORIZED = 8010
    NOT_FOUND = 8404
    RATE_LIMITED = 8429
    INTERNAL_ERROR = 8500


def error_body(code: ErrorCode, message: str) -> bytes:
    return msgspec.json.encode(
        {"errors": [{"code": int(code), "message": message}], "warnings": []}
    )
