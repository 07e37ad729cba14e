"""Signing of outbound requests: HMAC-SHA256 over the timestamp and the body.

A receiver recomputes ``HMAC-SHA256(secret, "<timestamp>." + body)`` and compares it, in constant
time, with ``X-Gridmap-Signature: sha256=<hex>``; it refuses a timestamp (``X-Gridmap-Timestamp``,
Unix seconds) further than ``TOLERANCE_S`` from its clock, so a captured request cannot be replayed
later, and may refuse an ``X-Gridmap-Delivery`` id it has already seen (a retry of a delivery it
did get has the same id).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Mapping
from typing import Any

SIGNATURE_HEADER = "X-Gridmap-Signature"
TIMESTAMP_HEADER = "X-Gridmap-Timestamp"
DELIVERY_HEADER = "X-Gridmap-Delivery"
EVENT_HEADER = "X-Gridmap-Event"
TOLERANCE_S = 300


def new_secret() -> str:
    """A fresh secret for a receiver that was given none (shown once, when created)."""
    return secrets.token_urlsafe(32)


def body_bytes(payload: Mapping[str, Any]) -> bytes:
    """The request body: compact UTF-8 JSON (the bytes that are signed and sent)."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), sort_keys=True, default=str).encode()


def signature(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def signed_headers(
    secret: str, body: bytes, delivery_id: int, event_type: str, now: float | None = None
) -> dict[str, str]:
    timestamp = int(now if now is not None else time.time())
    return {
        "Content-Type": "application/json; charset=utf-8",
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature(secret, timestamp, body),
        DELIVERY_HEADER: str(delivery_id),
        EVENT_HEADER: event_type,
        "User-Agent": "gridmap-webhooks/1",
    }


def verify(secret: str, headers: Mapping[str, str], body: bytes, now: float | None = None) -> bool:
    """What a receiver does: the signature matches and the timestamp is recent. ``headers`` is
    looked up case-insensitively when it is an HTTP header mapping, else by the exact names."""
    stamp = headers.get(TIMESTAMP_HEADER) or headers.get(TIMESTAMP_HEADER.lower())
    given = headers.get(SIGNATURE_HEADER) or headers.get(SIGNATURE_HEADER.lower())
    if not stamp or not given or not stamp.isdigit():
        return False
    if abs((now if now is not None else time.time()) - int(stamp)) > TOLERANCE_S:
        return False
    return hmac.compare_digest(signature(secret, int(stamp), body), given)
