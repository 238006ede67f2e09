"""Fixed-window rate limits kept in Django's cache (Redis when REDIS_URL is set, so they hold
across processes)."""

from __future__ import annotations

import time

from django.core.cache import cache


async def rate_limit_hit(*, key: str, limit: int, window: int = 60) -> int | None:
    """Count one hit against `key`. Returns None if allowed, else seconds until the window resets."""
    now = time.time()
    bucket = int(now // window)
    cache_key = f"rl:{key}:{bucket}"
    await cache.aadd(cache_key, 0, timeout=window + 5)
    try:
        count = await cache.aincr(cache_key)
    except ValueError:  # expired between add and incr: start the window again
        await cache.aset(cache_key, 1, timeout=window + 5)
        count = 1
    if count <= limit:
        return None
    return max(1, int((bucket + 1) * window - now + 0.999))
