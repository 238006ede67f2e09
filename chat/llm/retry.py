"""When to try a model request again, and after how long — as the official OpenAI SDK decides.

Retried: 408, 409, 429, every 5xx, connection errors and timeouts; `x-should-retry` overrides
either way. The server's `retry-after-ms`, then `retry-after` (seconds, or an HTTP date), is
honoured up to 120 s; a longer ask means "not now" and is not retried here. Otherwise the delay
is min(0.5 * 2**attempt, 8) seconds less up to 25 % jitter.
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime

RETRYABLE_STATUSES = frozenset({408, 409, 429})
MAX_SERVER_DELAY = 120.0
INITIAL_DELAY = 0.5
MAX_DELAY = 8.0


def status_is_retryable(status: int, headers: Mapping[str, str]) -> bool:
    should = headers.get("x-should-retry", "").strip().lower()
    if should == "true":
        return True
    if should == "false":
        return False
    return status in RETRYABLE_STATUSES or status >= 500


def server_delay(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """The delay the server asked for, in seconds, or None if it asked for none we can read."""
    raw_ms = headers.get("retry-after-ms")
    if raw_ms:
        try:
            return max(0.0, float(raw_ms) / 1000)
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def retry_delay(attempt: int, headers: Mapping[str, str] | None = None) -> float | None:
    """Seconds to wait before retry number `attempt + 1`, or None when the server's wait is too
    long to hold a shopper for."""
    asked = server_delay(headers or {})
    if asked is not None:
        return asked if asked <= MAX_SERVER_DELAY else None
    delay: float = min(INITIAL_DELAY * 2.0**attempt, MAX_DELAY)
    return delay * (1 - 0.25 * random.random())  # noqa: S311 - jitter, not cryptography
